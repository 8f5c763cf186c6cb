"""The Bybit V5 adapter (controller/exchange/bybit.py) against the real ccxt ``bybit`` client, with the venue's
answers recorded (tests/unit/fixtures/bybit_v5_linear.json, shapes per shared/reference/bybit-v5-wire.md §7) and
the requests ccxt builds captured as they would leave. Behaviour that needs the venue itself (the trigger on the
mark, retention of ended orders) waits for the paper exchange's Bybit front."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt
import pytest

from controller.api.v1alpha1 import (
    MarginMode,
    OrderRecord,
    OrderState,
    Phase,
    PositionSpec,
    PositionStatus,
    Side,
    TimeInForce,
)
from controller.exchange import bybit
from controller.exchange.client import make_exchange
from controller.exchange.fills import FillOwner
from controller.exchange.port import PushedPosition
from controller.reconcile.model import (
    CancelOrder,
    ObservedOrder,
    OrderSide,
    PlaceLimitOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    Purpose,
    SetLeverage,
    SetMarginMode,
    SetPositionTrailing,
    Snapshot,
    client_order_id,
)
from controller.reconcile.venue import LookupRetention, Scope, TrailingSupport

F = json.loads((Path(__file__).parent / "fixtures" / "bybit_v5_linear.json").read_text())
BTC = "BTC/USDT:USDT"
UID = "6b1e1c55-0000-4000-8000-000000000001"
ENTRY, STOP = client_order_id(UID, Purpose.ENTRY), client_order_id(UID, Purpose.STOP, 1)
Answer = Callable[[dict[str, str], dict[str, Any]], Any]


def listed(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"category": "linear", "list": list(rows), "nextPageCursor": ""}


def executions(*rows: dict[str, Any]) -> Answer:
    """The execution list: the rows within the asked window (the last 7 days without one, here all of them)."""

    def answer(query: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
        start, end = int(query.get("startTime", 0)), int(query.get("endTime", 2**62))
        return listed(*(r for r in rows if start <= int(r["execTime"]) <= end))

    return answer


def failure(code: int, message: str) -> dict[str, Any]:
    return {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": 1733700000000}


@dataclass
class RecordedVenue:
    """Bybit as ccxt's transport sees it: each path answers with a recorded result (or a retCode failure, which
    ccxt turns into its exception exactly as for a real answer); every request is kept."""

    client: Any
    answers: dict[str, Answer] = field(default_factory=dict)
    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parts = urlsplit(url)
        params: dict[str, Any] = json.loads(body) if body else dict(parse_qsl(parts.query))
        self.sent.append((method, parts.path, params))
        query = dict(parse_qsl(parts.query))
        if parts.path == "/v5/market/instruments-info":
            result: Any = listed() if query.get("status") == "PreLaunch" else listed(F["instrument"])
        else:
            result = self.answers[parts.path](query, params)
        envelope = result if "retCode" in result else {"retCode": 0, "retMsg": "OK", "result": result, "time": 1}
        text = json.dumps(envelope)
        self.client.handle_errors(200, "OK", url, method, {}, text, envelope, headers, body)
        return envelope

    def requests(self, path: str) -> list[dict[str, Any]]:
        return [params for _, p, params in self.sent if p == path]


@pytest.fixture
async def venue() -> AsyncIterator[RecordedVenue]:
    client = make_exchange("bybit", "key", "secret", base_url="http://bybit.test")
    recorded = RecordedVenue(client, {"/v5/order/realtime": lambda q, b: listed()})
    client.fetch = recorded.fetch
    yield recorded
    await client.close()


def gateway(venue: RecordedVenue, *, hedged: bool = False) -> bybit.Bybit:
    return bybit.Bybit(venue.client, hedged=hedged)


def acknowledge(query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    return {"orderId": "b7d1c2e0-0000-4000-8000-00000000000a", "orderLinkId": body.get("orderLinkId", "")}


# --- requests: what each action sends ---------------------------------------------------------------------------


async def test_a_stop_loss_triggers_on_the_mark_only_reduces_and_may_close_on_trigger(venue: RecordedVenue) -> None:
    venue.answers["/v5/order/create"] = acknowledge
    stop = PlaceStopOrder(STOP, OrderSide.SELL, Decimal("0.010"), Decimal("62000.0"))
    assert await gateway(venue).execute(BTC, stop) == "b7d1c2e0-0000-4000-8000-00000000000a"
    (sent,) = venue.requests("/v5/order/create")
    assert sent == {
        "symbol": "BTCUSDT",
        "side": "Sell",
        "orderType": "Market",
        "orderLinkId": STOP,
        "category": "linear",
        "qty": "0.01",
        "triggerDirection": 2,  # a long's stop: when the price falls to it
        "triggerPrice": "62000",
        "reduceOnly": True,
        "positionIdx": 0,
        "triggerBy": "MarkPrice",  # Bybit's default is the last price
        "closeOnTrigger": True,
    }


async def test_a_take_profit_triggers_the_other_way(venue: RecordedVenue) -> None:
    venue.answers["/v5/order/create"] = acknowledge
    target = PlaceStopOrder(
        client_order_id(UID, Purpose.TAKE_PROFIT, 1),
        OrderSide.BUY,
        Decimal("0.01"),
        Decimal("60000"),
        Purpose.TAKE_PROFIT,
    )
    await gateway(venue).execute(BTC, target)
    (sent,) = venue.requests("/v5/order/create")
    assert (sent["side"], sent["triggerDirection"], sent["triggerBy"], sent["reduceOnly"]) == (
        "Buy",
        2,
        "MarkPrice",
        True,
    )


@pytest.mark.parametrize(
    ("action", "index"),
    [
        (PlaceMarketOrder(Purpose.ENTRY, ENTRY, OrderSide.BUY, Decimal("0.01"), reduce_only=False), 1),
        (PlaceMarketOrder(Purpose.ENTRY, ENTRY, OrderSide.SELL, Decimal("0.01"), reduce_only=False), 2),
        (PlaceStopOrder(STOP, OrderSide.SELL, Decimal("0.01"), Decimal("62000")), 1),  # closes the long
        (PlaceStopOrder(STOP, OrderSide.BUY, Decimal("0.01"), Decimal("68000")), 2),  # closes the short
        (PlaceMarketOrder(Purpose.CLOSE, ENTRY[:-2] + "cl", OrderSide.BUY, Decimal("0.01"), reduce_only=True), 2),
    ],
)
async def test_in_hedge_mode_every_order_names_the_position_it_acts_on(
    venue: RecordedVenue, action: PlaceMarketOrder | PlaceStopOrder, index: int
) -> None:
    venue.answers["/v5/order/create"] = acknowledge
    await gateway(venue, hedged=True).execute(BTC, action)
    (sent,) = venue.requests("/v5/order/create")
    closing = isinstance(action, PlaceStopOrder) or action.reduce_only
    assert sent["positionIdx"] == index
    assert sent.get("reduceOnly", False) is closing  # kept in hedge mode too (ccxt's `hedged` would drop it)


async def test_post_only_is_sent_as_post_only_not_as_a_gtx_ccxt_would_drop(venue: RecordedVenue) -> None:
    venue.answers["/v5/order/create"] = acknowledge
    for tif in (TimeInForce.GTX, TimeInForce.GTC):
        action = PlaceLimitOrder(ENTRY, OrderSide.BUY, Decimal("0.01"), Decimal("60000.1"), tif)
        await gateway(venue).execute(BTC, action)
    post_only, gtc = venue.requests("/v5/order/create")
    assert (post_only["timeInForce"], post_only["price"], post_only["orderType"]) == ("PostOnly", "60000.1", "Limit")
    assert gtc["timeInForce"] == "GTC"


async def test_a_cancel_names_the_client_id_as_order_link_id_and_a_gone_order_is_success(venue: RecordedVenue) -> None:
    venue.answers["/v5/order/cancel"] = lambda q, b: failure(110001, "order not exists or too late to cancel")
    assert await gateway(venue).execute(BTC, CancelOrder(STOP, Purpose.STOP)) is None
    assert venue.requests("/v5/order/cancel") == [{"symbol": "BTCUSDT", "orderLinkId": STOP, "category": "linear"}]


@pytest.mark.parametrize(
    ("action", "path", "code"),
    [
        (SetLeverage(10), "/v5/position/set-leverage", 110043),  # ccxt: BadRequest
        (SetMarginMode(MarginMode.ISOLATED), "/v5/account/set-margin-mode", 110026),  # MarginModeAlreadySet
    ],
)
async def test_a_setting_already_so_is_success_and_another_refusal_is_not(
    venue: RecordedVenue, action: SetLeverage | SetMarginMode, path: str, code: int
) -> None:
    venue.answers[path] = lambda q, b: failure(code, "not modified")
    assert await gateway(venue).execute(BTC, action) is None
    venue.answers[path] = lambda q, b: failure(10001, "params error")
    with pytest.raises(ccxt.BadRequest):
        await gateway(venue).execute(BTC, action)


async def test_the_margin_mode_is_set_for_the_whole_account(venue: RecordedVenue) -> None:
    venue.answers["/v5/account/set-margin-mode"] = lambda q, b: {"reasons": []}
    await gateway(venue).execute(BTC, SetMarginMode(MarginMode.CROSS))
    assert venue.requests("/v5/account/set-margin-mode") == [{"setMarginMode": "REGULAR_MARGIN"}]  # no symbol
    assert bybit.CAPABILITIES.margin_mode_scope is Scope.ACCOUNT


# --- errors -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (110072, "Unknown"),  # duplicate orderLinkId: it was sent already; look it up (ccxt says InvalidOrder)
        (10006, "Retry"),  # too many visits (per-UID limit)
        (10002, "Retry"),  # timestamp outside the window
        (10016, "Unknown"),  # server error: the order may or may not exist
        (10003, "Account"),  # bad key
        (10005, "Account"),  # permission denied
        (110007, "Rejected"),  # insufficient balance
        (110017, "Rejected"),  # reduce-only would be zero
        (110092, "Rejected"),  # trigger already crossed
        (110009, "Rejected"),  # too many conditional orders
        (10001, "Rejected"),  # parameter error (e.g. positionIdx against the position mode)
    ],
)
async def test_errors_are_classified_by_what_they_mean_for_the_order(
    venue: RecordedVenue, code: int, outcome: str
) -> None:
    venue.answers["/v5/order/create"] = lambda q, b: failure(code, "refused")
    entry = PlaceMarketOrder(Purpose.ENTRY, ENTRY, OrderSide.BUY, Decimal("0.01"), reduce_only=False)
    with pytest.raises(ccxt.BaseError) as raised:
        await gateway(venue).execute(BTC, entry)
    assert gateway(venue).classify(raised.value) == outcome


# --- reads ------------------------------------------------------------------------------------------------------


async def test_market_rules_come_from_the_instrument_strings_with_the_market_order_maximum(
    venue: RecordedVenue,
) -> None:
    rules = await gateway(venue).rules(BTC)
    assert (
        rules.amount_step,
        rules.min_amount,
        rules.min_notional,
        rules.price_tick,
        rules.max_amount,
        rules.quote,
    ) == (
        Decimal("0.001"),
        Decimal("0.001"),
        Decimal("5"),
        Decimal("0.10"),
        Decimal("119.000"),  # maxMktOrderQty, not maxOrderQty (1190): ccxt does not map it
        "USDT",
    )


async def test_a_snapshot_reads_positions_marks_and_both_kinds_of_open_orders_as_decimals(venue: RecordedVenue) -> None:
    venue.answers["/v5/position/list"] = lambda q, b: listed(F["position_long"], F["position_flat"])
    venue.answers["/v5/market/tickers"] = lambda q, b: listed(F["ticker"])
    venue.answers["/v5/order/realtime"] = lambda q, b: listed(
        F["order_open_limit"], F["order_untriggered_stop"], F["order_attached_stop"]
    )
    snapshot = await gateway(venue).snapshot(frozenset({BTC}))
    assert snapshot.sizes == {(BTC, Side.LONG): Decimal("0.010")}
    assert snapshot.entry_prices == {(BTC, Side.LONG): Decimal("64000.4")}
    assert snapshot.marks == {BTC: Decimal("65000.50")}  # from the ticker: fetch_mark_price is not supported
    limit, stop = snapshot.open_orders["test-000005"], snapshot.open_orders["STOP_LINK_ID"]
    assert (limit.conditional, limit.order.state, limit.order.filled, limit.order.average_price) == (
        False,
        OrderState.OPEN,
        Decimal("0.004"),
        Decimal("60000.0"),
    )
    assert (stop.conditional, stop.side, stop.order.trigger_price) == (True, "sell", Decimal("62000.0"))
    # The stop Bybit attached to an entry has no client id: it is named by its order id, which no Warden id
    # resembles, so the orphan sweep leaves it alone.
    child = snapshot.open_orders["5c0a8d9e-1b5e-4c1d-a1b0-31f2c9a0b0aa"]
    assert child.conditional
    assert venue.requests("/v5/position/list") == [{"category": "linear", "settleCoin": "USDT", "limit": "200"}]
    assert venue.requests("/v5/market/tickers") == [{"category": "linear", "symbol": "BTCUSDT"}]


async def test_a_hedge_mode_position_row_is_read_by_its_position_index(venue: RecordedVenue) -> None:
    short = {**F["position_long"], "positionIdx": 2, "side": "Sell", "size": "0.030"}
    venue.answers["/v5/position/list"] = lambda q, b: listed(F["position_long"] | {"positionIdx": 1}, short)
    venue.answers["/v5/market/tickers"] = lambda q, b: listed(F["ticker"])
    snapshot = await gateway(venue, hedged=True).snapshot(frozenset({BTC}), orders=False)
    assert snapshot.sizes == {(BTC, Side.LONG): Decimal("0.010"), (BTC, Side.SHORT): Decimal("0.030")}


def test_a_conditional_order_keeps_its_ids_through_the_trigger() -> None:
    assert bybit.parse_order(F["order_untriggered_stop"]).state is OrderState.OPEN
    triggered = bybit.parse_order(F["order_filled_stop"])
    assert (triggered.state, triggered.triggered_order_id, triggered.client_order_id) == (
        OrderState.TRIGGERED,
        F["order_filled_stop"]["orderId"],  # the order it became is itself
        "STOP_LINK_ID",
    )
    deactivated = bybit.parse_order({**F["order_untriggered_stop"], "orderStatus": "Deactivated"})
    assert deactivated.state is OrderState.CANCELED


async def test_lookup_by_client_id_asks_realtime_then_history_by_order_link_id(venue: RecordedVenue) -> None:
    venue.answers["/v5/order/realtime"] = lambda q, b: listed()
    venue.answers["/v5/order/history"] = lambda q, b: listed(F["order_filled_stop"])
    found = await gateway(venue).find_order(BTC, "STOP_LINK_ID", conditional=True)
    assert found is not None and found.state is OrderState.TRIGGERED
    asked = {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "STOP_LINK_ID"}
    assert venue.requests("/v5/order/realtime") == venue.requests("/v5/order/history") == [asked]
    venue.answers["/v5/order/history"] = lambda q, b: listed()
    assert await gateway(venue).find_order(BTC, "STOP_LINK_ID", conditional=True) is None


async def test_not_found_is_weak_evidence_an_intent_is_unknown_and_an_acknowledged_order_has_ended(
    venue: RecordedVenue,
) -> None:
    """Bybit keeps the latest 500 ended orders in realtime and cancelled ones 24 h in history: an intent it has no
    record of may have been sent (unknown: left out of ``orders``, so the Position is not declared never-sent), while
    an order it acknowledged and no longer lists as open has ended (reported absent)."""
    venue.answers["/v5/order/realtime"] = lambda q, b: listed()
    venue.answers["/v5/order/history"] = lambda q, b: listed()
    venue.answers["/v5/execution/list"] = executions()
    spec = PositionSpec.model_validate(
        {"accountRef": {"name": "a"}, "symbol": BTC, "side": "long", "amount": "0.01", "stopLoss": {"price": "60000"}}
    )
    snapshot = Snapshot(0.0, {}, {}, {}, {BTC: Decimal("65000")})
    intended = OrderRecord(clientOrderId=ENTRY, state=OrderState.INTENDED, amount=Decimal("0.01"))
    seen = await gateway(venue).observe(spec, PositionStatus(entryOrder=intended), snapshot)
    assert ENTRY not in seen.orders and seen.venue.lookup is LookupRetention.BOUNDED
    sent = intended.model_copy(update={"state": OrderState.OPEN, "exchangeOrderId": "b7d1"})
    seen = await gateway(venue).observe(spec, PositionStatus(entryOrder=sent), snapshot)
    assert seen.orders == {ENTRY: None}
    # What this process knows it has not sent is absent without a doubt.
    seen = await gateway(venue).observe(spec, PositionStatus(entryOrder=intended), snapshot, frozenset({ENTRY}))
    assert seen.orders == {ENTRY: None}


async def test_liquidations_are_found_in_executions_read_without_cctxs_trade_filter(venue: RecordedVenue) -> None:
    venue.answers["/v5/execution/list"] = executions(F["execution_trade"], F["execution_funding"], F["execution_bust"])
    since = datetime.fromtimestamp(1733700000, UTC)
    trades = await gateway(venue).trades(BTC, since)
    assert [(t.trade_id, t.amount, t.price, t.liquidation) for t in trades] == [
        ("7e2ae69c-4edf-5800-a352-893d52b446aa", Decimal("0.004"), Decimal("60000.0"), False),
        ("c1d2e3f4-0000-4000-8000-000000000001", Decimal("0.004"), Decimal("54200.0"), True),
    ]  # the funding execution is not a trade
    # Executions carry no PnL: derived from the fills (bought 0.004 at 60000, liquidated at 54200).
    assert [t.realized_pnl for t in trades] == [Decimal(0), Decimal("-23.2000")]
    windows = venue.requests("/v5/execution/list")
    assert "execType" not in windows[0] and windows[0]["startTime"] == "1733700000000"
    # At most 7 days a request: a long-open Position's history is read in consecutive windows.
    assert int(windows[1]["startTime"]) == int(windows[0]["endTime"]) + 1 == 1733700000000 + 7 * 86_400_000


async def test_an_order_the_venue_made_to_liquidate_or_take_over_is_a_liquidation(venue: RecordedVenue) -> None:
    taken_over = {**F["execution_bust"], "execType": "Trade", "createType": "CreateByTakeOver_PassThrough"}
    ours = {**F["execution_bust"], "execType": "Trade", "createType": "CreateByUser", "execId": "ours"}
    venue.answers["/v5/execution/list"] = executions(F["execution_trade"], taken_over, ours)
    trades = await gateway(venue).trades(BTC, None)
    assert [t.liquidation for t in trades] == [False, True, False]


def test_realized_pnl_follows_the_signed_position_through_partial_closes_and_a_flip() -> None:
    def fill(n: int, side: str, qty: str, price: str) -> dict[str, Any]:
        return {"execId": str(n), "execTime": str(n), "side": side, "execQty": qty, "execPrice": price}

    pnl = bybit.realized(
        [
            fill(1, "Buy", "2", "100"),
            fill(2, "Buy", "2", "110"),
            fill(3, "Sell", "1", "120"),
            fill(4, "Sell", "5", "90"),
        ]
    )
    # Average 105; 1 closed at 120 (+15); 3 closed at 90 (-45), then 2 short opened at 90.
    assert pnl == {"1": 0, "2": 0, "3": Decimal(15), "4": Decimal(-45)}


def test_realized_pnl_of_an_average_entry_is_money_to_8_decimals() -> None:
    """Three entries average to a repeating decimal; the status's pattern refuses more than 18 decimals."""

    def fill(n: int, side: str, qty: str, price: str) -> dict[str, Any]:
        return {"execId": str(n), "execTime": str(n), "side": side, "execQty": qty, "execPrice": price}

    pnl = bybit.realized(
        [
            fill(1, "Buy", "1", "100"),
            fill(2, "Buy", "1", "100"),
            fill(3, "Buy", "1", "101"),
            fill(4, "Sell", "3", "101"),
        ]
    )
    assert pnl["4"] == Decimal("2.00000000")  # (101 - 100.333…) x 3
    one = bybit.realized([fill(1, "Buy", "3", "100"), fill(2, "Buy", "3", "101"), fill(3, "Sell", "1", "101")])
    assert one["3"] == Decimal("0.50000000")
    odd = bybit.realized([fill(1, "Buy", "1", "100"), fill(2, "Buy", "2", "101"), fill(3, "Sell", "1", "102")])
    assert odd["3"] == Decimal("1.33333333") and odd["3"].as_tuple().exponent == -8


def test_realized_pnl_in_hedge_mode_keeps_the_long_and_the_short_apart() -> None:
    def fill(n: int, side: str, qty: str, price: str, closed: str) -> dict[str, Any]:
        return {
            "execId": str(n),
            "execTime": str(n),
            "side": side,
            "execQty": qty,
            "execPrice": price,
            "closedSize": closed,
        }

    fills = [
        fill(1, "Buy", "1", "100", "0"),  # opens the long
        fill(2, "Sell", "1", "100", "0"),  # opens the short
        fill(3, "Sell", "1", "110", "1"),  # closes the long: +10
        fill(4, "Buy", "1", "110", "1"),  # closes the short: -10
    ]
    assert bybit.realized(fills, hedged=True) == {"1": 0, "2": 0, "3": Decimal(10), "4": Decimal(-10)}
    assert bybit.realized(fills) == {"1": 0, "2": 0, "3": 0, "4": 0}  # one-way reading: each fill nets the last


def test_pushes_are_read_from_bybits_own_fields() -> None:
    gw = bybit.Bybit(None)
    pushed = gw.pushed_order({"info": {**F["order_open_limit"], "orderLinkId": ENTRY}})
    assert (pushed.client_id, pushed.open, pushed.filled) == (ENTRY, True, Decimal("0.004"))
    assert not gw.pushed_order({"info": F["order_filled_stop"]}).open


def test_a_push_of_a_cancel_with_nothing_filled_is_told_from_a_trigger_and_a_fill() -> None:
    gw = bybit.Bybit(None)
    stop = {**F["order_untriggered_stop"], "orderLinkId": STOP}
    assert gw.pushed_cancel({"info": {**stop, "orderStatus": "Deactivated"}})
    assert gw.ended(STOP) is not None  # kept like an answer: the next observation has it with no read
    limit = {**F["order_open_limit"], "orderLinkId": ENTRY}
    assert gw.pushed_cancel({"info": {**limit, "orderStatus": "Cancelled", "cumExecQty": "0"}})
    assert not gw.pushed_cancel({"info": {**limit, "orderStatus": "Cancelled", "cumExecQty": "0.004"}})
    assert not gw.pushed_cancel({"info": F["order_filled_stop"]})
    assert not gw.pushed_cancel({"info": stop})  # still resting


def test_an_outside_close_is_told_by_the_execution_topics_pushes() -> None:
    """Bybit's order push carries no trade: its ``execution`` topic's rows are kept as the trades a read would give,
    and tell a position pushed flat that another's order closed it after the entry's own (no read first)."""
    gw = bybit.Bybit(None)  # a read would fail: there is no client
    entered = PositionStatus(
        phase=Phase.PROTECTED,
        entryOrder=OrderRecord(clientOrderId=ENTRY, exchangeOrderId="en-1", state=OrderState.FILLED, amount="0.010"),
    )
    entry = {**F["execution_trade"], "orderId": "en-1", "orderLinkId": ENTRY, "execId": "e1", "execTime": "1000"}
    outside = {**F["execution_trade"], "orderId": "web-1", "orderLinkId": "", "execId": "e2", "execTime": "2000"}
    funding = {**outside, "execType": "Funding", "execId": "e3", "execTime": "3000"}
    gw.pushed_trades([{"symbol": BTC, "info": entry}])
    assert gw.pushed_exit(BTC, entered) is None
    gw.pushed_trades([{"symbol": BTC, "info": outside}, {"symbol": BTC, "info": funding}])
    trades = gw.pushed_exit(BTC, entered)
    assert trades is not None and [t.trade_id for t in trades] == ["e1", "e2"]  # a funding row is no trade
    liquidated = {**F["execution_bust"], "orderId": "liq-1", "execId": "e4", "execTime": "4000"}
    gw.pushed_trades([{"symbol": BTC, "info": liquidated}])
    trades = gw.pushed_exit(BTC, entered)
    assert trades is not None and trades[-1].liquidation
    gw.stream_gap()
    assert gw.pushed_exit(BTC, entered) is None


# --- capabilities -------------------------------------------------------------------------------------------------


def test_the_capabilities_say_what_bybit_does_and_warden_ids_fit_its_alphabet() -> None:
    caps = bybit.CAPABILITIES
    assert caps.trailing is TrailingSupport.POSITION  # trading-stop trailingStop: no client id
    assert caps.attached_stop
    assert caps.conditional_cap is not None and (caps.conditional_cap.limit, caps.conditional_cap.scope) == (
        10,
        Scope.SYMBOL,
    )
    assert all(caps.fits_client_id(client_order_id(UID, p, 9_999_999_999)) for p in Purpose)
    assert not caps.fits_client_id("a.b") and not caps.fits_client_id("x" * 37)


def test_a_demo_host_has_its_websocket_on_the_stream_host() -> None:
    client = make_exchange("bybit", "key", "secret", base_url="https://api-demo.bybit.com", pro=True)
    assert client.urls["api"]["private"] == "https://api-demo.bybit.com"
    assert client.urls["api"]["ws"]["private"]["contract"] == "wss://stream-demo.bybit.com/v5/private"


async def test_an_acknowledgement_is_remembered_as_open(venue: RecordedVenue) -> None:
    gw = gateway(venue)
    gw.keep_answer(5.0, ObservedOrder(ENTRY, "b7d1", OrderState.OPEN, Decimal("0.01"), Decimal(0)))
    assert gw.answer(ENTRY, 4.0) is not None and gw.ended(ENTRY) is None


# --- the stop attached to the entry ----------------------------------------------------------------------------------


async def test_an_entry_carries_its_stop_as_a_partial_stop_loss_on_the_mark(venue: RecordedVenue) -> None:
    venue.answers["/v5/order/create"] = acknowledge
    entry = PlaceMarketOrder(Purpose.ENTRY, ENTRY, OrderSide.BUY, Decimal("0.01"), False, Decimal("60000"))
    await gateway(venue).execute(BTC, entry)
    (sent,) = venue.requests("/v5/order/create")
    attached = {k: sent[k] for k in ("stopLoss", "slTriggerBy", "tpslMode", "slOrderType")}
    assert attached == {"stopLoss": "60000", "slTriggerBy": "MarkPrice", "tpslMode": "Partial", "slOrderType": "Market"}
    assert "reduceOnly" not in sent and "triggerPrice" not in sent  # the entry itself is a plain order


async def test_once_wardens_own_stop_rests_the_attached_stop_of_its_entry_is_cancelled(venue: RecordedVenue) -> None:
    venue.answers["/v5/order/create"] = acknowledge
    venue.answers["/v5/order/cancel"] = lambda q, b: {"orderId": b["orderId"], "orderLinkId": ""}
    child = {**F["order_attached_stop"], "parentOrderLinkId": ENTRY}
    someone_elses = {**F["order_attached_stop"], "orderId": "other", "parentOrderLinkId": "w" + "0" * 22 + "-en"}
    ours = {**F["order_untriggered_stop"], "orderLinkId": STOP, "parentOrderLinkId": ""}
    venue.answers["/v5/order/realtime"] = lambda q, b: listed(child, someone_elses, ours)
    await gateway(venue).execute(BTC, PlaceStopOrder(STOP, OrderSide.SELL, Decimal("0.01"), Decimal("60000")))
    assert venue.requests("/v5/order/cancel") == [
        {"symbol": "BTCUSDT", "orderId": F["order_attached_stop"]["orderId"], "category": "linear"}
    ]
    # A take profit leaves it: only Warden's stop (or its close) takes over the protection.
    target = PlaceStopOrder(
        client_order_id(UID, Purpose.TAKE_PROFIT, 1),
        OrderSide.SELL,
        Decimal("0.01"),
        Decimal("70000"),
        Purpose.TAKE_PROFIT,
    )
    await gateway(venue).execute(BTC, target)
    assert len(venue.requests("/v5/order/cancel")) == 1


async def test_a_failed_retirement_does_not_turn_a_placed_stop_into_a_failure(venue: RecordedVenue) -> None:
    venue.answers["/v5/order/create"] = acknowledge
    venue.answers["/v5/order/realtime"] = lambda q, b: failure(10016, "server error")
    placed = await gateway(venue).execute(BTC, PlaceStopOrder(STOP, OrderSide.SELL, Decimal("0.01"), Decimal("60000")))
    assert placed == "b7d1c2e0-0000-4000-8000-00000000000a"


async def test_fills_of_the_positions_orders_become_audit_rows(venue: RecordedVenue) -> None:
    venue.answers["/v5/execution/list"] = executions(F["execution_trade"], F["execution_bust"])
    owner = FillOwner("acct", UID, "ns", "pos", {F["execution_trade"]["orderId"]: ENTRY})
    (fill,) = await gateway(venue).fills(BTC, {F["execution_trade"]["orderId"]}, owner, None)
    assert (fill.client_order_id, fill.side, fill.amount, fill.price, fill.fee, fill.fee_asset, fill.maker) == (
        ENTRY,
        "buy",
        Decimal("0.004"),
        Decimal("60000.0"),
        Decimal("0.132"),
        "USDT",
        True,
    )
    assert fill.traded_at == datetime.fromtimestamp(1733700100, UTC)


@pytest.mark.parametrize(
    ("path", "row", "missing"),
    [
        ("/v5/position/list", {k: v for k, v in F["position_long"].items() if k != "size"}, "size"),
        ("/v5/market/tickers", {**F["ticker"], "markPrice": ""}, "markPrice"),
        ("/v5/order/realtime", {k: v for k, v in F["order_open_limit"].items() if k != "cumExecQty"}, "cumExecQty"),
    ],
)
async def test_an_answer_without_a_field_warden_needs_is_malformed_not_zero(
    venue: RecordedVenue, path: str, row: dict[str, Any], missing: str
) -> None:
    answers = {
        "/v5/position/list": listed(F["position_long"]),
        "/v5/market/tickers": listed(F["ticker"]),
        "/v5/order/realtime": listed(),
        path: listed(row),
    }
    for route, answer in answers.items():
        venue.answers[route] = lambda q, b, answer=answer: answer
    with pytest.raises(ccxt.BadResponse, match="malformed"):
        await gateway(venue).snapshot(frozenset({BTC}))


def test_a_position_push_is_read_by_its_position_index_or_side() -> None:
    gw = bybit.Bybit(None)
    hedged_short = {"symbol": BTC, "info": {**F["position_long"], "positionIdx": 2, "side": "Sell", "size": "0.030"}}
    flat = {"symbol": "ETH/USDT:USDT", "info": F["position_flat"]}
    assert gw.pushed_position(hedged_short) == PushedPosition(BTC, Side.SHORT, Decimal("0.030"))
    assert gw.pushed_position(flat) == PushedPosition("ETH/USDT:USDT", None, Decimal(0))


# --- the position-level trailing stop ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hedged", "side", "index"), [(False, Side.LONG, 0), (True, Side.LONG, 1), (True, Side.SHORT, 2)]
)
async def test_a_position_trailing_stop_is_a_full_trading_stop_on_the_sides_position_and_zero_clears_it(
    venue: RecordedVenue, hedged: bool, side: Side, index: int
) -> None:
    venue.answers["/v5/position/trading-stop"] = lambda q, b: {}
    trading = gateway(venue, hedged=hedged)
    assert await trading.execute(BTC, SetPositionTrailing(side, Decimal("650.0"), Decimal("66000.0"))) is None
    await trading.execute(BTC, SetPositionTrailing(side, Decimal(0)))
    assert venue.requests("/v5/position/trading-stop") == [
        {
            "category": "linear",
            "symbol": "BTCUSDT",
            "tpslMode": "Full",
            "positionIdx": index,
            "trailingStop": "650.0",
            "activePrice": "66000.0",
        },
        {"category": "linear", "symbol": "BTCUSDT", "tpslMode": "Full", "positionIdx": index, "trailingStop": "0"},
    ]


async def test_a_trading_stop_already_so_is_success_and_another_refusal_is_not(venue: RecordedVenue) -> None:
    venue.answers["/v5/position/trading-stop"] = lambda q, b: failure(34040, "not modified")
    assert await gateway(venue).execute(BTC, SetPositionTrailing(Side.LONG, Decimal("650.0"))) is None
    venue.answers["/v5/position/trading-stop"] = lambda q, b: failure(10001, "params error")
    with pytest.raises(ccxt.BadRequest):
        await gateway(venue).execute(BTC, SetPositionTrailing(Side.LONG, Decimal("650.0")))


async def test_the_position_rows_trailing_stop_is_read_per_side_and_zero_is_none(venue: RecordedVenue) -> None:
    short = {**F["position_long"], "positionIdx": 2, "side": "Sell", "size": "0.030", "trailingStop": "650.0"}
    venue.answers["/v5/position/list"] = lambda q, b: listed(F["position_long"] | {"positionIdx": 1}, short)
    venue.answers["/v5/market/tickers"] = lambda q, b: listed(F["ticker"])
    snapshot = await gateway(venue, hedged=True).snapshot(frozenset({BTC}), orders=False)
    assert F["position_long"]["trailingStop"] in ("0", "0.0", "")
    assert snapshot.trailing == {(BTC, Side.SHORT): Decimal("650.0")}


async def test_a_trade_of_the_positions_trailing_stop_names_the_side_it_traded(venue: RecordedVenue) -> None:
    trailed = {**F["execution_bust"], "execType": "Trade", "createType": "CreateByTrailingStop", "side": "Sell"}
    venue.answers["/v5/execution/list"] = executions(F["execution_trade"], trailed)
    trades = await gateway(venue).trades(BTC, None)
    assert [(t.position_trailing, t.liquidation) for t in trades] == [(None, False), (OrderSide.SELL, False)]
