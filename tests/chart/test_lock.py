"""One lock for everything installed: uv.lock agrees with pyproject.toml, requirements.lock (what the image
installs) is exactly its runtime part, and the environment the tests run in is exactly the lock.

A test that passes on whatever PyPI served today proves nothing about what ships, so drift here is a failure.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from tests.chart.conftest import REPO, run

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def uv(*args: str) -> str:
    return run(["bash", str(REPO / "scripts" / "uv.sh"), *args], cwd=REPO).stdout


def pins(text: str) -> dict[NormalizedName, str]:
    """`name==version` requirements (hash and comment lines skipped) whose markers hold on this machine."""
    found: dict[NormalizedName, str] = {}
    for line in text.splitlines():
        line = line.rstrip(" \\").strip()
        if not line or line.startswith(("#", "--")):
            continue
        requirement = Requirement(line)
        [spec] = requirement.specifier
        assert spec.operator == "==", f"not pinned with ==: {line}"
        if requirement.marker is None or requirement.marker.evaluate(default_environment()):
            found[canonicalize_name(requirement.name)] = spec.version
    return found


def locked(*groups: str) -> dict[NormalizedName, str]:
    return pins(uv("export", "--frozen", "--no-hashes", "--no-emit-project", "--quiet", *groups))


def test_uv_lock_agrees_with_pyproject() -> None:
    uv("lock", "--locked", "--quiet")


def test_requirements_lock_is_the_runtime_part_of_uv_lock() -> None:
    exported = uv("export", "--frozen", "--no-dev", "--no-emit-project", "--quiet")
    on_disk = (REPO / "requirements.lock").read_text()
    body = [line for line in on_disk.splitlines() if not line.startswith("#")]
    assert body == [line for line in exported.splitlines() if not line.startswith("#")], "run `make lock`"
    for line in on_disk.splitlines():
        if line and not line.startswith((" ", "#")):
            assert line.endswith("\\"), f"{line}: every pin carries hashes (the image installs with --require-hashes)"


def test_runtime_pins_satisfy_pyproject_and_hold_no_dev_tool() -> None:
    runtime = pins((REPO / "requirements.lock").read_text())
    for spec in PROJECT["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in runtime, f"{requirement.name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(runtime[name]), f"{name}=={runtime[name]} does not satisfy {spec}"
    for spec in PROJECT["dependency-groups"]["dev"]:
        assert canonicalize_name(Requirement(spec).name) not in runtime, f"dev tool {spec} in requirements.lock"


def test_the_test_environment_is_exactly_the_lock() -> None:
    assert Path(sys.prefix).resolve() == (REPO / ".venv").resolve(), "the tests run in the repo's .venv"
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions()
        if canonicalize_name(dist.metadata["Name"]) != "warden"
    }
    assert installed == locked(), "`make setup` puts .venv back to uv.lock"
