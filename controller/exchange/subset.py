"""Load only the ccxt exchanges Warden uses.

Importing any part of ccxt imports every exchange it knows (over a hundred, each as a sync, an async and a
websocket class, with its API table): most of the controller's resident memory, for one exchange. ``install``,
called before ccxt is first imported, puts a finder ahead of the import system that gives every other exchange's
modules a placeholder: ccxt's package imports still succeed, and using an exchange that was left out raises.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

# Where ccxt keeps one module per exchange: the sync, async and websocket classes and their API tables.
_EXCHANGE_PACKAGES = ("ccxt", "ccxt.async_support", "ccxt.pro", "ccxt.abstract")


KEPT = frozenset({"binanceusdm", "binance", "bybit"})
"""The exchanges Warden supports (``client.SUPPORTED_EXCHANGES``) and the ones they build on."""


def _placeholder(module: str, attribute: str) -> type:
    if attribute.startswith("__"):  # what tools probe modules for (__file__, __path__, ...) is simply absent
        raise AttributeError(f"module {module!r} has no attribute {attribute!r}")

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError(f"{module} is not loaded: Warden loads only the ccxt exchanges it supports")

    return type(attribute, (), {"__init__": refuse})


class _LeftOut(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        # ``from ccxt.x import x`` must succeed while ccxt's package imports every exchange; whatever is taken
        # from here is a class that refuses to be instantiated.
        setattr(module, "__getattr__", functools.partial(_placeholder, module.__name__))  # noqa: B010 - PEP 562


class _OnlyThese(importlib.abc.MetaPathFinder):
    def __init__(self, kept: frozenset[str], left_out: frozenset[str]) -> None:
        self.kept = kept
        self.left_out = left_out

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, leaf = fullname.rpartition(".")
        if package in _EXCHANGE_PACKAGES and leaf in self.left_out:
            return importlib.util.spec_from_loader(fullname, _LeftOut())
        return None


def install(kept: frozenset[str] = KEPT) -> None:
    """Load only the ``kept`` ones of ccxt's exchanges. Must run before ccxt is first imported."""
    if "ccxt" in sys.modules:
        raise RuntimeError("ccxt is already imported: install() must come first")
    spec = importlib.util.find_spec("ccxt")  # finds the package without running it
    assert spec is not None and spec.submodule_search_locations, "ccxt is not installed"
    abstract = Path(next(iter(spec.submodule_search_locations))) / "abstract"
    exchanges = frozenset(p.stem for p in abstract.glob("*.py") if p.stem != "__init__")
    sys.meta_path.insert(0, _OnlyThese(kept, exchanges - kept))
