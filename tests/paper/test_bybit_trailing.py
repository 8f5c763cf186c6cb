"""Warden's Bybit adapter sets, reads back, clears and is closed by the position-level trailing stop
(``/v5/position/trading-stop``) of the paper exchange's Bybit front, over real ccxt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from controller.api.v1alpha1 import Side
from controller.exchange import bybit
from controller.reconcile.model import (
    OrderSide,
    PlaceMarketOrder,
    PlaceStopOrder,
    Purpose,
    SetPositionTrailing,
)
from tests.paper.conftest import PaperServer, bybit_account

BTC = "BTC/USDT:USDT"


async def gateway_on(paper: PaperServer, *, hedged: bool = False) -> bybit.Bybit:
    api_key, secret = await bybit_account(paper)
    client = bybit.make_client(api_key, secret, {}, pro=False)
    bybit.point_at(client, paper.base_url, paper.base_url.replace("http://", "ws://"))
    if hedged:
        await client.load_markets()
        await client.set_position_mode(True, BTC)
    return bybit.Bybit(client, hedged=hedged)


@pytest.fixture
async def gateway(paper: PaperServer) -> AsyncIterator[bybit.Bybit]:
    venue = await gateway_on(paper)
    yield venue
    await venue.close()


async def trading_stops(paper: PaperServer, gateway: bybit.Bybit) -> list[dict[str, Any]]:
    status, logged = await paper.admin("GET", f"requests?apiKey={gateway.client.apiKey}")
    assert status == 200, logged
    rows: list[dict[str, Any]] = logged if isinstance(logged, list) else logged["requests"]
    return [r for r in rows if r["path"] == "/v5/position/trading-stop"]


async def long_with_stop(gateway: bybit.Bybit, tag: str, side: OrderSide = OrderSide.BUY) -> None:
    exit_side = OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY
    stop = Decimal("60000") if side is OrderSide.BUY else Decimal("70000")
    await gateway.execute(BTC, PlaceMarketOrder(Purpose.ENTRY, f"{tag}-en", side, Decimal("0.010"), False))
    await gateway.execute(BTC, PlaceStopOrder(f"{tag}-sl", exit_side, Decimal("0.010"), stop))


async def test_set_twice_read_back_from_the_position_and_cleared(paper: PaperServer, gateway: bybit.Bybit) -> None:
    await long_with_stop(gateway, "ts1")
    trailing = SetPositionTrailing(Side.LONG, Decimal("650.0"), Decimal("66000.0"))
    await gateway.execute(BTC, trailing)
    await gateway.execute(BTC, trailing)  # the same value again: harmless
    shown = await gateway.snapshot(frozenset({BTC}))
    assert shown.trailing == {(BTC, Side.LONG): Decimal("650.0")}
    observed = [o for o in shown.open_orders.values() if o.conditional]
    assert {o.order.client_order_id for o in observed} >= {"ts1-sl"}  # Warden's own stop rests beneath it
    await gateway.execute(BTC, SetPositionTrailing(Side.LONG, Decimal(0)))
    assert (await gateway.snapshot(frozenset({BTC}))).trailing == {}
    # Set, set again, clear: each answered (the request's fields: tests/unit/test_bybit.py).
    assert [(r["symbol"], r["status"]) for r in await trading_stops(paper, gateway)] == [("BTCUSDT", 200)] * 3


async def test_a_price_move_triggers_it_and_its_trade_is_marked(paper: PaperServer, gateway: bybit.Bybit) -> None:
    await long_with_stop(gateway, "ts2")
    await gateway.execute(BTC, SetPositionTrailing(Side.LONG, Decimal("650.0"), Decimal("66000.0")))
    for price in ("65900", "66000", "67000", "66500"):  # activated at 66000, best 67000: triggers below 66350
        await paper.set_price("BTCUSDT", price)
        assert (await gateway.snapshot(frozenset({BTC}))).sizes == {(BTC, Side.LONG): Decimal("0.010")}, price
    await paper.set_price("BTCUSDT", "66300")
    after = await gateway.snapshot(frozenset({BTC}))
    assert after.sizes == {} and after.trailing == {}
    trades = await gateway.trades(BTC, None)
    trailed = [t for t in trades if t.position_trailing is not None]
    assert len(trades) == 2 and [t.position_trailing for t in trailed] == [OrderSide.SELL]
    assert trailed[0].realized_pnl == Decimal("13.000")  # (66300 - 65000) x 0.010


async def test_in_hedge_mode_it_names_the_side_it_trails(paper: PaperServer) -> None:
    gateway = await gateway_on(paper, hedged=True)
    try:
        await long_with_stop(gateway, "ts3")
        await long_with_stop(gateway, "ts4", OrderSide.SELL)
        await gateway.execute(BTC, SetPositionTrailing(Side.SHORT, Decimal("650.0")))
        shown = await gateway.snapshot(frozenset({BTC}))
        assert shown.trailing == {(BTC, Side.SHORT): Decimal("650.0")}  # positionIdx 2: the short side
    finally:
        await gateway.close()
