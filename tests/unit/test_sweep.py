"""The account sweep's decisions: orphan orders and untracked positions (pure, no I/O)."""

from __future__ import annotations

from decimal import Decimal

from controller.api.v1alpha1 import Side
from controller.reconcile.model import (
    ObservedOrder,
    OpenOrder,
    OrderState,
    Purpose,
    Snapshot,
    client_id_prefix,
    client_order_id,
)
from controller.reconcile.sweep import Owner, Untracked, plan_sweep

BTC = "BTC/USDT:USDT"
LIVE, GONE, CLOSED, ORPHANED = "live-uid", "deleted-uid", "closed-uid", "orphaned-uid"


def order(client_id: str, side: str = "sell") -> OpenOrder:
    return OpenOrder(BTC, side, ObservedOrder(client_id, "1", OrderState.OPEN, Decimal("0.01"), Decimal(0)))


def view(orders: list[OpenOrder], sizes: dict[tuple[str, Side], str] | None = None) -> Snapshot:
    return Snapshot(
        0.0,
        {key: Decimal(size) for key, size in (sizes or {}).items()},
        {},
        {o.order.client_order_id: o for o in orders},
        {},
    )


OWNERS = [
    Owner(client_id_prefix(LIVE), BTC, Side.LONG, live=True),
    Owner(client_id_prefix(CLOSED), BTC, Side.LONG, live=False),
]


def test_orders_of_live_positions_and_foreign_orders_are_left_alone() -> None:
    orders = [order(client_order_id(LIVE, Purpose.STOP, 1)), order("web_8fa3"), order("wNOTHEX-sl1")]
    plan = plan_sweep(view(orders), OWNERS, [], frozenset())
    assert plan.orphans == ()


def test_orders_of_deleted_or_closed_positions_are_cancelled() -> None:
    gone = client_order_id(GONE, Purpose.TAKE_PROFIT, 1)
    closed_entry = client_order_id(CLOSED, Purpose.ENTRY)
    plan = plan_sweep(view([order(gone), order(closed_entry, "buy")]), OWNERS, [], frozenset())
    assert {(o.client_order_id, o.cancel) for o in plan.orphans} == {(gone, True), (closed_entry, True)}
    assert {o.purpose for o in plan.orphans} == {Purpose.TAKE_PROFIT, Purpose.ENTRY}


def test_an_orphan_stop_of_an_open_position_is_kept_and_reported() -> None:
    stop = client_order_id(GONE, Purpose.STOP, 3)
    trailing = client_order_id(GONE, Purpose.TRAILING, 1)
    sizes = {(BTC, Side.LONG): "0.01"}
    plan = plan_sweep(view([order(stop), order(trailing)], sizes), OWNERS, [], frozenset())
    assert [(o.client_order_id, o.cancel) for o in plan.orphans] == [(stop, False), (trailing, False)]
    assert "only stop" in plan.orphans[0].reason
    # A buy stop protects a short: with only a long open it goes.
    short_stop = plan_sweep(view([order(stop, "buy")], sizes), OWNERS, [], frozenset())
    assert short_stop.orphans[0].cancel


def test_orders_of_positions_deleted_with_orphan_policy_are_left_alone() -> None:
    orders = [order(client_order_id(ORPHANED, Purpose.TAKE_PROFIT, 1))]
    assert plan_sweep(view(orders), OWNERS, [client_id_prefix(ORPHANED)], frozenset()).orphans == ()


def test_an_untracked_position_counts_only_when_two_sweeps_saw_it() -> None:
    sizes = {(BTC, Side.SHORT): "0.5", (BTC, Side.LONG): "0.01", ("ETH/USDT:USDT", Side.LONG): "0"}
    first = plan_sweep(view([], sizes), OWNERS, [], frozenset())
    assert first.untracked == ()
    assert first.suspected == {(BTC, Side.SHORT)}  # the long is the live Position's
    second = plan_sweep(view([], sizes), OWNERS, [], first.suspected)
    assert second.untracked == (Untracked(BTC, Side.SHORT, Decimal("0.5")),)
    gone = plan_sweep(view([], {}), OWNERS, [], second.suspected)
    assert gone.untracked == () and gone.suspected == frozenset()
