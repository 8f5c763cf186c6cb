"""Property tests of the venue: reduce-only never flips, money is exact, stops fire once, client ids are idempotent;
through either front (Binance USDⓈ-M, Bybit V5) over the one engine."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper.bybit.front import BybitFront, Protection
from paper.bybit.front import OrderRequest as BybitRequest
from paper.bybit.vocab import OrderType, Side, TimeInForce, TpslMode, TriggerBy, TriggerDirection
from paper.errors import VenueError
from paper.models import AlgoOrder, AlgoRequest, OrderRequest, OrderUpdate, StopRole, VenueName
from paper.venue import Venue
from tests.paper.test_venue import NOW

D = Decimal
BTC = "BTCUSDT"
MILLI = D("0.001")


@dataclass(frozen=True)
class Market:
    side: str
    qty: int  # in thousandths of a BTC
    reduce_only: bool


@dataclass(frozen=True)
class Limit:
    side: str
    qty: int
    price: int  # in units of 10 USDT
    reduce_only: bool


@dataclass(frozen=True)
class Stop:
    side: str
    qty: int
    trigger: int  # in units of 10 USDT
    take_profit: bool


@dataclass(frozen=True)
class Move:
    price: int  # in units of 10 USDT
    mark_only: bool


@dataclass(frozen=True)
class Protect:
    """Bybit only: the position's TP or SL (trading-stop, Full) at ``offset`` from the mark, or its trailing stop
    (``|offset|`` as the distance); in units of 10 USDT."""

    kind: str
    offset: int


@dataclass(frozen=True)
class Bracket:
    """Bybit only: a market entry with a stop loss attached, ``offset`` (units of 10 USDT) beyond the mark, placed by
    the venue as the entry fills: for the whole position (Full) or for the filled qty (Partial)."""

    side: str
    qty: int
    offset: int
    partial: bool


FRONTS = [VenueName.BINANCE_USDM, VenueName.BYBIT]


Operation = Market | Limit | Stop | Move | Protect | Bracket
sides = st.sampled_from(["BUY", "SELL"])
prices = st.integers(min_value=6000, max_value=7000)  # 60000 .. 70000 USDT
quantities = st.integers(min_value=1, max_value=150)
protections = st.builds(Protect, st.sampled_from(["tp", "sl", "trailing"]), st.integers(min_value=-100, max_value=100))
operations = st.lists(
    st.one_of(
        st.builds(Market, sides, quantities, st.booleans()),
        st.builds(Limit, sides, quantities, prices, st.booleans()),
        st.builds(Stop, sides, quantities, prices, st.booleans()),
        st.builds(Move, prices, st.booleans()),
        protections,
    ),
    min_size=1,
    max_size=25,
)


def make_venue(front: VenueName) -> tuple[Venue, Any]:
    venue = Venue(clock=lambda: NOW)
    venue.create_account("k", "s", D("10000"), front)
    return venue, venue.accounts["k"]


def _apply(venue: Venue, op: Operation, n: int) -> None:
    """Run one operation through the account's front; refusals are part of the venue's behaviour, not failures."""
    account = venue.accounts["k"]
    try:
        if isinstance(op, Move):
            price = D(op.price) * 10
            venue.set_prices(BTC, mark=price, last=None if op.mark_only else price)
        elif account.venue == VenueName.BYBIT:
            _apply_bybit(BybitFront(venue), op, n)
        elif isinstance(op, Stop):
            kind = "TAKE_PROFIT_MARKET" if op.take_profit else "STOP_MARKET"
            request = AlgoRequest(
                symbol=BTC, side=op.side, order_type=kind, quantity=op.qty * MILLI, trigger_price=D(op.trigger) * 10,
                reduce_only=True, working_type="MARK_PRICE", client_algo_id=f"s{n}",
            )  # fmt: skip
            venue.place_algo_order(account, request)
        elif isinstance(op, Limit):
            limit = OrderRequest(
                symbol=BTC, side=op.side, type="LIMIT", quantity=op.qty * MILLI, price=D(op.price) * 10,
                time_in_force="GTC", reduce_only=op.reduce_only, client_order_id=f"o{n}",
            )  # fmt: skip
            venue.place_order(account, limit)
        elif isinstance(op, Market):
            request_market = OrderRequest(
                symbol=BTC, side=op.side, type="MARKET", quantity=op.qty * MILLI, reduce_only=op.reduce_only,
                client_order_id=f"o{n}",
            )  # fmt: skip
            venue.place_order(account, request_market)
    except VenueError:
        pass


def _apply_bybit(front: BybitFront, op: Operation, n: int) -> None:
    account = front.venue.accounts["k"]
    if isinstance(op, Protect):
        level = Protection(price=front.venue.marks[BTC] + op.offset * 10, trigger_by=TriggerBy.MARK_PRICE)
        front.trading_stop(
            account, BTC, 0, TpslMode.FULL,
            level if op.kind == "tp" else None, level if op.kind == "sl" else None,
            D(abs(op.offset) * 10) if op.kind == "trailing" else None, None,
        )  # fmt: skip
        return
    side = Side.BUY if op.side == "BUY" else Side.SELL
    if isinstance(op, Bracket):
        below = -1 if side is Side.BUY else 1
        stop_loss = Protection(price=front.venue.marks[BTC] + below * op.offset * 10, trigger_by=TriggerBy.MARK_PRICE)
        request = BybitRequest(
            symbol=BTC, side=side, order_type=OrderType.MARKET, qty=op.qty * MILLI, link_id=f"b{n}",
            stop_loss=stop_loss, tpsl_mode=TpslMode.PARTIAL if op.partial else TpslMode.FULL,
        )  # fmt: skip
    elif isinstance(op, Stop):
        rising = op.take_profit == (side is Side.SELL)
        request = BybitRequest(
            symbol=BTC, side=side, order_type=OrderType.MARKET, qty=op.qty * MILLI, reduce_only=True, link_id=f"s{n}",
            trigger_price=D(op.trigger) * 10, trigger_by=TriggerBy.MARK_PRICE,
            trigger_direction=TriggerDirection.RISE if rising else TriggerDirection.FALL,
        )  # fmt: skip
    elif isinstance(op, Limit):
        request = BybitRequest(
            symbol=BTC, side=side, order_type=OrderType.LIMIT, qty=op.qty * MILLI, price=D(op.price) * 10,
            time_in_force=TimeInForce.GTC, reduce_only=op.reduce_only, link_id=f"o{n}",
        )  # fmt: skip
    else:
        assert isinstance(op, Market)
        request = BybitRequest(
            symbol=BTC, side=side, order_type=OrderType.MARKET, qty=op.qty * MILLI, reduce_only=op.reduce_only,
            link_id=f"o{n}",
        )  # fmt: skip
    front.place_order(account, request)


@pytest.mark.parametrize("front", FRONTS)
@settings(max_examples=150, deadline=None)
@given(ops=operations)
def test_reduce_only_never_flips_money_is_exact_and_stops_fire_once(front: VenueName, ops: list[Operation]) -> None:
    _check_the_invariants(front, ops)


protected = st.lists(
    st.one_of(
        protections,
        st.builds(Move, prices, st.booleans()),
        st.builds(Market, sides, quantities, st.booleans()),
        st.builds(Bracket, sides, quantities, st.integers(min_value=1, max_value=100), st.booleans()),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(entry=st.builds(Market, sides, st.integers(min_value=20, max_value=150), st.just(False)), ops=protected)
def test_the_same_holds_for_a_positions_own_stops(entry: Market, ops: list[Operation]) -> None:
    """Bybit, from an open position, so that its TP, SL and trailing stop (trading-stop) are placed and run."""
    _check_the_invariants(VenueName.BYBIT, [entry, *ops])


def _check_the_invariants(front: VenueName, ops: list[Operation]) -> None:
    venue, account = make_venue(front)
    start = account.wallet_balance
    flips: list[str] = []
    triggered: Counter[int] = Counter()

    def listen(api_key: str, kind: str, payload: Any) -> None:
        if isinstance(payload, OrderUpdate) and payload.trade is not None and payload.order.only_reduces:
            amount = venue.position(account, BTC).amount
            if (payload.order.side == "SELL" and amount < 0) or (payload.order.side == "BUY" and amount > 0):
                flips.append(payload.order.client_order_id)
        if isinstance(payload, AlgoOrder) and payload.algo_status == "TRIGGERED":
            triggered[payload.algo_id] += 1

    venue.subscribe(listen)
    for n, op in enumerate(ops):
        _apply(venue, op, n)
        realized = sum((t.realized_pnl for t in account.trades), D(0))
        fees = sum((t.commission for t in account.trades), D(0))
        assert account.wallet_balance == start + realized - fees  # to the exact Decimal, after every step
        # the open-order indexes are exactly the open records, in id order
        assert list(account.open_orders) == [i for i, o in account.orders.items() if o.is_open]
        assert list(account.open_algos) == [i for i, a in account.algo_orders.items() if a.is_open]
        # a position's own stops live only while it does, on its exit side
        amount = venue.position(account, BTC).amount
        for algo in account.open_algos.values():
            if algo.role != StopRole.PLAIN:
                assert amount > 0 if algo.side == "SELL" else amount < 0
    assert flips == []
    assert all(count == 1 for count in triggered.values())
    children = Counter(o.parent_algo_id for o in account.orders.values() if o.parent_algo_id is not None)
    assert all(count == 1 for count in children.values())
    for algo in account.algo_orders.values():
        if algo.algo_id in triggered:
            assert algo.algo_status in ("TRIGGERED", "FINISHED", "EXPIRED", "REJECTED")
        else:  # never triggered: open, cancelled, or (a position's own stop) gone with its position
            assert algo.algo_status in ("NEW", "CANCELED") or (
                algo.algo_status == "EXPIRED" and algo.role != StopRole.PLAIN
            )


def _state(venue: Venue) -> tuple[Any, ...]:
    account = venue.accounts["k"]
    return (
        account.wallet_balance,
        tuple((p.symbol, p.position_side, p.amount, p.entry_price) for p in account.open_positions()),
        tuple((o.order_id, o.status, o.executed_qty) for o in account.orders.values()),
        tuple((a.algo_id, a.algo_status) for a in account.algo_orders.values()),
        len(account.trades),
        venue._next_order_id,
        venue._next_algo_id,
    )


@pytest.mark.parametrize("front", FRONTS)
@settings(max_examples=100, deadline=None)
@given(ops=operations, again=st.integers(min_value=0, max_value=24), algo=st.booleans())
def test_a_client_id_is_used_once_and_a_resubmission_changes_nothing(
    front: VenueName, ops: list[Operation], again: int, algo: bool
) -> None:
    venue, account = make_venue(front)
    for n, op in enumerate(ops):
        _apply(venue, op, n)
    if front == VenueName.BYBIT:
        _resubmit_bybit(venue, sorted(account.bybit_links), again, algo)
        return
    taken = account.client_algo_ids if algo else account.client_order_ids
    if not taken:
        return
    client_id = sorted(taken)[again % len(taken)]
    before = _state(venue)
    try:
        if algo:
            venue.place_algo_order(
                account,
                AlgoRequest(
                    symbol=BTC, side="SELL", order_type="STOP_MARKET", quantity=MILLI * 10, trigger_price=D("1000"),
                    client_algo_id=client_id,
                ),
            )  # fmt: skip
        else:
            venue.place_order(
                account,
                OrderRequest(symbol=BTC, side="BUY", type="MARKET", quantity=MILLI * 10, client_order_id=client_id),
            )
    except VenueError as exc:
        assert exc.code == -4116
    else:
        raise AssertionError(f"{client_id} was accepted twice")
    assert _state(venue) == before


def _resubmit_bybit(venue: Venue, taken: list[str], again: int, conditional: bool) -> None:
    """Bybit: an orderLinkId, regular or conditional, is refused again (110072) and nothing changes."""
    if not taken:
        return
    link_id = taken[again % len(taken)]
    before = _state(venue)
    request = BybitRequest(
        symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET, qty=MILLI * 10, link_id=link_id,
        trigger_price=D("90000") if conditional else None, trigger_direction=TriggerDirection.RISE,
    )  # fmt: skip
    try:
        BybitFront(venue).place_order(venue.accounts["k"], request)
    except VenueError as exc:
        assert exc.code == 110072
    else:
        raise AssertionError(f"{link_id} was accepted twice")
    assert _state(venue) == before
