"""Named crash points for tests: ``WARDEN_FAILPOINTS=entry:after-send`` SIGKILLs the process right there,
exactly as a crash would (no cleanup, no finally blocks). ``name@N`` fires on the N-th time the point is
reached instead of the first, so a seeded schedule can crash a process at any step of a long run. The command line
arms them from the settings at start; unarmed, ``hit`` does nothing."""

from __future__ import annotations

import os
import signal


def parse(spec: str) -> dict[str, int]:
    """``"a,b@3"`` → ``{"a": 1, "b": 3}``: the hit on which each point fires."""
    points: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, nth = item.partition("@")
        points[name] = int(nth) if nth else 1
    return points


_ACTIVE: dict[str, int] = {}
_HITS: dict[str, int] = {}


def arm(spec: str) -> None:
    _ACTIVE.clear()
    _ACTIVE.update(parse(spec))
    _HITS.clear()


def hit(name: str) -> None:
    if name not in _ACTIVE:
        return
    _HITS[name] = _HITS.get(name, 0) + 1
    if _HITS[name] >= _ACTIVE[name]:
        os.kill(os.getpid(), signal.SIGKILL)
