"""Warden's gateway, over real ccxt, facing each corrupting fault mode: a BadResponse naming endpoint and field."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from controller.api.v1alpha1 import OrderRecord, OrderState, PositionSpec, PositionStatus
from controller.exchange.binanceusdm import BinanceUsdm as Gateway
from controller.exchange.gateway import MARKETS_RETRY_S
from controller.reconcile.model import Observation
from tests.paper.conftest import ExchangeFactory, PaperServer

SPEC = PositionSpec.model_validate(
    {
        "accountRef": {"name": "paper"},
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "amount": "0.010",
        "stopLoss": {"price": "60000"},
    }
)
ENTRY, STOP = "w-en", "w-sl1"
# The stop rests (it is among the open algo orders); the entry filled, but status does not know yet: it is looked up.
PROTECTED = PositionStatus(
    entryOrder=OrderRecord(clientOrderId=ENTRY, state=OrderState.OPEN, amount=Decimal("0.010")),
    stopOrder=OrderRecord(clientOrderId=STOP, state=OrderState.OPEN, amount=Decimal("0.010")),
)
MARK = "GET /fapi/v1/premiumIndex"
POSITIONS = "GET /fapi/v3/positionRisk"
STOPS = "GET /fapi/v1/openAlgoOrders"
ORDER = "GET /fapi/v1/order"
MARKETS = "GET /fapi/v1/exchangeInfo"


@pytest.fixture
async def gateway(make_client: ExchangeFactory) -> Gateway:
    """A long of 0.010 BTC behind a resting stop, seen through a gateway that has not loaded markets yet."""
    client = await make_client()
    await client.create_order("BTC/USDT:USDT", "market", "buy", 0.01, None, {"clientOrderId": ENTRY})
    params = {"stopLossPrice": 60000, "reduceOnly": True, "clientOrderId": STOP}
    await client.create_order("BTC/USDT:USDT", "market", "sell", 0.01, None, params)
    client.markets = client.markets_loading = None  # the gateway loads them (through the fault) itself
    return Gateway(client)


async def observe(gateway: Gateway) -> Observation:
    """What a reconcile pass reads: the account's snapshot, then this Position's view of it. The snapshot also
    watches ETH, where no position carries the mark: its mark is read on its own (premiumIndex); BTC's comes with
    its position."""
    return await gateway.observe(SPEC, PROTECTED, await gateway.snapshot(frozenset({SPEC.symbol, "ETH/USDT:USDT"})))


@pytest.mark.parametrize(
    ("endpoint", "rule", "message"),
    [
        (MARK, {"mode": "truncated"}, f"the answer to {MARK} is malformed: not valid JSON"),
        (
            MARK,
            {"mode": "missing_field", "field": "markPrice"},
            f"the answer to {MARK} is malformed: field 'markPrice' is missing",
        ),
        (MARK, {"mode": "wrong_type", "field": "markPrice"}, "field 'markPrice' is null, not a number"),
        (
            MARK,
            {"mode": "wrong_type", "field": "markPrice", "value": "n/a"},
            "field 'markPrice' is 'n/a', not a number",
        ),
        (MARK, {"mode": "wrong_type", "field": "markPrice", "value": {"p": 1}}, "field 'markPrice' is an object"),
        (POSITIONS, {"mode": "truncated"}, f"the answer to {POSITIONS} is malformed: not valid JSON"),
        (POSITIONS, {"mode": "missing_field", "field": "positionAmt"}, "field 'positionAmt' is missing"),
        (POSITIONS, {"mode": "wrong_type", "field": "positionAmt"}, "field 'positionAmt' is null, not a number"),
        # Not among the fields checked on arrival: caught where it is parsed, naming the requests of the read.
        (POSITIONS, {"mode": "wrong_type", "field": "entryPrice", "value": "n/a"}, f"{POSITIONS} is malformed"),
        (POSITIONS, {"mode": "wrong_type", "field": "markPrice", "value": "n/a"}, f"{POSITIONS} is malformed"),
        (STOPS, {"mode": "truncated"}, f"the answer to {STOPS} is malformed: not valid JSON"),
        (
            STOPS,
            {"mode": "missing_field", "field": "clientAlgoId"},
            f"{STOPS} is malformed: field 'clientAlgoId' is missing",
        ),
        (ORDER, {"mode": "truncated"}, f"the answer to {ORDER} is malformed: not valid JSON"),
        (
            ORDER,
            {"mode": "wrong_type", "field": "status", "value": 2},
            f"{ORDER} is malformed: field 'status' is 2, not a string",
        ),
        (MARKETS, {"mode": "truncated"}, f"the answer to {MARKETS} is malformed: not valid JSON"),
        (MARKETS, {"mode": "missing_field", "field": "symbols"}, "the exchange listed no markets"),
        (MARKETS, {"mode": "wrong_type", "field": "tickSize", "value": "n/a"}, "market BTC/USDT:USDT is malformed"),
    ],
)
async def test_each_corrupted_answer_is_a_bad_response_naming_what_was_wrong(
    gateway: Gateway, paper: PaperServer, endpoint: str, rule: dict[str, Any], message: str
) -> None:
    method, path = endpoint.split(" ")
    status, body = await paper.admin("POST", "faults", {**rule, "method": method, "path": path})
    assert status == 201, body
    with pytest.raises(ccxt.BadResponse) as exc_info:
        await observe(gateway)
    assert message in str(exc_info.value)
    await paper.admin("DELETE", "faults")
    if endpoint == MARKETS:
        await asyncio.sleep(MARKETS_RETRY_S)  # a failed market load is the account's answer for that long
    observation = await observe(gateway)  # the same gateway recovers once the answers are whole
    assert observation.mark_price > 0 and observation.position_size == Decimal("0.010")
    states = [(observation.orders[c] or pytest.fail(f"{c} not found")).state for c in (ENTRY, STOP)]
    assert states == [OrderState.FILLED, OrderState.OPEN]
