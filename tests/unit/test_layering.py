"""The tree's layers, read from the source's imports (``ast``), so they hold and are not only true today.

- The operator (``controller``) imports none of the programs beside it: the paper exchange (``paper``), the
  development tools (``devtools``: the local launcher and the chaos suite), the benchmark, the tests.
- The paper exchange is a venue of its own: it imports nothing of the operator or of the tools.
- The planner (``controller.reconcile``) is pure: no I/O library, no clock, nothing of the shell around it.
- The signal receiver (``controller.signals``) makes Positions and nothing else: no planner, no kopf shell, no
  exchange client; and nothing of the operator imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What a pure planner must not reach for: the network, processes, files, the clock, the shell's own packages.
IO = {
    "aiohttp", "asyncio", "asyncpg", "ccxt", "http", "kopf", "kubernetes", "logging", "os", "prometheus_client",
    "requests", "shutil", "socket", "subprocess", "threading", "time", "urllib", "uvloop", "websockets",
}  # fmt: skip
SHELL = {
    "controller.handlers", "controller.audit", "controller.exchange", "controller.metrics", "controller.cli",
    "controller.signals",
}  # fmt: skip

RECEIVER_MAY_NOT = {
    "controller.handlers",
    "controller.reconcile",
    "controller.exchange",
    "controller.cli",
    "kopf",
    "ccxt",
}

RULES: list[tuple[str, set[str]]] = [
    ("controller", {"paper", "devtools", "bench", "tests"}),
    ("paper", {"controller", "devtools", "bench", "tests"}),
    ("controller.reconcile", IO | SHELL),
    # The signal receiver is a process of its own that only makes Positions: it talks to the API server and the
    # audit store, never trades, and the operator does not depend on it.
    ("controller.signals", RECEIVER_MAY_NOT),
    ("controller.handlers", {"controller.signals"}),
]


def imported(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every module a source file imports, absolute, with its line."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base = parts if is_package else parts[:-1]
                base = base[: len(base) - node.level + 1]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            else:
                yield node.lineno, node.module or ""


def within(name: str, prefixes: set[str]) -> str | None:
    return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)


def violations(package: str, forbidden: set[str], root: Path = REPO) -> list[str]:
    found = []
    files = sorted((root / package.replace(".", "/")).rglob("*.py"))
    assert files, f"no source under {package}"
    for path in files:
        relative = path.relative_to(root).with_suffix("")
        is_package = relative.name == "__init__"
        module = ".".join(relative.parts[:-1] if is_package else relative.parts)
        for line, name in imported(path.read_text(), module, is_package):
            if hit := within(name, forbidden):
                found.append(f"{path.relative_to(root)}:{line} imports {name} ({package} may not import {hit})")
    return found


@pytest.mark.parametrize(("package", "forbidden"), RULES, ids=[package for package, _ in RULES])
def test_layer_imports_only_what_it_may(package: str, forbidden: set[str]) -> None:
    assert violations(package, forbidden) == []


def test_a_forbidden_import_is_found(tmp_path: Path) -> None:
    """The check itself can fail: a planner module that reads the clock, relatively and absolutely."""
    planner = tmp_path / "controller" / "reconcile"
    planner.mkdir(parents=True)
    (planner / "__init__.py").write_text("")
    (planner / "bad.py").write_text("import time\nfrom ..handlers import kube\nfrom paper.venue import Venue\n")
    assert violations("controller.reconcile", IO | SHELL, root=tmp_path) == [
        "controller/reconcile/bad.py:1 imports time (controller.reconcile may not import time)",
        "controller/reconcile/bad.py:2 imports controller.handlers (controller.reconcile may not import "
        "controller.handlers)",
    ]
    assert violations("controller", {"paper"}, root=tmp_path) == [
        "controller/reconcile/bad.py:3 imports paper.venue (controller may not import paper)"
    ]
