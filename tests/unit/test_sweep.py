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
from controller.reconcile.sweep import Owner, Owners, SweepPlan, Untracked, plan_sweep

BTC = "BTC/USDT:USDT"
LIVE, GONE, CLOSED, ORPHANED = "live-uid", "deleted-uid", "closed-uid", "orphaned-uid"
UNSEEN = "unseen-uid"
"""A live Position the replica's watch has not delivered yet."""


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
    plan = plan_sweep(view(orders), OWNERS, [], frozenset(), Owners.LISTED)
    assert plan.orphans == ()


def test_orders_of_deleted_or_closed_positions_are_cancelled() -> None:
    gone = client_order_id(GONE, Purpose.TAKE_PROFIT, 1)
    closed_entry = client_order_id(CLOSED, Purpose.ENTRY)
    plan = plan_sweep(view([order(gone), order(closed_entry, "buy")]), OWNERS, [], frozenset(), Owners.LISTED)
    assert {(o.client_order_id, o.cancel) for o in plan.orphans} == {(gone, True), (closed_entry, True)}
    assert {o.purpose for o in plan.orphans} == {Purpose.TAKE_PROFIT, Purpose.ENTRY}


def test_an_orphan_stop_of_an_open_position_is_kept_and_reported() -> None:
    stop = client_order_id(GONE, Purpose.STOP, 3)
    trailing = client_order_id(GONE, Purpose.TRAILING, 1)
    sizes = {(BTC, Side.LONG): "0.01"}
    plan = plan_sweep(view([order(stop), order(trailing)], sizes), OWNERS, [], frozenset(), Owners.LISTED)
    assert [(o.client_order_id, o.cancel) for o in plan.orphans] == [(stop, False), (trailing, False)]
    assert "only stop" in plan.orphans[0].reason
    # A buy stop protects a short: with only a long open it goes.
    short_stop = plan_sweep(view([order(stop, "buy")], sizes), OWNERS, [], frozenset(), Owners.LISTED)
    assert short_stop.orphans[0].cancel


def test_orders_of_positions_deleted_with_orphan_policy_are_left_alone() -> None:
    orders = [order(client_order_id(ORPHANED, Purpose.TAKE_PROFIT, 1))]
    assert plan_sweep(view(orders), OWNERS, [client_id_prefix(ORPHANED)], frozenset(), Owners.LISTED).orphans == ()


def test_an_untracked_position_counts_only_when_two_sweeps_saw_it() -> None:
    sizes = {(BTC, Side.SHORT): "0.5", (BTC, Side.LONG): "0.01", ("ETH/USDT:USDT", Side.LONG): "0"}
    first = plan_sweep(view([], sizes), OWNERS, [], frozenset(), Owners.LISTED)
    assert first.untracked == ()
    assert first.suspected == {(BTC, Side.SHORT)}  # the long is the live Position's
    second = plan_sweep(view([], sizes), OWNERS, [], first.suspected, Owners.LISTED)
    assert second.untracked == (Untracked(BTC, Side.SHORT, Decimal("0.5")),)
    gone = plan_sweep(view([], {}), OWNERS, [], second.suspected, Owners.LISTED)
    assert gone.untracked == () and gone.suspected == frozenset()


def test_watched_owners_that_would_make_an_orphan_ask_for_a_listing_and_nothing_is_done() -> None:
    """A replica that just took over sweeps before its watch has shown every Position: a live Position's pre-armed
    stop (flat side) is not cancelled on the watch's word; the owners listed after the view decide."""
    armed = order(client_order_id(UNSEEN, Purpose.PRE_ARMED))
    watched = plan_sweep(view([armed]), OWNERS, [], frozenset(), Owners.WATCHED)
    assert watched == SweepPlan((), (), frozenset(), confirm=True)
    listed = [*OWNERS, Owner(client_id_prefix(UNSEEN), BTC, Side.LONG, live=True)]
    assert plan_sweep(view([armed]), listed, [], frozenset(), Owners.LISTED) == SweepPlan((), (), frozenset())
    # Listed and still without an owner: it is an orphan.
    (orphan,) = plan_sweep(view([armed]), OWNERS, [], frozenset(), Owners.LISTED).orphans
    assert orphan.cancel and orphan.client_order_id == armed.order.client_order_id


def test_watched_owners_decide_alone_when_they_explain_everything() -> None:
    orders = [order(client_order_id(LIVE, Purpose.STOP, 1)), order("web_8fa3")]
    sizes = {(BTC, Side.SHORT): "0.5", (BTC, Side.LONG): "0.01"}
    first = plan_sweep(view(orders, sizes), OWNERS, [], frozenset(), Owners.WATCHED)
    assert not first.confirm and first.suspected == {(BTC, Side.SHORT)}  # a suspicion acts on nothing yet
    # Its confirmation would act (report or adopt): the listing decides that too.
    second = plan_sweep(view(orders, sizes), OWNERS, [], first.suspected, Owners.WATCHED)
    assert second == SweepPlan((), (), first.suspected, confirm=True)
