"""Named crash points for tests: ``WARDEN_FAILPOINTS=entry:after-send`` SIGKILLs the process right there,
exactly as a crash would (no cleanup, no finally blocks). ``name@N`` fires on the N-th time the point is
reached instead of the first, so a seeded schedule can crash a process at any step of a long run. ``name~S`` holds
every task that reaches an async point for S seconds instead (a lagging watch, put exactly where a race needs it).
The command line arms them from the settings at start; unarmed, ``hit`` and ``hold`` do nothing."""

from __future__ import annotations

import asyncio
import os
import signal


def _items(spec: str) -> list[str]:
    return list(filter(None, (part.strip() for part in spec.split(","))))


def parse(spec: str) -> dict[str, int]:
    """``"a,b@3"`` → ``{"a": 1, "b": 3}``: the hit on which each point fires (holds left out)."""
    points: dict[str, int] = {}
    for item in (i for i in _items(spec) if "~" not in i):
        name, _, nth = item.partition("@")
        points[name] = int(nth) if nth else 1
    return points


def parse_holds(spec: str) -> dict[str, float]:
    """``"a~1.5,b@2"`` → ``{"a": 1.5}``: the seconds each hold point waits."""
    return {name: float(seconds) for name, _, seconds in (i.partition("~") for i in _items(spec) if "~" in i)}


_ACTIVE: dict[str, int] = {}
_HITS: dict[str, int] = {}
_HOLDS: dict[str, float] = {}


def arm(spec: str) -> None:
    _ACTIVE.clear()
    _ACTIVE.update(parse(spec))
    _HITS.clear()
    _HOLDS.clear()
    _HOLDS.update(parse_holds(spec))


async def hold(name: str) -> None:
    seconds = _HOLDS.get(name)
    if seconds is not None:
        await asyncio.sleep(seconds)


def hit(name: str) -> None:
    if name not in _ACTIVE:
        return
    _HITS[name] = _HITS.get(name, 0) + 1
    if _HITS[name] >= _ACTIVE[name]:
        os.kill(os.getpid(), signal.SIGKILL)
