"""Named crash points for tests: ``WARDEN_FAILPOINTS=entry:after-send`` SIGKILLs the process right there,
exactly as a crash would (no cleanup, no finally blocks)."""

from __future__ import annotations

import os
import signal

_ACTIVE = frozenset(filter(None, os.environ.get("WARDEN_FAILPOINTS", "").split(",")))


def hit(name: str) -> None:
    if name in _ACTIVE:
        os.kill(os.getpid(), signal.SIGKILL)
