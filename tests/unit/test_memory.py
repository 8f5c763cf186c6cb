"""controller/memory.py: freed heap pages go back to the operating system."""

from __future__ import annotations

import asyncio
import random

from controller.memory import _malloc_trim, keep_trimming


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
