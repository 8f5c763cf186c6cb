"""One public mark-price stream per venue endpoint, shared by the accounts there.

Each account's observer says which marks its Positions follow (an emulated trailing stop, a breakeven after a
percent); the feed subscribes to the union and hands every push to each of them. The frames are received and parsed
once, however many accounts trade the venue: with one stream per account, N = 1,000 Positions over 7 accounts
parsed 7 copies of the same 1 Hz marks. The stream is public (no keys), so sharing it shares no secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import ccxt

from controller.exchange.errors import describe

log = logging.getLogger("warden.marks")
_FAILURE_BACKOFF_SECONDS = 1.0


class MarkFollower(Protocol):
    """An account's observer, as the feed sees it."""

    def followed_symbols(self) -> set[str]: ...

    def marks_pushed(self, tickers: dict[str, Any]) -> None: ...


@dataclass(eq=False)
class MarkFeed:
    """``client``: a ccxt.pro client of the venue, with no keys; ``method``: its mark-price call (``UserStream.marks``),
    called with the symbols."""

    label: str
    client: Any
    method: str
    may_act: Callable[[], bool]
    floor_seconds: float = 1.0
    _followers: dict[int, MarkFollower] = field(default_factory=dict)
    """By identity: observers compare by value."""
    _task: asyncio.Task[None] | None = None

    def follow(self, follower: MarkFollower) -> None:
        self._followers[id(follower)] = follower
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"mark stream {self.label}")

    def unfollow(self, follower: MarkFollower) -> None:
        self._followers.pop(id(follower), None)

    def symbols(self) -> list[str]:
        return sorted(set().union(*(follower.followed_symbols() for follower in self._followers.values())))

    async def _run(self) -> None:
        while True:
            symbols = self.symbols()
            if not symbols or not self.may_act():
                await asyncio.sleep(self.floor_seconds)
                continue
            try:
                pushed = await getattr(self.client, self.method)(symbols)
            except ccxt.BaseError as error:
                log.warning("mark-price stream of %s: %s", self.label, describe(error))
                await asyncio.sleep(_FAILURE_BACKOFF_SECONDS)
                continue
            for follower in list(self._followers.values()):
                follower.marks_pushed(pushed)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()
