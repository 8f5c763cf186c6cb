"""The paper's faults and rate limits on the Bybit front, in Bybit's shapes, as the real ccxt ``bybit`` sees them."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.paper.conftest import PaperServer
from tests.paper.test_bybit_conformance import BTC

ORDER = {"method": "POST", "path": "/v5/order/create"}


async def _lookup(client: Any, link_id: str) -> dict[str, Any] | None:
    answer = await client.privateGetV5OrderRealtime({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": link_id})
    rows: list[dict[str, Any]] = answer["result"]["list"]
    return rows[0] if rows else None


@pytest.mark.parametrize(
    ("rule", "error", "executed"),
    [
        ({"mode": "http_error", "status": 500}, ccxt.ExchangeNotAvailable, False),
        ({"mode": "http_error", "status": 502}, ccxt.ExchangeNotAvailable, False),
        ({"mode": "http_error", "status": 503}, ccxt.ExchangeNotAvailable, False),
        ({"mode": "disconnected"}, ccxt.ExchangeError, False),  # retCode 10016
        ({"mode": "timeout", "executed": True}, ccxt.RequestTimeout, True),  # HTTP 504
        ({"mode": "timeout", "executed": False}, ccxt.RequestTimeout, False),
        ({"mode": "drop"}, ccxt.ExchangeNotAvailable, True),
        ({"mode": "rate_limit"}, ccxt.RateLimitExceeded, False),  # retCode 10006
        ({"mode": "ban"}, ccxt.RateLimitExceeded, False),  # HTTP 403
        ({"mode": "maintenance", "durationMs": 60_000}, ccxt.ExchangeNotAvailable, False),
        ({"mode": "truncated"}, None, True),  # ccxt bybit takes the cut body for an empty answer
        ({"mode": "missing_field", "field": "retCode"}, ccxt.ExchangeError, True),  # no retCode: ccxt raises
        ({"mode": "wrong_type", "field": "orderId", "value": None}, None, True),
    ],
)
async def test_each_fault_mode_as_ccxt_bybit_sees_it(
    bybit: Any, paper: PaperServer, rule: dict[str, Any], error: type[Exception] | None, executed: bool
) -> None:
    status, body = await paper.admin("POST", "faults", {**rule, **ORDER})
    assert status == 201, body
    if error is None:
        answer = await bybit.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "bf-1"})
        assert answer["id"] is None  # no exception, and nothing to know the order by: look it up
    else:
        with pytest.raises(error) as exc_info:
            await bybit.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "bf-1"})
        assert type(exc_info.value) is error, type(exc_info.value)
    found = await _lookup(bybit, "bf-1")  # the recovery path: look the order up by its orderLinkId
    assert (found is not None) == executed
    if found is not None:
        assert (found["orderStatus"], found["cumExecQty"]) == ("Filled", "0.010")
    _, faults = await paper.admin("GET", "faults")
    assert faults["counters"] == {rule["mode"]: 1}
    [event] = faults["log"]
    assert (event["mode"], event["path"], event["clientOrderId"]) == (rule["mode"], "/v5/order/create", "bf-1")


async def test_latency_delays_the_answer(bybit: Any, paper: PaperServer) -> None:
    status, _ = await paper.admin("POST", "faults", {"mode": "latency", "latencyMs": 300, **ORDER})
    assert status == 201
    started = asyncio.get_running_loop().time()
    await bybit.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "bf-slow"})
    assert asyncio.get_running_loop().time() - started >= 0.3


async def test_per_uid_limits_answer_10006_with_bybits_headers(bybit: Any, paper: PaperServer) -> None:
    await asyncio.sleep(1 - paper.venue.now() % 1000 / 1000)  # a fresh one-second window
    for n in range(10):
        await bybit.create_order(BTC, "limit", "buy", 0.01, 50000 + n, {"clientOrderId": f"rl-{n}"})
    headers = bybit.last_response_headers
    assert (headers["X-Bapi-Limit"], headers["X-Bapi-Limit-Status"]) == ("10", "0")
    assert int(headers["X-Bapi-Limit-Reset-Timestamp"]) > paper.venue.now() - 1000
    with pytest.raises(ccxt.RateLimitExceeded, match="10006"):
        await bybit.create_order(BTC, "limit", "buy", 0.01, 49000, {"clientOrderId": "rl-over"})
    assert len(await bybit.fetch_open_orders(BTC)) == 10  # other endpoints have their own budget


async def test_the_per_ip_limit_answers_403_and_keeps_refusing(bybit: Any, paper: PaperServer) -> None:
    status, limits = await paper.admin("POST", "limits", {"bybitIpPer5s": 3, "bybitBanMs": 60_000})
    assert status == 200 and limits["bybitIpPer5s"] == 3
    await asyncio.sleep(5 - paper.venue.now() % 5000 / 1000)  # a fresh five-second window
    for _ in range(3):
        await bybit.fetch_time()
    with pytest.raises(ccxt.RateLimitExceeded, match="403"):
        await bybit.fetch_time()
    await asyncio.sleep(5 - paper.venue.now() % 5000 / 1000)
    with pytest.raises(ccxt.RateLimitExceeded, match="403"):  # still refused: the ban outlasts the window
        await bybit.fetch_time()


async def test_the_request_log_keeps_each_bybit_answers_ret_code(bybit: Any, paper: PaperServer) -> None:
    """Bybit refuses with HTTP 200 and a ``retCode``: the log says which, so a reader can tell a refusal (the
    chaos checker's evidence)."""
    await bybit.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "rc-ok"})
    with pytest.raises(ccxt.InvalidOrder):  # 110017: reduce-only on the wrong side of the position
        await bybit.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "rc-no", "reduceOnly": True})
    await paper.admin("POST", "faults", {"mode": "rate_limit", "count": 1, **ORDER})
    with pytest.raises(ccxt.RateLimitExceeded):
        await bybit.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "rc-limited"})
    await paper.admin("POST", "faults", {"mode": "http_error", "status": 502, "count": 1, **ORDER})
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await bybit.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "rc-page"})
    _, rows = await paper.admin("GET", f"requests?apiKey={bybit.apiKey}")
    creates = {r["clientOrderId"]: (r["status"], r["retCode"]) for r in rows if r["path"] == "/v5/order/create"}
    assert creates == {
        "rc-ok": (200, 0),
        "rc-no": (200, 110017),
        "rc-limited": (200, 10006),
        "rc-page": (502, None),  # a gateway page, no envelope
    }
