"""The paper venue's single clock: wall time by default, or frozen and stepped by hand (``POST /_paper/clock``).

Every timestamp the venue hands out, every rate-limit window and every generated price step reads this clock, so a
test in manual mode controls all of them at once. Time never runs backwards: leaving manual mode continues from
the frozen instant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

WALL = "wall"
MANUAL = "manual"


def wall_ms() -> int:
    return int(time.time() * 1000)


class Clock:
    """Milliseconds since the epoch from ``source`` (wall time unless given), shifted by what was advanced."""

    def __init__(self, source: Callable[[], int] | None = None) -> None:
        self._source = source or wall_ms
        self._offset = 0
        self._frozen: int | None = None

    @property
    def mode(self) -> str:
        return WALL if self._frozen is None else MANUAL

    def now(self) -> int:
        return self._source() + self._offset if self._frozen is None else self._frozen

    def __call__(self) -> int:
        return self.now()

    def set_mode(self, mode: str) -> None:
        if mode not in (WALL, MANUAL):
            raise ValueError(f"clock mode must be {WALL!r} or {MANUAL!r}")
        if mode == MANUAL and self._frozen is None:
            self._frozen = self.now()
        elif mode == WALL and self._frozen is not None:
            self._offset = max(self._offset, self._frozen - self._source())
            self._frozen = None

    def advance(self, ms: int) -> int:
        """Move time forward by ``ms`` (in either mode); returns the new time."""
        if ms < 0:
            raise ValueError("the clock only moves forward")
        if self._frozen is None:
            self._offset += ms
        else:
            self._frozen += ms
        return self.now()

    def snapshot(self) -> dict[str, Any]:
        return {"mode": self.mode, "now": self.now()}

    def restore(self, saved: dict[str, Any]) -> None:
        """Continue from a saved :meth:`snapshot`: a frozen clock stays frozen, wall time never goes back."""
        now = int(saved["now"])
        if saved.get("mode") == MANUAL:
            self._frozen = now
        else:
            self._frozen = None
            self._offset = max(0, now - self._source())
