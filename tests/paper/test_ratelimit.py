"""Rate limits: Binance's weight and order-count headers, 429 when over budget, 418 for not backing off."""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt
import pytest

from paper.ratelimit import RateLimiter, RateLimits
from tests.paper.conftest import PaperServer

BTC = "BTC/USDT:USDT"


async def _limits(paper: PaperServer, **limits: int) -> None:
    status, body = await paper.admin("POST", "limits", limits)
    assert status == 200, body


async def test_headers_report_used_weight_and_order_counts(exchange: Any, paper: PaperServer) -> None:
    await paper.admin("POST", "clock", {"mode": "manual"})  # one window for the whole test
    paper.services.limiter.reset()  # forget load_markets' weight
    await exchange.fetch_balance()  # weight 5
    assert exchange.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "5"
    await exchange.fetch_open_orders(BTC)  # weight 1 with a symbol
    assert exchange.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "6"
    assert "X-MBX-ORDER-COUNT-10S" not in exchange.last_response_headers
    await exchange.create_order(BTC, "market", "buy", 0.01)  # weight 0, one order
    headers = exchange.last_response_headers
    assert (headers["X-MBX-USED-WEIGHT-1M"], headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1M"]) == (
        "6",
        "1",
        "1",
    )
    _, rows = await paper.admin("GET", f"requests?apiKey={exchange.apiKey}")
    assert [(r["path"], r["weight"]) for r in rows] == [
        ("/fapi/v3/account", 5),
        ("/fapi/v1/openOrders", 1),
        ("/fapi/v1/order", 0),
    ]


async def test_over_the_weight_budget_429_then_418_ban_then_served_again(exchange: Any, paper: PaperServer) -> None:
    await paper.admin("POST", "clock", {"mode": "manual"})
    await _limits(paper, weightPerMinute=10, banMs=120_000)
    await exchange.fetch_balance()
    await exchange.fetch_balance()
    with pytest.raises(ccxt.DDoSProtection) as exc_info:
        await exchange.fetch_balance()  # 15 > 10
    assert "429" in str(exc_info.value) and '"code": -1003' in str(exc_info.value)
    retry = int(exchange.last_response_headers["Retry-After"])
    assert 1 <= retry <= 60
    with pytest.raises(ccxt.DDoSProtection) as exc_info:
        await exchange.fetch_time()  # did not back off: banned
    assert "418" in str(exc_info.value) and "banned until" in str(exc_info.value)
    assert exchange.last_response_headers["Retry-After"] == "120"
    await paper.admin("POST", "clock", {"advance_ms": 60_000})
    with pytest.raises(ccxt.DDoSProtection):
        await exchange.fetch_time()  # still banned though the weight window is over
    await paper.admin("POST", "clock", {"advance_ms": 60_000})
    assert await exchange.fetch_time() == paper.venue.now()
    await exchange.load_time_difference()
    await exchange.fetch_balance()
    _, rows = await paper.admin("GET", f"requests?apiKey={exchange.apiKey}")
    assert [r["status"] for r in rows] == [200, 200, 429, 200]  # public calls carry no key


async def test_over_the_order_budget_429_with_code_1015(exchange: Any, paper: PaperServer) -> None:
    await paper.admin("POST", "clock", {"mode": "manual"})
    await _limits(paper, ordersPer10s=2)
    await exchange.create_order(BTC, "market", "buy", 0.01)
    await exchange.create_order(BTC, "market", "buy", 0.01)
    with pytest.raises(ccxt.DDoSProtection) as exc_info:
        await exchange.create_order(BTC, "market", "buy", 0.01)
    assert "-1015" in str(exc_info.value) and "TEN_SECONDS" in str(exc_info.value)
    await paper.admin("POST", "clock", {"advance_ms": 10_000})
    await exchange.load_time_difference()
    await exchange.create_order(BTC, "market", "buy", 0.01)
    assert len(await exchange.fetch_my_trades(BTC)) == 3


def test_windows_roll_and_bans_double() -> None:
    now = [0]
    limiter = RateLimiter(lambda: now[0], RateLimits(weight_per_minute=2, ban_ms=1000))
    assert limiter.admit("ip", None, 2, False).status is None
    assert limiter.admit("ip", None, 1, False).status == 429
    assert limiter.admit("ip", None, 1, False).status == 418
    now[0] = 500
    assert limiter.admit("ip", None, 1, False).status == 418
    now[0] = 60_000
    verdict = limiter.admit("ip", None, 2, False)
    assert verdict.status is None and verdict.headers["X-MBX-USED-WEIGHT-1M"] == "2"
    assert limiter.admit("ip", None, 1, False).status == 429
    banned = limiter.admit("ip", None, 1, False)
    assert (banned.status, banned.retry_after_s) == (418, 2)  # the second ban lasts twice as long
    assert limiter.admit("other-ip", None, 1, False).status is None
