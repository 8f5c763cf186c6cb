"""Bybit V5 rate limits: requests per IP per 5 s (HTTP 403 "access too frequent", then refused for a while) and
requests per UID per endpoint per second (``retCode 10006`` with the ``X-Bapi-Limit*`` headers on every private
answer). Windows are fixed and aligned to the venue clock (Bybit's per-second windows roll); the per-endpoint
defaults are Bybit's for USDT perpetuals on a unified account (the reference brief §9).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from paper.bybit import errors
from paper.bybit.routes import PREFIX, envelope
from paper.ratelimit import RateLimits, Window
from paper.requestlog import record_of

SECOND_MS = 1000
FIVE_SECONDS_MS = 5000
DEFAULT_PER_SECOND = 50
PER_SECOND: dict[str, int] = {
    "/v5/order/create": 10,
    "/v5/order/amend": 10,
    "/v5/order/cancel": 10,
    "/v5/order/cancel-all": 10,
    "/v5/position/set-leverage": 10,
    "/v5/position/switch-mode": 10,
    "/v5/position/trading-stop": 10,
    "/v5/account/set-margin-mode": 5,
}
FORBIDDEN = "403 Forbidden: access too frequent"


@dataclass
class _Ip:
    window: Window = field(default_factory=lambda: Window(FIVE_SECONDS_MS))
    banned_until: int = 0


class BybitLimiter:
    def __init__(self, clock: Callable[[], int], limits: RateLimits) -> None:
        self._clock = clock
        self.limits = limits
        self._ips: dict[str, _Ip] = {}
        self._uids: dict[tuple[str, str], Window] = {}

    def now(self) -> int:
        return self._clock()

    def reset(self) -> None:
        self._ips.clear()
        self._uids.clear()

    def ip_refused(self, ip: str) -> bool:
        now = self._clock()
        state = self._ips.setdefault(ip, _Ip())
        if state.banned_until > now:
            return True
        if state.window.add(now, 1) > self.limits.bybit_ip_per_5s:
            state.banned_until = now + self.limits.bybit_ban_ms
            return True
        return False

    def uid_headers(self, api_key: str, path: str) -> tuple[bool, dict[str, str]]:
        """Count one private call; whether it is over the endpoint's limit, and the headers Bybit sends."""
        now = self._clock()
        limit = PER_SECOND.get(path, DEFAULT_PER_SECOND)
        window = self._uids.setdefault((api_key, path), Window(SECOND_MS))
        used = window.add(now, 1)
        headers = {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(max(0, limit - used)),
            "X-Bapi-Limit-Reset-Timestamp": str(window.end()),
        }
        return used > limit, headers


def middleware(limiter: BybitLimiter) -> Middleware:
    @web.middleware
    async def bybit_rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        record = record_of(request)
        if record is None or not request.path.startswith(PREFIX):
            return await handler(request)
        if limiter.ip_refused(request.remote or ""):
            return web.Response(status=403, text=FORBIDDEN)
        if record.api_key is None or request.path.startswith(f"{PREFIX}market/"):
            return await handler(request)
        over, headers = limiter.uid_headers(record.api_key, request.path)
        if over:
            refused = errors.too_many_visits()
            return web.json_response(envelope(limiter.now(), {}, refused.code, refused.msg), headers=headers)
        response = await handler(request)
        if not response.prepared:
            response.headers.update(headers)
        return response

    return bybit_rate_limit
