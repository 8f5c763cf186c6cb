"""Fault injection: what the real ccxt raises for each injected fault, and what the venue did meanwhile."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import ccxt.async_support as ccxt
import pytest

from paper.faults import FaultInjector, FaultSpecError, read_rules
from paper.requestlog import RequestRecord
from paper.services import PaperOptions
from tests.paper.conftest import ExchangeFactory, PaperServer, serve

BTC = "BTC/USDT:USDT"
ORDER = {"method": "POST", "path": "/fapi/v1/order"}


def _raises_exactly(exc_info: pytest.ExceptionInfo[BaseException], cls: type[BaseException]) -> None:
    assert type(exc_info.value) is cls, f"expected exactly {cls.__name__}, got {type(exc_info.value).__name__}"


async def _add(paper: PaperServer, rule: dict[str, Any]) -> None:
    status, body = await paper.admin("POST", "faults", rule)
    assert status == 201, body


async def _buy(exchange: Any, cid: str) -> dict[str, Any]:
    order: dict[str, Any] = await exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": cid})
    return order


async def _lookup(exchange: Any, cid: str) -> dict[str, Any] | None:
    try:
        order: dict[str, Any] = await exchange.fetch_order(None, BTC, {"clientOrderId": cid})
    except ccxt.OrderNotFound:
        return None
    return order


@pytest.mark.parametrize(
    ("rule", "error", "message", "executed"),
    [
        ({"mode": "http_error", "status": 500}, ccxt.ExchangeNotAvailable, "500 Internal Server Error", False),
        ({"mode": "http_error", "status": 502}, ccxt.ExchangeNotAvailable, "502 Bad Gateway", False),
        ({"mode": "http_error", "status": 503}, ccxt.ExchangeNotAvailable, "503 Service Unavailable", False),
        ({"mode": "disconnected"}, ccxt.OperationFailed, '"code": -1001', False),
        ({"mode": "timeout", "executed": True}, ccxt.RequestTimeout, "execution status unknown", True),
        ({"mode": "timeout", "executed": False}, ccxt.RequestTimeout, "execution status unknown", False),
        ({"mode": "drop"}, ccxt.ExchangeNotAvailable, "POST http://127.0.0.1", True),
        ({"mode": "rate_limit"}, ccxt.DDoSProtection, "429 Too Many Requests", False),
        ({"mode": "ban"}, ccxt.DDoSProtection, "418 I'm a Teapot", False),
        ({"mode": "maintenance", "durationMs": 60_000}, ccxt.OnMaintenance, "System is under maintenance.", False),
    ],
)
async def test_each_fault_mode_as_ccxt_sees_it(
    exchange: Any,
    paper: PaperServer,
    rule: dict[str, Any],
    error: type[Exception],
    message: str,
    executed: bool,
) -> None:
    await _add(paper, {**rule, **ORDER})
    with pytest.raises(error) as exc_info:
        await _buy(exchange, "f-1")
    _raises_exactly(exc_info, error)
    assert message in str(exc_info.value)
    found = await _lookup(exchange, "f-1")  # the recovery path: look the order up by its client id
    assert (found is not None) == executed
    if found is not None:
        assert (found["status"], found["filled"]) == ("closed", 0.01)
    _, faults = await paper.admin("GET", "faults")
    assert faults["counters"] == {rule["mode"]: 1}
    [event] = faults["log"]
    assert (event["mode"], event["path"], event["clientOrderId"]) == (rule["mode"], "/fapi/v1/order", "f-1")


async def test_429_and_418_faults_carry_retry_after(exchange: Any, paper: PaperServer) -> None:
    await _add(paper, {"mode": "rate_limit", "retryAfterS": 7, "count": 1, **ORDER})
    with pytest.raises(ccxt.DDoSProtection):
        await _buy(exchange, "f-2")
    assert exchange.last_response_headers["Retry-After"] == "7"
    await _add(paper, {"mode": "ban", "retryAfterS": 120, "count": 1, **ORDER})
    with pytest.raises(ccxt.DDoSProtection) as exc_info:
        await _buy(exchange, "f-3")
    assert "banned until" in str(exc_info.value)
    assert exchange.last_response_headers["Retry-After"] == "120"
    assert (await _buy(exchange, "f-4"))["status"] == "closed"  # both rules were for one call only


async def test_dropped_response_is_in_the_request_log_without_a_status(exchange: Any, paper: PaperServer) -> None:
    await _add(paper, {"mode": "drop", **ORDER})
    with pytest.raises(ccxt.NetworkError):
        await _buy(exchange, "f-5")
    _, rows = await paper.admin("GET", f"requests?apiKey={exchange.apiKey}")
    [dropped] = [r for r in rows if r["path"] == "/fapi/v1/order"]
    assert (dropped["status"], dropped["dropped"], dropped["fault"], dropped["clientOrderId"]) == (
        None,
        True,
        "drop",
        "f-5",
    )


async def test_latency_beyond_the_client_timeout_still_executes(
    make_client: ExchangeFactory, paper: PaperServer
) -> None:
    exchange = await make_client()
    await exchange.load_markets()
    exchange.timeout = 150  # ms
    await _add(paper, {"mode": "latency", "latencyMs": 400, **ORDER})
    with pytest.raises(ccxt.RequestTimeout):
        await _buy(exchange, "f-6")
    await asyncio.sleep(0.5)  # the venue was only slow: it executes once the delay is over
    exchange.timeout = 10_000
    found = await _lookup(exchange, "f-6")
    assert found is not None and found["status"] == "closed"
    _, rows = await paper.admin("GET", f"requests?apiKey={exchange.apiKey}")
    [late] = [r for r in rows if r["path"] == "/fapi/v1/order" and r["method"] == "POST"]
    assert late["answered"] - late["time"] >= 400, late  # the request log tells when the answer was ready


async def test_maintenance_refuses_everything_until_the_window_ends(exchange: Any, paper: PaperServer) -> None:
    await paper.admin("POST", "clock", {"mode": "manual"})
    await _add(paper, {"mode": "maintenance", "durationMs": 30_000})
    with pytest.raises(ccxt.OnMaintenance):
        await exchange.fetch_balance()
    with pytest.raises(ccxt.OnMaintenance):
        await exchange.fetch_time()
    await paper.admin("POST", "clock", {"advance_ms": 30_000})
    await exchange.load_time_difference()  # the venue's clock moved on; signed requests must follow it
    assert (await exchange.fetch_balance())["USDT"]["total"] == 10000.0
    _, faults = await paper.admin("GET", "faults")
    assert faults["counters"] == {"maintenance": 2}
    assert faults["rules"][0]["active"] is False


async def test_count_and_api_key_target_only_the_next_matching_calls(
    make_client: ExchangeFactory, paper: PaperServer
) -> None:
    victim, bystander = await make_client(), await make_client()
    await victim.load_markets()
    await bystander.load_markets()
    await _add(paper, {"mode": "disconnected", "count": 2, "apiKey": victim.apiKey})
    for _ in range(2):
        with pytest.raises(ccxt.OperationFailed):
            await victim.fetch_balance()
    await bystander.fetch_balance()
    await victim.fetch_balance()
    _, faults = await paper.admin("GET", "faults")
    assert faults["rules"][0]["fired"] == 2 and faults["rules"][0]["remaining"] == 0
    assert {e["apiKey"] for e in faults["log"]} == {victim.apiKey}
    status, cleared = await paper.admin("DELETE", "faults")
    assert status == 200 and cleared == {"rules": [], "log": [], "counters": {}}


def _record(seq: int) -> RequestRecord:
    return RequestRecord(seq, 0, "GET", "/fapi/v3/account", "k", None, None, {})


def test_probability_draws_from_the_seeded_rng() -> None:
    def fired(seed: int) -> list[bool]:
        injector = FaultInjector(lambda: 0, seed)
        injector.add({"mode": "http_error", "probability": 0.3})
        return [injector.choose(_record(i))[1] is not None for i in range(200)]

    assert fired(7) == fired(7)
    assert fired(7) != fired(8)
    assert 30 < sum(fired(7)) < 90


def test_bad_rules_are_refused() -> None:
    injector = FaultInjector(lambda: 0)
    for spec in (
        {"mode": "explode"},
        {"mode": "latency"},
        {"mode": "maintenance"},
        {"mode": "http_error", "status": 404},
        {"mode": "timeout", "probability": 0},
        {"mode": "timeout", "count": 0},
        {"mode": "timeout", "colour": "red"},
        {"mode": "missing_field"},
        {"mode": "wrong_type", "field": ""},
    ):
        with pytest.raises(FaultSpecError):
            injector.add(spec)


MARK = {"method": "GET", "path": "/fapi/v1/premiumIndex"}


async def _get(paper: PaperServer, path: str) -> tuple[int, str]:
    async with paper.http.get(f"{paper.base_url}{path}") as resp:
        return resp.status, await resp.text()


async def test_truncated_answers_are_cut_off_halfway(paper: PaperServer) -> None:
    status, whole = await _get(paper, "/fapi/v1/premiumIndex?symbol=BTCUSDT")
    await _add(paper, {"mode": "truncated", "count": 1, **MARK})
    status, cut = await _get(paper, "/fapi/v1/premiumIndex?symbol=BTCUSDT")
    assert status == 200
    assert cut.startswith('{"symbol": "BTCUSDT"') and abs(len(cut) - len(whole) // 2) <= 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)
    _, faults = await paper.admin("GET", "faults")
    assert faults["counters"] == {"truncated": 1}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"mode": "missing_field", "field": "markPrice"}, "absent"),
        ({"mode": "wrong_type", "field": "markPrice"}, None),
        ({"mode": "wrong_type", "field": "markPrice", "value": 65000}, 65000),
        ({"mode": "wrong_type", "field": "markPrice", "value": ["65000"]}, ["65000"]),
    ],
)
async def test_a_field_goes_missing_or_changes_type_in_every_object(
    paper: PaperServer, rule: dict[str, Any], expected: Any
) -> None:
    await _add(paper, {**rule, **MARK})
    for query in ("?symbol=BTCUSDT", ""):  # one object, and a list of them
        status, text = await _get(paper, f"/fapi/v1/premiumIndex{query}")
        assert status == 200
        body = json.loads(text)
        objects = body if isinstance(body, list) else [body]
        assert len(objects) >= 1 and all("indexPrice" in o for o in objects)  # the rest is untouched
        assert all(o.get("markPrice", "absent") == expected for o in objects)


async def test_a_corrupted_answer_was_executed(exchange: Any, paper: PaperServer) -> None:
    await _add(paper, {"mode": "truncated", **ORDER})
    with pytest.raises(ccxt.BaseError):
        await _buy(exchange, "c-1")
    found = await _lookup(exchange, "c-1")
    assert found is not None and found["status"] == "closed"


async def test_rules_load_from_yaml_at_start(make_client: ExchangeFactory) -> None:
    text = """
rules:
  - {mode: timeout, executed: true, method: POST, path: /fapi/v1/order, count: 1}
  - {mode: latency, latencyMs: 1, path: "/fapi/*"}
"""
    async with serve(options=PaperOptions(fault_rules=read_rules(text))) as server:
        await server.create_account("yaml-key", "yaml-secret")
        from controller.exchange.client import make_exchange

        exchange = make_exchange("binanceusdm", "yaml-key", "yaml-secret", base_url=server.base_url)
        try:
            await exchange.load_markets()
            with pytest.raises(ccxt.RequestTimeout):
                await _buy(exchange, "y-1")
            assert (await _lookup(exchange, "y-1")) is not None
        finally:
            await exchange.close()
        assert server.services.faults.counters["timeout"] == 1
        assert server.services.faults.counters["latency"] >= 3


async def test_stop_cancelled_by_the_venue_and_position_closed_outside(exchange: Any, paper: PaperServer) -> None:
    await _buy(exchange, "e-1")
    params = {"stopLossPrice": 60000, "reduceOnly": True, "clientOrderId": "sl-x"}
    await exchange.create_order(BTC, "market", "sell", 0.01, None, params)
    status, _ = await paper.admin(
        "POST", "cancel-algo", {"apiKey": exchange.apiKey, "symbol": "BTCUSDT", "clientAlgoId": "sl-x"}
    )
    assert status == 200
    stop = await exchange.fetch_order(None, BTC, {"trigger": True, "clientOrderId": "sl-x"})
    assert stop["status"] == "canceled"
    status, body = await paper.admin("POST", "external-close", {"apiKey": exchange.apiKey, "symbol": "BTCUSDT"})
    assert status == 200 and body["closed"] is True
    assert await exchange.fetch_positions([BTC]) == []
    status, body = await paper.admin("POST", "close-position", {"apiKey": exchange.apiKey, "symbol": "BTCUSDT"})
    assert status == 200 and body["closed"] is False  # the old path still answers, now with nothing to close
    _, faults = await paper.admin("GET", "faults")
    assert faults["counters"] == {"cancel_algo": 1, "external_close": 2}
    assert [(e["mode"], e["apiKey"]) for e in faults["log"]][:2] == [
        ("cancel_algo", exchange.apiKey),
        ("external_close", exchange.apiKey),
    ]
