"""The process's memory: give freed heap memory back to the operating system every few seconds, and keep what
importing made out of the garbage collector's full passes.

A ramp (a thousand Positions placing entries and stops at once) leaves glibc's heap with free pages that
``free()`` keeps for reuse; the controller's resident memory then stays at the ramp's peak for good, and
``malloc_trim`` gives those pages back (the figure: docs/PERFORMANCE.md, "Why the code is as it is"). Elsewhere
than glibc this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
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


def freeze_imports() -> None:
    """Move every object alive now (what importing ccxt, kopf and the rest made: some 110,000) out of the cyclic
    garbage collector's reach. Its full pass stops the event loop for as long as it takes to walk every object it
    tracks, and those, which live as long as the process, were a third to a half of them at N = 100, where each
    pass held every Position's next step for 160 - 230 ms in a trace (docs/PERFORMANCE.md, issue 19's tenth part).
    Called once, at start, after a collection, so no garbage is kept with them; objects made later are collected
    as before."""
    gc.collect()
    gc.freeze()
