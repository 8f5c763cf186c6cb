"""Property tests of the venue: reduce-only never flips, money is exact, stops fire once, client ids are idempotent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paper.errors import VenueError
from paper.models import AlgoOrder, AlgoRequest, OrderRequest, OrderUpdate
from paper.venue import Venue
from tests.paper.test_venue import make_venue

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


sides = st.sampled_from(["BUY", "SELL"])
prices = st.integers(min_value=6000, max_value=7000)  # 60000 .. 70000 USDT
quantities = st.integers(min_value=1, max_value=150)
operations = st.lists(
    st.one_of(
        st.builds(Market, sides, quantities, st.booleans()),
        st.builds(Limit, sides, quantities, prices, st.booleans()),
        st.builds(Stop, sides, quantities, prices, st.booleans()),
        st.builds(Move, prices, st.booleans()),
    ),
    min_size=1,
    max_size=25,
)


def _apply(venue: Venue, op: Market | Limit | Stop | Move, n: int) -> None:
    """Run one operation; refusals are part of the venue's behaviour, not failures of the test."""
    account = venue.accounts["k"]
    try:
        if isinstance(op, Move):
            price = D(op.price) * 10
            venue.set_prices(BTC, mark=price, last=None if op.mark_only else price)
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
        else:
            request_market = OrderRequest(
                symbol=BTC, side=op.side, type="MARKET", quantity=op.qty * MILLI, reduce_only=op.reduce_only,
                client_order_id=f"o{n}",
            )  # fmt: skip
            venue.place_order(account, request_market)
    except VenueError:
        pass


@settings(max_examples=150, deadline=None)
@given(ops=operations)
def test_reduce_only_never_flips_money_is_exact_and_stops_fire_once(ops: list[Market | Limit | Stop | Move]) -> None:
    venue, account = make_venue()
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
    assert flips == []
    assert all(count == 1 for count in triggered.values())
    children = Counter(o.parent_algo_id for o in account.orders.values() if o.parent_algo_id is not None)
    assert all(count == 1 for count in children.values())
    for algo in account.algo_orders.values():
        assert (algo.algo_id in triggered) == (algo.algo_status in ("TRIGGERED", "FINISHED", "EXPIRED", "REJECTED"))


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


@settings(max_examples=100, deadline=None)
@given(ops=operations, again=st.integers(min_value=0, max_value=24), algo=st.booleans())
def test_a_client_id_is_used_once_and_a_resubmission_changes_nothing(
    ops: list[Market | Limit | Stop | Move], again: int, algo: bool
) -> None:
    venue, account = make_venue()
    for n, op in enumerate(ops):
        _apply(venue, op, n)
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
