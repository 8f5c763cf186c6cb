"""Give freed heap memory back to the operating system every few seconds.

A ramp (a thousand Positions placing entries and stops at once) leaves glibc's heap with free pages that
``free()`` keeps for reuse; the controller's resident memory then stays at the ramp's peak for good, and
``malloc_trim`` gives those pages back (the figure: docs/PERFORMANCE.md, "Why the code is as it is"). Elsewhere
than glibc this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger("warden.memory")
TRIM_INTERVAL_S = 15.0


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(name), "malloc_trim", None)
    return trim


async def keep_trimming(interval: float = TRIM_INTERVAL_S) -> None:
    trim = _malloc_trim()
    if trim is None:
        log.info("no malloc_trim in this C library: freed memory is left to it")
        return
    while True:
        await asyncio.sleep(interval)
        # Off the event loop: it walks the whole heap, and ctypes lets go of the GIL.
        await asyncio.to_thread(trim, 0)
