"""controller/memory.py: freed heap pages go back to the operating system; what lives at start is frozen."""

from __future__ import annotations

import asyncio
import gc
import random
import weakref

from controller.memory import _malloc_trim, freeze_imports, keep_trimming


def _rss_mib() -> int:
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) // 1024


async def test_trimming_gives_a_fragmented_heap_back() -> None:
    assert _malloc_trim() is not None  # glibc, as in the image and on CI
    junk = [bytearray(random.randint(600, 4000)) for _ in range(60_000)]  # ~140 MiB outside pymalloc's arenas
    kept = junk[::9]  # what stays pins pages all over the heap: free() alone returns almost nothing
    del junk
    before = _rss_mib()
    task = asyncio.create_task(keep_trimming(interval=0.01))
    await asyncio.sleep(0.5)
    task.cancel()
    assert _rss_mib() < before - 50
    assert len(kept) == 6_667


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
