"""Unit tests of the paper venue's state machine (no HTTP): positions, PnL, fees, triggers, filters."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper.errors import VenueError
from paper.models import Account, AlgoRequest, OrderRequest
from paper.venue import Venue

D = Decimal
NOW = 1_790_000_000_000


def make_venue() -> tuple[Venue, Account]:
    venue = Venue(clock=lambda: NOW)
    account, created = venue.create_account("k", "s", D("10000"))
    assert created
    return venue, account


def market(
    venue: Venue,
    account: Account,
    side: str,
    qty: str,
    *,
    reduce_only: bool = False,
    client_order_id: str | None = None,
    mark: str | None = None,
) -> None:
    """A market order on BTCUSDT, after moving the mark to ``mark`` when given."""
    if mark is not None:
        venue.set_mark_price("BTCUSDT", D(mark))
    request = OrderRequest(
        symbol="BTCUSDT",
        side=side,
        type="MARKET",
        quantity=D(qty),
        reduce_only=reduce_only,
        client_order_id=client_order_id,
    )
    venue.place_order(account, request)


def stop(
    venue: Venue,
    account: Account,
    cid: str,
    trigger: str,
    qty: str | None = "0.010",
    *,
    side: str = "SELL",
    order_type: str = "STOP_MARKET",
    reduce_only: bool = True,
    close_position: bool = False,
) -> None:
    request = AlgoRequest(
        symbol="BTCUSDT",
        side=side,
        order_type=order_type,
        quantity=D(qty) if qty is not None else None,
        trigger_price=D(trigger),
        client_algo_id=cid,
        reduce_only=reduce_only,
        close_position=close_position,
    )
    venue.place_algo_order(account, request)


def error_code(exc_info: pytest.ExceptionInfo[VenueError]) -> int:
    return exc_info.value.code


def test_entry_price_is_volume_weighted_average() -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", "0.002", mark="60000")
    market(venue, account, "BUY", "0.006", mark="64000")
    pos = venue.position(account, "BTCUSDT")
    assert (pos.amount, pos.entry_price) == (D("0.008"), D("63000"))
    market(venue, account, "SELL", "0.001", reduce_only=True)  # reducing leaves the entry price alone
    assert (pos.amount, pos.entry_price) == (D("0.007"), D("63000"))


def test_realized_pnl_and_fees_are_exact_decimals() -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", "0.013", mark="65000.1")
    market(venue, account, "SELL", "0.013", mark="65432.7")
    buy, sell = account.trades
    assert buy.commission == D("0.42250065")  # 0.013 * 65000.1 * 0.0005 = 0.422500650
    assert sell.commission == D("0.42531255")  # 0.013 * 65432.7 * 0.0005 = 0.4253125500
    assert sell.realized_pnl == D("5.6238")  # 0.013 * (65432.7 - 65000.1)
    assert buy.realized_pnl == 0 and not buy.maker
    assert account.wallet_balance == D("10000") + D("5.6238") - D("0.42250065") - D("0.42531255")
    assert all(isinstance(v, Decimal) for v in (buy.price, buy.qty, buy.quote_qty, account.wallet_balance))
    assert venue.position(account, "BTCUSDT").amount == 0


def test_short_pnl_and_flip_through_zero() -> None:
    venue, account = make_venue()
    market(venue, account, "SELL", "0.010")
    market(venue, account, "BUY", "0.030", mark="64000")  # closes the short (+10 realized) and opens 0.02 long at 64000
    pos = venue.position(account, "BTCUSDT")
    assert (pos.amount, pos.entry_price) == (D("0.020"), D("64000"))
    assert account.trades[-1].realized_pnl == D("10")


def test_two_reduce_only_stops_triggering_together_never_flip() -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", "0.010")
    stop(venue, account, "sl-a", "64000")
    stop(venue, account, "sl-b", "63500")
    venue.set_mark_price("BTCUSDT", D("63000"))
    assert venue.position(account, "BTCUSDT").amount == 0
    first, second = sorted(account.algo_orders.values(), key=lambda a: a.algo_id)
    assert (first.algo_status, second.algo_status) == ("FINISHED", "EXPIRED")
    assert first.actual_order_id is not None and second.actual_order_id is None
    assert [t.side for t in account.trades] == ["BUY", "SELL"]


def test_reduce_only_stop_is_capped_to_the_remaining_position() -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", "0.010")
    stop(venue, account, "sl-a", "64000", qty="0.006")
    stop(venue, account, "sl-b", "64000", qty="0.006")
    venue.set_mark_price("BTCUSDT", D("63900"))
    assert venue.position(account, "BTCUSDT").amount == 0
    assert [t.qty for t in account.trades] == [D("0.010"), D("0.006"), D("0.004")]
    child = account.orders[account.trades[-1].order_id]  # the triggered order carries the capped quantity
    assert (child.quantity, child.executed_qty, child.status) == (D("0.004"), D("0.004"), "FILLED")


def test_close_position_stop_closes_whatever_is_open_and_expires_when_flat() -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", "0.010")
    market(venue, account, "BUY", "0.005")
    stop(venue, account, "cp", "64000", qty=None, reduce_only=False, close_position=True)
    venue.set_mark_price("BTCUSDT", D("64000"))
    assert venue.position(account, "BTCUSDT").amount == 0
    assert account.trades[-1].qty == D("0.015")
    stop(venue, account, "cp-2", "63000", qty=None, reduce_only=False, close_position=True)
    venue.set_mark_price("BTCUSDT", D("62000"))
    assert account.algo_orders[max(account.algo_orders)].algo_status == "EXPIRED"
    assert len(account.trades) == 3


def test_trigger_directions() -> None:
    venue, account = make_venue()
    market(venue, account, "SELL", "0.010")
    stop(venue, account, "buy-stop", "66000", side="BUY")  # fires on a rise
    stop(venue, account, "buy-tp", "60000", side="BUY", order_type="TAKE_PROFIT_MARKET", reduce_only=False)
    venue.set_mark_price("BTCUSDT", D("65999.9"))
    assert all(a.algo_status == "NEW" for a in account.algo_orders.values())
    venue.set_mark_price("BTCUSDT", D("66000"))
    statuses = {a.client_algo_id: a.algo_status for a in account.algo_orders.values()}
    assert statuses == {"buy-stop": "FINISHED", "buy-tp": "NEW"}
    with pytest.raises(VenueError) as exc_info:  # a sell take-profit below the mark would fire at once
        stop(venue, account, "sell-tp", "65000", order_type="TAKE_PROFIT_MARKET", reduce_only=False)
    assert error_code(exc_info) == -2021


def test_trailing_stop_follows_the_high() -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", "0.010")
    venue.place_algo_order(
        account,
        AlgoRequest(
            symbol="BTCUSDT",
            side="SELL",
            order_type="TRAILING_STOP_MARKET",
            quantity=D("0.010"),
            callback_rate=D("1"),
            activate_price=D("66000"),
            reduce_only=True,
        ),
    )
    (algo,) = account.algo_orders.values()
    venue.set_mark_price("BTCUSDT", D("64000"))  # not activated yet: no trigger on a drop
    venue.set_mark_price("BTCUSDT", D("67000"))
    venue.set_mark_price("BTCUSDT", D("68000"))
    venue.set_mark_price("BTCUSDT", D("67400"))  # 68000 * 0.99 = 67320
    assert algo.algo_status == "NEW"
    venue.set_mark_price("BTCUSDT", D("67320"))
    assert algo.algo_status == "FINISHED"
    assert venue.position(account, "BTCUSDT").amount == 0


def test_resting_limit_fills_at_its_price_as_maker() -> None:
    venue, account = make_venue()
    order = venue.place_order(
        account,
        OrderRequest(
            symbol="BTCUSDT", side="BUY", type="LIMIT", quantity=D("0.010"), price=D("64000"), time_in_force="GTC"
        ),
    )
    assert order.status == "NEW"
    venue.set_mark_price("BTCUSDT", D("63000.5"))
    assert (order.status, order.avg_price) == ("FILLED", D("64000"))
    (trade,) = account.trades
    assert trade.maker and trade.commission == D("0.128")


@pytest.mark.parametrize(
    ("qty", "price", "code"),
    [
        ("0.0101", "64000", -1111),
        ("0.010", "64000.123", -1111),
        ("0.010", "64000.05", -4014),
        ("0", "64000", -4003),
        ("1001", "64000", -1013),
        ("0.001", "64000", -4164),
        ("0.010", "70000", -4016),
    ],
)
def test_filters(qty: str, price: str, code: int) -> None:
    venue, account = make_venue()
    request = OrderRequest(
        symbol="BTCUSDT", side="BUY", type="LIMIT", quantity=D(qty), price=D(price), time_in_force="GTC"
    )
    with pytest.raises(VenueError) as exc_info:
        venue.place_order(account, request)
    assert error_code(exc_info) == code


def test_order_rejections() -> None:
    venue, account = make_venue()
    with pytest.raises(VenueError) as exc_info:
        venue.place_order(account, OrderRequest(symbol="BTCUSDT", side="SELL", type="STOP_MARKET", quantity=D("1")))
    assert error_code(exc_info) == -4120
    with pytest.raises(VenueError) as exc_info:
        market(venue, account, "BUY", "5")
    assert error_code(exc_info) == -2019
    market(venue, account, "BUY", "0.010", client_order_id="c1")
    with pytest.raises(VenueError) as exc_info:
        market(venue, account, "BUY", "0.010", client_order_id="c1")
    assert error_code(exc_info) == -4116
    with pytest.raises(VenueError) as exc_info:
        market(venue, account, "BUY", "0.010", reduce_only=True)
    assert error_code(exc_info) == -2022
    with pytest.raises(VenueError) as exc_info:
        venue.cancel_order(account, "BTCUSDT", None, "c1")
    assert error_code(exc_info) == -2011
    with pytest.raises(VenueError) as exc_info:
        venue.find_order(account, "BTCUSDT", 1, None)
    assert error_code(exc_info) == -2013


@settings(max_examples=60, deadline=None)
@given(
    entry=st.integers(min_value=10, max_value=60),
    stops=st.lists(
        st.tuples(st.integers(min_value=1, max_value=80), st.integers(min_value=600, max_value=649)),
        min_size=1,
        max_size=5,
    ),
    final=st.integers(min_value=550, max_value=660),
)
def test_reduce_only_stops_never_flip_and_money_adds_up(entry: int, stops: list[tuple[int, int]], final: int) -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", str(D(entry) / 1000))
    for i, (qty, trigger) in enumerate(stops):
        stop(venue, account, f"sl-{i}", str(D(trigger) * 100), qty=str(D(qty) / 1000))
    venue.set_mark_price("BTCUSDT", D(final) * 100)
    assert venue.position(account, "BTCUSDT").amount >= 0
    realized = sum((t.realized_pnl for t in account.trades), D(0))
    fees = sum((t.commission for t in account.trades), D(0))
    assert account.wallet_balance == D("10000") + realized - fees
