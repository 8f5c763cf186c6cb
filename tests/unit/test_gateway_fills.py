"""What of an entry's fill, as its answer or a push told it, the gateway adds to a snapshot's position (a pure rule
of the kept answers and the snapshot; the paper and e2e suites run it against the venues)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from controller.api.v1alpha1 import OrderRecord, OrderState, Phase, PositionStatus
from controller.exchange.binanceusdm import BinanceUsdm
from controller.exchange.port import PushedPosition
from controller.reconcile.model import ObservedOrder, OpenOrder, Purpose, Side, Snapshot, client_order_id

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
AMOUNT = Decimal("0.010")
ENTRY = "wabc-en"


def order(state: OrderState, filled: str) -> ObservedOrder:
    return ObservedOrder(ENTRY, "1", state, Decimal("0.010"), Decimal(filled))


def snapshot(taken_at: float, seen_filled: str | None) -> Snapshot:
    opened = {} if seen_filled is None else {ENTRY: OpenOrder(BTC, "buy", order(OrderState.OPEN, seen_filled))}
    return Snapshot(taken_at, {(BTC, Side.LONG): Decimal(seen_filled or 0)}, {}, opened, {BTC: Decimal(65000)})


@pytest.mark.parametrize(
    ("placed_at", "told_at", "taken_at", "seen_filled", "unseen"),
    [
        (10.0, 10.0, 5.0, None, "0.010"),  # the snapshot predates the placement: all of the answer's fill
        (None, 20.0, 15.0, "0.004", "0.006"),  # it saw the order open, part filled: the rest
        (None, 20.0, 15.0, None, "0"),  # it saw no open order and came after the placement: it holds the fills
        (10.0, 20.0, 15.0, None, "0"),  # likewise, the placement known
        (10.0, 12.0, 15.0, "0.004", "0"),  # the snapshot is newer than what was told
    ],
)
def test_the_fill_a_snapshot_does_not_hold_yet(
    placed_at: float | None, told_at: float, taken_at: float, seen_filled: str | None, unseen: str
) -> None:
    gateway = BinanceUsdm(client=None)
    if placed_at is not None:
        gateway.remember(
            placed_at,
            {"clientOrderId": ENTRY, "orderId": 1, "status": "NEW", "origQty": "0.010"},
            lambda info: order(OrderState.OPEN, "0"),
        )
    gateway.keep_answer(told_at, order(OrderState.FILLED, "0.010"))
    assert gateway.unseen_fill(ENTRY, snapshot(taken_at, seen_filled)) == Decimal(unseen)


def test_a_push_of_a_full_fill_is_kept_and_nothing_else() -> None:
    gateway = BinanceUsdm(client=None)
    partial = {"c": ENTRY, "i": 1, "X": "PARTIALLY_FILLED", "q": "0.010", "z": "0.004", "ap": "65000"}
    assert gateway.pushed_fill({"info": partial}) is None and gateway.ended(ENTRY) is None
    algo = {"caid": "wabc-sl1", "aid": 7, "X": "CANCELED", "q": "0.01", "tp": "60000", "ai": ""}
    assert gateway.pushed_fill({"info": algo}) is None
    full = {**partial, "X": "FILLED", "z": "0.010"}
    kept = gateway.pushed_fill({"info": full})
    assert kept is not None and gateway.ended(ENTRY) == kept and kept.filled == Decimal("0.010")


def test_a_flat_push_is_news_to_older_snapshots_until_a_push_shows_the_position_again() -> None:
    gateway = BinanceUsdm(client=None)
    before = time.monotonic()
    gateway.pushed_size(PushedPosition("BTC/USDT:USDT", None, Decimal(0)))  # one-way: flat on both sides
    assert gateway.flat_since("BTC/USDT:USDT", Side.LONG, before)
    assert gateway.flat_since("BTC/USDT:USDT", Side.SHORT, before)
    assert not gateway.flat_since("BTC/USDT:USDT", Side.LONG, time.monotonic())  # a newer read knows it
    assert not gateway.flat_since("ETH/USDT:USDT", Side.LONG, before)
    gateway.pushed_size(PushedPosition("BTC/USDT:USDT", Side.LONG, Decimal("0.010")))
    assert not gateway.flat_since("BTC/USDT:USDT", Side.LONG, before)
    gateway.pushed_size(PushedPosition("BTC/USDT:USDT", Side.SHORT, Decimal(0)))  # hedge mode: one side only
    assert gateway.flat_since("BTC/USDT:USDT", Side.SHORT, before)
    assert not gateway.flat_since("BTC/USDT:USDT", Side.LONG, before)


async def test_who_sent_an_order_is_known_from_its_push_with_no_look_up() -> None:
    gateway = BinanceUsdm(client=None)  # a look-up would fail: there is no client
    for order_id, client_id in (("41", "web_close_1"), ("42", "autoclose-1")):
        gateway.pushed_order({"clientOrderId": client_id, "status": "closed", "filled": 1, "info": {"i": order_id}})
    gateway.pushed_order({"clientOrderId": "w-stop", "status": "canceled", "filled": 0, "info": {"aid": "43"}})
    assert await gateway.liquidation_orders("BTC/USDT:USDT", {"41", "42"}) == {"42"}
    assert "43" not in gateway._sent_by_venue  # an algo order's id is another series
    assert gateway._pushed_clients["41"] == "web_close_1"  # what a trade of it will say it was


# --- an outside close told by the stream's own trades ---------------------------------------------------------

OWN_ENTRY = client_order_id("uid-1", Purpose.ENTRY)
ENTERED = PositionStatus(
    phase=Phase.PROTECTED,
    entryOrder=OrderRecord(clientOrderId=OWN_ENTRY, exchangeOrderId="1", state=OrderState.FILLED, amount=AMOUNT),
)


def trade_push(symbol: str, client_id: str, order_id: str, traded_ms: int, execution: str = "TRADE") -> dict[str, Any]:
    """A ccxt.pro-parsed ORDER_TRADE_UPDATE (``info``: Binance's ``o`` object) of one trade of 0.010 at 65,000."""
    info = {"c": client_id, "i": order_id, "x": execution, "X": "FILLED", "l": "0.010", "L": "65000", "n": "0.26",
            "rp": "1.5", "T": traded_ms, "t": int(order_id) * 10}  # fmt: skip
    return {"symbol": symbol, "clientOrderId": client_id, "status": "closed", "filled": 0.01, "info": info}


def test_a_foreign_trade_pushed_after_the_entrys_own_tells_the_exit_with_no_read() -> None:
    gateway = BinanceUsdm(client=None)  # a read would fail: there is no client
    gateway.pushed_order(trade_push(BTC, OWN_ENTRY, "1", 1_000))
    assert gateway.pushed_exit(BTC, ENTERED) is None  # only its own trade: nothing closed it yet
    gateway.pushed_order(trade_push(ETH, "web_close_9", "9", 2_000))  # another symbol's says nothing of this one
    gateway.pushed_order(trade_push(BTC, "web_close_1", "41", 2_000, execution="NEW"))  # not a trade
    assert gateway.pushed_exit(BTC, ENTERED) is None
    gateway.pushed_order(trade_push(BTC, "web_close_1", "41", 2_000))
    gateway.pushed_order(trade_push(BTC, "web_close_1", "41", 2_000))  # a push repeated is one trade
    trades = gateway.pushed_exit(BTC, ENTERED)
    assert trades is not None and [(t.order_id, t.client_order_id) for t in trades] == [
        ("1", OWN_ENTRY),
        ("41", "web_close_1"),
    ]
    outside = trades[1]
    assert (outside.amount, outside.price, outside.fee, outside.realized_pnl) == (
        Decimal("0.010"),
        Decimal("65000"),
        Decimal("0.26"),
        Decimal("1.5"),
    )
    assert not outside.liquidation and outside.traded_at_ms == 2_000
    gateway.stream_gap()  # pushes may have been missed: the trades are read again
    assert gateway.pushed_exit(BTC, ENTERED) is None


@pytest.mark.parametrize(
    ("pushes", "liquidation"),
    [
        ([(OWN_ENTRY, "1", 2_000), ("web_close_1", "41", 1_000)], None),  # the venue's clock puts it before the entry
        ([("web_close_1", "41", 2_000)], None),  # the entry's own trade was not pushed (to a replica since gone)
        ([(OWN_ENTRY, "1", 1_000), ("autoclose-7", "42", 2_000)], True),  # the venue liquidated it
        ([(OWN_ENTRY, "1", 1_000), (client_order_id("uid-2", Purpose.ENTRY), "43", 2_000)], False),  # another's
    ],
)
def test_what_the_pushed_trades_tell_of_a_flat_position(
    pushes: list[tuple[str, str, int]], liquidation: bool | None
) -> None:
    gateway = BinanceUsdm(client=None)
    for client_id, order_id, traded_ms in pushes:
        gateway.pushed_order(trade_push(BTC, client_id, order_id, traded_ms))
    trades = gateway.pushed_exit(BTC, ENTERED)
    if liquidation is None:
        assert trades is None
    else:
        assert trades is not None and trades[-1].liquidation is liquidation
