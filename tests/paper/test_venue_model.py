"""Unit tests of the venue's account and matching model: position modes, margin, liquidation, prices, depth, events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from paper.errors import VenueError
from paper.models import Account, AlgoRequest, OrderRequest, OrderUpdate
from paper.risk import liquidation_price
from paper.venue import Venue
from tests.paper.test_venue import NOW, error_code, make_venue, market, stop

D = Decimal
BTC = "BTCUSDT"


def order(venue: Venue, account: Account, **fields: Any) -> Any:
    """Place a regular BTCUSDT order (LIMIT GTC unless told otherwise)."""
    request: dict[str, Any] = {"symbol": BTC, "type": "LIMIT", "time_in_force": "GTC"} | fields
    for name in ("quantity", "price"):
        if isinstance(request.get(name), str):
            request[name] = D(request[name])
    if request["type"] == "MARKET":
        request.pop("time_in_force")
    return venue.place_order(account, OrderRequest(**request))


def refused(code: int, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(VenueError) as exc_info:
        call(*args, **kwargs)
    assert error_code(exc_info) == code


# ------------------------------------------------------------------------------------------ position modes


def test_hedge_mode_keeps_long_and_short_apart() -> None:
    venue, account = make_venue()
    venue.set_position_mode(account, True)
    order(venue, account, type="MARKET", side="BUY", quantity="0.010", position_side="LONG")
    order(venue, account, type="MARKET", side="SELL", quantity="0.004", position_side="SHORT")
    assert venue.position(account, BTC, "LONG").amount == D("0.010")
    assert venue.position(account, BTC, "SHORT").amount == D("-0.004")
    rows = [(p.position_side, p.amount) for p in venue.metrics(account).positions]
    assert rows == [("LONG", D("0.010")), ("SHORT", D("-0.004"))]
    # a SELL on LONG only closes: capped to the long, never opening a short
    closing = order(venue, account, type="MARKET", side="SELL", quantity="0.020", position_side="LONG")
    assert (closing.executed_qty, closing.status) == (D("0.010"), "EXPIRED")
    assert venue.position(account, BTC, "LONG").amount == 0
    assert venue.position(account, BTC, "SHORT").amount == D("-0.004")
    rows = [(p.position_side, p.amount) for p in venue.metrics(account).positions]
    assert rows == [("LONG", D(0)), ("SHORT", D("-0.004"))]  # Binance lists both sides of a hedged symbol
    refused(-2022, order, venue, account, type="MARKET", side="SELL", quantity="0.010", position_side="LONG")


def test_position_side_must_match_the_mode() -> None:
    venue, account = make_venue()
    refused(-4061, order, venue, account, type="MARKET", side="BUY", quantity="0.010", position_side="LONG")
    venue.set_position_mode(account, True)
    refused(-4061, order, venue, account, type="MARKET", side="BUY", quantity="0.010")
    refused(
        -1106,
        order,
        venue,
        account,
        type="MARKET",
        side="SELL",
        quantity="0.010",
        position_side="LONG",
        reduce_only=True,
    )
    refused(-1130, order, venue, account, type="MARKET", side="BUY", quantity="0.010", position_side="UP")


def test_position_mode_switch_is_refused_with_orders_or_positions() -> None:
    venue, account = make_venue()
    refused(-4059, venue.set_position_mode, account, False)
    resting = order(venue, account, side="BUY", quantity="0.010", price="60000")
    refused(-4067, venue.set_position_mode, account, True)
    venue.cancel_order(account, BTC, resting.order_id, None)
    market(venue, account, "BUY", "0.010")
    refused(-4068, venue.set_position_mode, account, True)
    market(venue, account, "SELL", "0.010", reduce_only=True)
    venue.set_position_mode(account, True)
    assert account.dual_side_position


# ------------------------------------------------------------------------------------------ margin


def test_isolated_margin_sets_aside_and_releases_pro_rata() -> None:
    venue, account = make_venue()
    venue.set_margin_type(account, BTC, "ISOLATED")
    market(venue, account, "BUY", "0.100")  # 6500 / 20 = 325 set aside
    pos = venue.position(account, BTC)
    assert pos.isolated_wallet == D("325")
    metrics = venue.metrics(account)
    assert metrics.cross_wallet_balance == account.wallet_balance - D("325")
    assert metrics.available_balance == metrics.cross_wallet_balance  # nothing is cross
    market(venue, account, "SELL", "0.040", reduce_only=True)
    assert pos.isolated_wallet == D("195")
    refused(-4048, venue.set_margin_type, account, BTC, "CROSSED")


def test_margin_and_leverage_caps() -> None:
    venue, account = make_venue()
    refused(-2019, market, venue, account, "BUY", "5")  # 5 * 65000 / 20 = 16250 > 10000
    venue.set_leverage(account, BTC, 125)
    refused(-2027, market, venue, account, "BUY", "1")  # 65000 > 50000, the 125x bracket's cap
    venue.set_leverage(account, BTC, 20)
    market(venue, account, "BUY", "1")
    refused(-2027, venue.set_leverage, account, BTC, 125)
    assert venue.set_leverage(account, BTC, 100) == (100, D("600000"))


# ------------------------------------------------------------------------------------------ liquidation


@pytest.mark.parametrize("margin_type", ["ISOLATED", "CROSSED"])
def test_liquidation_closes_at_the_liquidation_price(margin_type: str) -> None:
    venue, account = make_venue()
    if margin_type == "ISOLATED":
        venue.set_margin_type(account, BTC, margin_type)
    else:
        account.wallet_balance = D("500")
    market(venue, account, "BUY", "0.100")
    resting = order(venue, account, side="SELL", quantity="0.010", price="68000")
    metrics = venue.metrics(account)
    liq = liquidation_price(metrics, metrics.positions[0], venue.markets[BTC])
    expected = {"ISOLATED": (D("61997.9"), D("61998.0")), "CROSSED": (D("60273.5"), D("60273.6"))}[margin_type]
    assert expected[0] < liq < expected[1]
    venue.set_mark_price(BTC, expected[1] + D("0.1"))
    assert venue.position(account, BTC).amount == D("0.100")
    venue.set_mark_price(BTC, D("50000"))  # gaps far through it: still closed at the liquidation price
    assert venue.position(account, BTC).amount == 0
    assert resting.status == "CANCELED"
    trade = account.trades[-1]
    assert trade.liquidation and trade.price == expected[1] and trade.qty == D("0.100")
    forced = account.orders[trade.order_id]
    assert forced.client_order_id.startswith("autoclose-")
    assert (forced.type, forced.time_in_force, forced.status, forced.reduce_only) == ("LIMIT", "IOC", "FILLED", True)
    realized = sum((t.realized_pnl for t in account.trades), D(0))
    fees = sum((t.commission for t in account.trades), D(0))
    start = D("10000") if margin_type == "ISOLATED" else D("500")
    assert account.wallet_balance == start + realized - fees
    assert venue.position(account, BTC).isolated_wallet == 0


# ------------------------------------------------------------------------------------------ prices


def test_working_type_picks_mark_or_last() -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", "0.020")
    venue.place_algo_order(
        account,
        AlgoRequest(
            symbol=BTC, side="SELL", order_type="STOP_MARKET", quantity=D("0.010"), trigger_price=D("64000"),
            reduce_only=True, working_type="MARK_PRICE", client_algo_id="on-mark",
        ),
    )  # fmt: skip
    stop(venue, account, "on-last", "64000")  # CONTRACT_PRICE by default
    venue.set_prices(BTC, last=D("63900"))
    statuses = {a.client_algo_id: a.algo_status for a in account.algo_orders.values()}
    assert statuses == {"on-mark": "NEW", "on-last": "FINISHED"}
    assert account.trades[-1].price == D("63900")  # market fills happen at the last price
    venue.set_prices(BTC, mark=D("63950"))
    assert account.algo_orders[account.client_algo_ids["on-mark"]].algo_status == "FINISHED"


def test_price_protect_holds_a_stop_while_mark_and_last_diverge() -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", "0.010")
    algo = venue.place_algo_order(
        account,
        AlgoRequest(
            symbol=BTC, side="SELL", order_type="STOP_MARKET", quantity=D("0.010"), trigger_price=D("64000"),
            reduce_only=True, working_type="MARK_PRICE", price_protect=True,
        ),
    )  # fmt: skip
    venue.set_prices(BTC, mark=D("63000"), last=D("59000"))  # 4000 > 5 % of 63000
    assert algo.algo_status == "NEW"
    venue.set_prices(BTC, last=D("62000"))
    assert algo.algo_status == "FINISHED"


def test_market_order_outside_the_percent_price_band() -> None:
    venue, account = make_venue()
    venue.set_prices(BTC, last=D("68300"))  # above 65000 * 1.05
    refused(-4131, market, venue, account, "BUY", "0.010")
    market(venue, account, "SELL", "0.010")


def test_klines_aggregate_the_price_path_and_the_volume() -> None:
    now = [NOW - NOW % 300_000]  # on a five-minute boundary
    venue = Venue(clock=lambda: now[0])
    account, _ = venue.create_account("k", "s", D("10000"))
    for offset, price in [(1_000, "65100"), (20_000, "64900"), (70_000, "65300"), (250_000, "65200")]:
        now[0] = venue.start_time + offset
        venue.set_mark_price(BTC, D(price))
    market(venue, account, "BUY", "0.010")
    now[0] = venue.start_time + 400_000
    minutes = venue.klines(BTC, "1m")
    assert [(c.open, c.high, c.low, c.close) for c, _ in minutes] == [
        (D("65000"), D("65100"), D("64900"), D("64900")),
        (D("65300"), D("65300"), D("65300"), D("65300")),
        (D("65300"), D("65300"), D("65300"), D("65300")),  # a quiet minute repeats the close
        (D("65300"), D("65300"), D("65300"), D("65300")),
        (D("65200"), D("65200"), D("65200"), D("65200")),
        (D("65200"), D("65200"), D("65200"), D("65200")),
        (D("65200"), D("65200"), D("65200"), D("65200")),
    ]
    assert minutes[4][0].volume == D("0.010") and minutes[4][0].taker_buy_volume == D("0.010")
    first, second = venue.klines(BTC, "5m")
    assert (first[0].open, first[0].high, first[0].low, first[0].close) == (
        D("65000"),
        D("65300"),
        D("64900"),
        D("65200"),
    )
    assert first[1] == venue.start_time + 299_999 and first[0].count == 1
    assert second[0].open_time == venue.start_time + 300_000
    assert len(venue.klines(BTC, "1m", limit=2)) == 2
    assert venue.klines(BTC, "1m", start_time=venue.start_time + 60_000, limit=1)[0][0].open == D("65300")
    refused(-1120, venue.klines, BTC, "7m")


# ------------------------------------------------------------------------------------------ orders and depth


def test_resting_limit_fills_partially_within_the_book_depth() -> None:
    venue, account = make_venue()  # BTCUSDT bookDepth is 0.100 per update
    resting = order(venue, account, side="BUY", quantity="0.250", price="64000")
    venue.set_mark_price(BTC, D("64500"))
    assert resting.executed_qty == 0
    venue.set_mark_price(BTC, D("63990"))
    assert (resting.status, resting.executed_qty) == ("PARTIALLY_FILLED", D("0.100"))
    venue.set_mark_price(BTC, D("64000"))
    assert (resting.status, resting.executed_qty) == ("PARTIALLY_FILLED", D("0.200"))
    venue.cancel_order(account, BTC, resting.order_id, None)
    assert (resting.status, resting.executed_qty) == ("CANCELED", D("0.200"))
    assert all(t.maker and t.price == D("64000") for t in account.trades)


def test_book_depth_is_shared_in_price_time_priority() -> None:
    venue, first = make_venue()
    second, _ = venue.create_account("k2", "s2", D("10000"))
    early = order(venue, first, side="BUY", quantity="0.080", price="64000")
    better = order(venue, second, side="BUY", quantity="0.050", price="64100")
    late = order(venue, second, side="BUY", quantity="0.080", price="64000")
    venue.set_mark_price(BTC, D("63900"))
    assert [o.executed_qty for o in (better, early, late)] == [D("0.050"), D("0.050"), D("0")]
    venue.set_mark_price(BTC, D("63800"))
    assert [o.status for o in (better, early, late)] == ["FILLED", "FILLED", "PARTIALLY_FILLED"]
    assert late.executed_qty == D("0.070")


def test_time_in_force_rules() -> None:
    venue, account = make_venue()
    refused(-5022, order, venue, account, side="BUY", quantity="0.010", price="65100", time_in_force="GTX")
    refused(-5021, order, venue, account, side="BUY", quantity="0.010", price="64000", time_in_force="FOK")
    ioc = order(venue, account, side="BUY", quantity="0.010", price="64000", time_in_force="IOC")
    assert (ioc.status, ioc.executed_qty) == ("EXPIRED", 0)
    taken = order(venue, account, side="BUY", quantity="0.010", price="65100", time_in_force="FOK")
    assert (taken.status, taken.avg_price) == ("FILLED", D("65000"))  # marketable: takes at the last price
    maker = order(venue, account, side="SELL", quantity="0.010", price="65100", time_in_force="GTX")
    assert maker.status == "NEW"


def test_resting_reduce_only_limit_expires_when_the_position_is_gone() -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", "0.010")
    take_profit = order(venue, account, side="SELL", quantity="0.010", price="66000", reduce_only=True)
    market(venue, account, "SELL", "0.010", reduce_only=True)
    venue.set_mark_price(BTC, D("66100"))
    assert (take_profit.status, take_profit.executed_qty) == ("EXPIRED", 0)
    assert venue.position(account, BTC).amount == 0


def test_quantity_filters_and_max_stop_orders() -> None:
    venue, account = make_venue()
    refused(-1013, market, venue, account, "BUY", "121")  # MARKET_LOT_SIZE maxQty 120
    market(venue, account, "BUY", "0.010")
    venue.max_open_algo_orders = 2
    stop(venue, account, "s1", "60000")
    stop(venue, account, "s2", "60000")
    refused(-4045, stop, venue, account, "s3", "60000")
    refused(-4116, stop, venue, account, "s1", "61000")
    refused(-2013, venue.find_algo, account, BTC, None, "nope")
    refused(-2011, venue.cancel_algo, account, BTC, None, "nope")


def test_stop_limit_rests_after_triggering_then_fills() -> None:
    venue, account = make_venue()
    market(venue, account, "BUY", "0.010")
    algo = venue.place_algo_order(
        account,
        AlgoRequest(
            symbol=BTC, side="SELL", order_type="STOP", quantity=D("0.010"), trigger_price=D("64000"),
            price=D("64100"), reduce_only=True,
        ),
    )  # fmt: skip
    venue.set_mark_price(BTC, D("63000"))  # triggers; a sell limit at 64100 is not marketable at 63000
    child = account.orders[algo.actual_order_id or 0]
    assert (algo.algo_status, child.status, child.orig_type) == ("FINISHED", "NEW", "STOP")
    venue.set_mark_price(BTC, D("64200"))
    assert (child.status, child.avg_price) == ("FILLED", D("64100"))


def test_listeners_see_every_change_in_order() -> None:
    venue, account = make_venue()
    events: list[tuple[str, str]] = []

    def listen(api_key: str, kind: str, payload: Any) -> None:
        assert api_key == account.api_key
        if isinstance(payload, OrderUpdate):
            events.append((kind, f"{payload.execution}/{payload.order.status}"))
        elif kind == "algo":
            events.append((kind, payload.algo_status))
        else:
            events.append((kind, payload.reason))

    venue.subscribe(listen)
    market(venue, account, "BUY", "0.010")
    stop(venue, account, "sl", "64000")
    venue.set_mark_price(BTC, D("63000"))
    assert events == [
        ("order", "NEW/NEW"),
        ("order", "TRADE/FILLED"),
        ("account", "ORDER"),
        ("algo", "NEW"),
        ("algo", "TRIGGERED"),
        ("order", "NEW/NEW"),
        ("order", "TRADE/FILLED"),
        ("account", "ORDER"),
        ("algo", "FINISHED"),
    ]
