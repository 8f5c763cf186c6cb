"""What ``controller.memory`` leaves to the garbage collector."""

from __future__ import annotations

import gc
import weakref

from controller.memory import freeze_imports


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_what_lives_at_start_is_frozen_and_cycles_made_later_are_still_collected() -> None:
    alive = _Node()
    try:
        freeze_imports()
        assert gc.get_freeze_count() > 0
        assert not any(o is alive for o in gc.get_objects())  # out of every full pass's walk
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
