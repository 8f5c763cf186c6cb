"""Binance USDⓈ-M rate limits: request weight per minute per IP, new orders per 10 s and per minute per account.

Windows are fixed and aligned to the venue clock (as Binance's are to the wall clock). Over a limit the request is
refused with HTTP 429 and ``Retry-After``; a client that keeps sending while it is being refused gets an IP ban,
HTTP 418, which doubles with every repeat (Binance: "from 2 minutes to 3 days"). Wire facts: the reference brief
§7 and §4 (weights).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from paper.requestlog import record_of

MINUTE_MS = 60_000
TEN_SECONDS_MS = 10_000
MAX_BAN_MS = 3 * 24 * 3600 * 1000

# (method, path) -> weight, or (weight with symbol, weight without symbol). Absent routes weigh 1.
WEIGHTS: dict[tuple[str, str], int | tuple[int, int]] = {
    ("GET", "/fapi/v1/premiumIndex"): (1, 10),
    ("GET", "/fapi/v1/ticker/24hr"): (1, 40),
    ("GET", "/fapi/v1/ticker/price"): (1, 2),
    ("GET", "/fapi/v2/ticker/price"): (1, 2),
    ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v1/positionSide/dual"): 30,
    ("POST", "/fapi/v1/order"): 0,
    ("GET", "/fapi/v1/openOrders"): (1, 40),
    ("GET", "/fapi/v1/allOrders"): 5,
    ("POST", "/fapi/v1/algoOrder"): 0,
    ("GET", "/fapi/v1/openAlgoOrders"): (1, 40),
    ("GET", "/fapi/v1/allAlgoOrders"): 5,
    ("GET", "/fapi/v1/userTrades"): 5,
    # the read routes for other systems (paper.peer_routes); depth's weight goes by ``limit`` (DEPTH_WEIGHTS)
    ("GET", "/fapi/v1/ticker/bookTicker"): (2, 5),
    ("GET", "/fapi/v1/trades"): 5,
    ("GET", "/fapi/v1/multiAssetsMargin"): 30,
    ("GET", "/fapi/v1/income"): 30,
    ("GET", "/fapi/v1/symbolConfig"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v2/account"): 5,
}
# GET /fapi/v1/depth by limit (Binance: 5-50 -> 2, 100 -> 5, 500 -> 10, 1000 -> 20; the default is 500)
DEPTH_WEIGHTS = ((50, 2), (100, 5), (500, 10))
# Requests that count against the per-account order limits (and carry the X-MBX-ORDER-COUNT-* headers).
ORDER_ROUTES = frozenset({("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder")})


def request_weight(method: str, path: str, params: Mapping[str, str]) -> int:
    if (method, path) == ("GET", "/fapi/v1/depth"):
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else 500
        return next((w for most, w in DEPTH_WEIGHTS if limit <= most), 20)
    weight = WEIGHTS.get((method, path), 1)
    if isinstance(weight, tuple):
        return weight[0] if params.get("symbol") else weight[1]
    return weight


def is_order(method: str, path: str) -> bool:
    return (method, path) in ORDER_ROUTES


@dataclass
class RateLimits:
    """Budgets; tests shrink them (``--weight-limit`` …, ``POST /_paper/limits``)."""

    weight_per_minute: int = 2400
    orders_per_10s: int = 300
    orders_per_minute: int = 1200
    ban_ms: int = 120_000  # the first IP ban; each further one doubles, up to three days
    bybit_ip_per_5s: int = 600  # Bybit's REST requests per IP per 5 s (``paper.bybit.ratelimit``)
    bybit_ban_ms: int = 600_000  # how long Bybit answers 403 after that limit was broken

    def as_json(self) -> dict[str, int]:
        return {
            "weightPerMinute": self.weight_per_minute,
            "ordersPer10s": self.orders_per_10s,
            "ordersPerMinute": self.orders_per_minute,
            "banMs": self.ban_ms,
            "bybitIpPer5s": self.bybit_ip_per_5s,
            "bybitBanMs": self.bybit_ban_ms,
        }


@dataclass
class Window:
    """A fixed window counter: ``count`` requests since ``start``."""

    length_ms: int
    start: int = 0
    count: int = 0

    def add(self, now: int, amount: int) -> int:
        start = now - now % self.length_ms
        if start != self.start:
            self.start, self.count = start, 0
        self.count += amount
        return self.count

    def current(self, now: int) -> int:
        return self.count if now - now % self.length_ms == self.start else 0

    def end(self) -> int:
        return self.start + self.length_ms


@dataclass
class _IpState:
    weight: Window = field(default_factory=lambda: Window(MINUTE_MS))
    refused_until: int = 0  # a 429 was answered; more requests before this instant earn a ban
    banned_until: int = 0
    bans: int = 0


@dataclass
class _AccountState:
    ten_seconds: Window = field(default_factory=lambda: Window(TEN_SECONDS_MS))
    minute: Window = field(default_factory=lambda: Window(MINUTE_MS))
    refused_until: int = 0


@dataclass(frozen=True)
class Verdict:
    """What the limiter says about one request: refused (``status`` 429/418 with a Binance body) or not."""

    headers: dict[str, str]
    status: int | None = None
    code: int = 0
    msg: str = ""
    retry_after_s: int = 0


def _seconds_until(now: int, until: int) -> int:
    return max(1, math.ceil((until - now) / 1000))


class RateLimiter:
    def __init__(self, clock: Callable[[], int], limits: RateLimits | None = None) -> None:
        self._clock = clock
        self.limits = limits or RateLimits()
        self._ips: dict[str, _IpState] = {}
        self._accounts: dict[str, _AccountState] = {}

    def reset(self) -> None:
        """Forget all counters and bans (e.g. after the limits were changed)."""
        self._ips.clear()
        self._accounts.clear()

    def admit(self, ip: str, api_key: str | None, weight: int, order: bool) -> Verdict:
        """Count one request; refuse it if over a budget, or if the client ignored an earlier refusal."""
        now = self._clock()
        state = self._ips.setdefault(ip, _IpState())
        if state.banned_until > now:
            return self._banned(ip, state, now)
        account = self._accounts.setdefault(api_key, _AccountState()) if order and api_key else None
        if state.refused_until > now or (account is not None and account.refused_until > now):
            state.banned_until = now + min(self.limits.ban_ms * 2**state.bans, MAX_BAN_MS)
            state.bans += 1
            state.refused_until = 0
            if account is not None:
                account.refused_until = 0
            return self._banned(ip, state, now)
        used = state.weight.add(now, weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if account is not None:
            per_10s = account.ten_seconds.add(now, 1)
            per_minute = account.minute.add(now, 1)
            headers["X-MBX-ORDER-COUNT-10S"] = str(per_10s)
            headers["X-MBX-ORDER-COUNT-1M"] = str(per_minute)
        if used > self.limits.weight_per_minute:
            state.refused_until = state.weight.end()
            return Verdict(
                headers,
                429,
                -1003,
                f"Too many requests; current limit of IP({ip}) is {self.limits.weight_per_minute} requests per "
                "minute. Please use the websocket for live updates to avoid polling the API.",
                _seconds_until(now, state.refused_until),
            )
        if account is not None:
            for window, limit, name in (
                (account.ten_seconds, self.limits.orders_per_10s, "TEN_SECONDS"),
                (account.minute, self.limits.orders_per_minute, "MINUTE"),
            ):
                if window.current(now) > limit:
                    account.refused_until = window.end()
                    return Verdict(
                        headers,
                        429,
                        -1015,
                        f"Too many new orders; current limit is {limit} orders per {name}.",
                        _seconds_until(now, account.refused_until),
                    )
        return Verdict(headers)

    def _banned(self, ip: str, state: _IpState, now: int) -> Verdict:
        return Verdict(
            {"X-MBX-USED-WEIGHT-1M": str(state.weight.current(now))},
            418,
            -1003,
            f"Way too many requests; IP({ip}) banned until {state.banned_until}. "
            "Please use the websocket for live updates to avoid bans.",
            _seconds_until(now, state.banned_until),
        )


def middleware(limiter: RateLimiter) -> Middleware:
    """Weigh and count every exchange request; answer 429/418 instead of the handler when refused."""

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        record = record_of(request)
        if record is None or not request.path.startswith("/fapi/"):  # admin API and websockets are free
            return await handler(request)
        record.weight = request_weight(request.method, request.path, record.params)
        order = is_order(request.method, request.path)
        verdict = limiter.admit(request.remote or "", record.api_key, record.weight, order)
        if verdict.status is not None:
            return web.json_response(
                {"code": verdict.code, "msg": verdict.msg},
                status=verdict.status,
                headers={**verdict.headers, "Retry-After": str(verdict.retry_after_s)},
            )
        response = await handler(request)
        if not response.prepared:  # a websocket has already sent its headers
            response.headers.update(verdict.headers)
        return response

    return rate_limit
