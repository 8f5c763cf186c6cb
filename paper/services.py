"""What runs around the venue: request log, rate limits, faults, price paths, the user-data stream and saved state.

:class:`PaperOptions` is what the CLI (or a test) configures; :class:`Services` builds the parts around one venue
and hooks them into the aiohttp application (middlewares outermost first, routes, background tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from paper import ratelimit
from paper.bybit import ratelimit as bybit_ratelimit
from paper.bybit import routes as bybit_routes
from paper.bybit.front import BybitFront
from paper.bybit.public_stream import BybitPublicStream
from paper.bybit.ratelimit import BybitLimiter
from paper.bybit.stream import BybitStream
from paper.faults import FaultInjector
from paper.market_stream import MarketStream
from paper.prices import PriceDriver, RandomWalk, ScriptedPath, WalkConfig, read_script
from paper.ratelimit import RateLimiter, RateLimits
from paper.requestlog import RequestLog
from paper.state import StateStore
from paper.stream import UserStream
from paper.venue import Venue

log = logging.getLogger(__name__)

PRICE_POLL_S = 0.05  # how often wall-clock time is checked for due price moves


@dataclass
class PaperOptions:
    seed: int = 0
    limits: RateLimits = field(default_factory=RateLimits)
    fault_rules: list[dict[str, Any]] = field(default_factory=list)
    state_path: Path | None = None
    walk: WalkConfig | None = None  # a random walk from start-up
    price_script: str | None = None  # CSV text of a scripted path from start-up
    clock_mode: str = "wall"


@dataclass
class Services:
    venue: Venue
    seed: int
    requests: RequestLog
    limiter: RateLimiter
    faults: FaultInjector
    prices: PriceDriver
    stream: UserStream
    store: StateStore | None
    marks: MarketStream
    bybit: BybitFront
    bybit_stream: BybitStream
    bybit_marks: BybitPublicStream
    bybit_limiter: BybitLimiter

    @classmethod
    def build(cls, venue: Venue, options: PaperOptions) -> Services:
        store = StateStore(venue, options.state_path) if options.state_path is not None else None
        if store is not None:
            store.load()  # before anything else reads the clock or the books
        venue.clock.set_mode(options.clock_mode)
        bybit = BybitFront(venue)
        services = cls(
            venue=venue,
            seed=options.seed,
            requests=RequestLog(venue.now),
            limiter=RateLimiter(venue.now, options.limits),
            faults=FaultInjector(venue.now, options.seed),
            prices=PriceDriver(venue, on_change=store.mark_dirty if store is not None else None),
            stream=UserStream(venue),
            store=store,
            marks=MarketStream(venue),
            bybit=bybit,
            bybit_stream=BybitStream(bybit),
            bybit_marks=BybitPublicStream(bybit),
            bybit_limiter=BybitLimiter(venue.now, options.limits),
        )
        for rule in options.fault_rules:
            services.faults.add(rule)
        if options.walk is not None:
            services.prices.add(RandomWalk(options.seed, venue.now(), venue.markets, options.walk))
        if options.price_script is not None:
            services.prices.add(ScriptedPath(venue.now(), read_script(options.price_script, venue.markets)))
        return services

    def middlewares(self) -> list[Middleware]:
        """Outermost first: every request is logged, then weighed, then possibly faulted."""
        parts = [
            self.requests.middleware(),
            ratelimit.middleware(self.limiter),
            bybit_ratelimit.middleware(self.bybit_limiter),
            self.faults.middleware(),
        ]
        if self.store is not None:
            parts.append(self.store.middleware())
        return parts

    async def _price_ticker(self, app: web.Application) -> AsyncIterator[None]:
        async def tick() -> None:
            while True:
                await asyncio.sleep(PRICE_POLL_S)
                try:
                    self.prices.advance()
                except Exception:
                    log.exception("paper exchange: price path failed")

        task = asyncio.create_task(tick())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def install(self, app: web.Application) -> None:
        self.stream.add_routes(app)
        self.marks.add_routes(app)
        bybit_routes.add_routes(app, self.bybit)
        self.bybit_stream.add_routes(app)
        self.bybit_marks.add_routes(app)
        bybit_routes.add_fallback(app)
        app.cleanup_ctx.append(self._price_ticker)
        if self.store is not None:
            app.cleanup_ctx.append(self.store.run)
