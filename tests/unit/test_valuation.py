"""Unrealized PnL and the status figures a person reads (``controller.reconcile.valuation``): tables, and the
planner's use of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from controller.api.v1alpha1 import OrderRecord, OrderState, Phase, PositionSpec, PositionStatus, Side, StatusDisplay
from controller.reconcile.model import MarketRules, Observation, ObservedOrder, Purpose, client_order_id
from controller.reconcile.planner import plan
from controller.reconcile.valuation import revalued, shown, unrealized, with_fees_paid

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
EVERY = timedelta(seconds=15)
RULES = MarketRules(
    amount_step=Decimal("0.001"), min_amount=Decimal("0.001"), min_notional=Decimal("5"), price_tick=Decimal("0.01")
)
UID = "0b7c2c1e-0000-4000-8000-00000000beef"


@pytest.mark.parametrize(
    ("side", "amount", "entry", "mark", "fees", "value"),
    [
        (Side.LONG, "0.010", "3200", "3240", None, "0.4"),
        (Side.LONG, "0.010", "3200", "3240", "0.0128", "0.3872"),  # net of the entry's fee
        (Side.LONG, "0.010", "3200", "3100", "0.0128", "-1.0128"),
        (Side.SHORT, "0.010", "3200", "3100", None, "1.0"),
        (Side.SHORT, "0.010", "3200", "3300", "0.0128", "-1.0128"),
        (Side.LONG, "2", "0.5", "0.5", "0.0004", "-0.0004"),
    ],
)
def test_unrealized(side: Side, amount: str, entry: str, mark: str, fees: str | None, value: str) -> None:
    got = unrealized(side, Decimal(amount), Decimal(entry), Decimal(mark), Decimal(fees) if fees else None)
    assert got == Decimal(value)


def valued(value: str, mark: str, at: datetime) -> PositionStatus:
    return PositionStatus(
        phase=Phase.PROTECTED,
        averageEntryPrice=Decimal("3200"),
        unrealizedPnl=Decimal(value),
        unrealizedPnlMark=Decimal(mark),
        unrealizedPnlAt=at,
    )


OPEN = PositionStatus(phase=Phase.PROTECTED, averageEntryPrice=Decimal("3200"))


@pytest.mark.parametrize(
    ("name", "status", "mark", "amount", "expected"),
    [
        ("the first valuation is at once", OPEN, "3240", "0.010", ("0.4", "3240", NOW)),
        (
            "not before the refresh interval, however far the mark moved",
            valued("0.4", "3240", NOW - timedelta(seconds=14)),
            "3300",
            "0.010",
            ("0.4", "3240", NOW - timedelta(seconds=14)),
        ),
        (
            "due, but moved by no more than a tick's worth (0.01 x 0.010)",
            valued("0.4", "3240", NOW - timedelta(seconds=60)),
            "3240.01",
            "0.010",
            ("0.4", "3240", NOW - timedelta(seconds=60)),
        ),
        (
            "due and moved by more than a tick's worth",
            valued("0.4", "3240", NOW - timedelta(seconds=15)),
            "3240.02",
            "0.010",
            ("0.4002", "3240.02", NOW),
        ),
        ("nothing held: no unrealized PnL", valued("0.4", "3240", NOW), "3250", "0", (None, None, None)),
        (
            "not in a valued phase (Closing is valued by its fills)",
            valued("0.4", "3240", NOW).model_copy(update={"phase": Phase.CLOSING}),
            "3250",
            "0.010",
            (None, None, None),
        ),
        ("no entry price yet", PositionStatus(phase=Phase.ENTRY_PLACED), "3250", "0.010", (None, None, None)),
    ],
)
def test_revalued(
    name: str,
    status: PositionStatus,
    mark: str,
    amount: str,
    expected: tuple[str | None, str | None, datetime | None],
) -> None:
    after = revalued(
        status, side=Side.LONG, amount=Decimal(amount), mark=Decimal(mark), rules=RULES, now=NOW, every=EVERY
    )
    value, at_mark, at = expected
    assert after.unrealizedPnl == (Decimal(value) if value else None), name
    assert after.unrealizedPnlMark == (Decimal(at_mark) if at_mark else None), name
    assert after.unrealizedPnlAt == at, name
    if expected[0] is not None and at != NOW:
        assert after is status, "nothing due changes nothing (no status write)"


def test_without_a_refresh_to_spend_only_the_first_valuation_is_made() -> None:
    stale = valued("0.4", "3240", NOW - timedelta(hours=1))
    kept = revalued(
        stale, side=Side.LONG, amount=Decimal("0.010"), mark=Decimal("3300"), rules=RULES, now=NOW, every=None
    )
    assert kept is stale
    first = revalued(
        OPEN, side=Side.LONG, amount=Decimal("0.010"), mark=Decimal("3300"), rules=RULES, now=NOW, every=None
    )
    assert first.unrealizedPnl == Decimal("1.0")


def test_fees_paid_shift_the_valuation_once() -> None:
    status = valued("0.4", "3240", NOW)
    after = with_fees_paid(status, Decimal("0.0128"))
    assert (after.fees, after.unrealizedPnl) == (Decimal("0.0128"), Decimal("0.3872"))
    assert with_fees_paid(after, Decimal("0.0128")) is after
    more = with_fees_paid(after, Decimal("0.02"))
    assert more.unrealizedPnl == Decimal("0.38")


def test_shown_rounds_for_people_and_keeps_the_figures() -> None:
    status = PositionStatus(
        phase=Phase.PROTECTED,
        averageEntryPrice=Decimal("3200.00000000"),
        stopOrder=OrderRecord(
            clientOrderId="w0-sl1", state=OrderState.OPEN, amount=Decimal("0.01"), triggerPrice=Decimal("3168")
        ),
        unrealizedPnl=Decimal("0.3872"),
        realizedPnl=Decimal("0E-8"),
    )
    after = shown(status, RULES)
    assert after.display == StatusDisplay(entry="3200.00", stop="3168.00", realizedPnl="0.00", unrealizedPnl="0.39")
    assert after.averageEntryPrice == Decimal("3200.00000000") and after.unrealizedPnl == Decimal("0.3872")
    assert shown(after, RULES) is after
    assert shown(PositionStatus(), RULES).display is None


def test_the_planner_values_a_fill_in_the_step_that_protects_it_and_clears_it_at_the_close() -> None:
    spec = PositionSpec.model_validate(
        {
            "accountRef": {"name": "paper"},
            "symbol": "ETH/USDT:USDT",
            "side": "long",
            "amount": "0.010",
            "stopLoss": {"price": "3168"},
        }
    )
    entry = client_order_id(UID, Purpose.ENTRY)
    placed = PositionStatus(
        phase=Phase.ENTRY_PLACED,
        entryOrder=OrderRecord(clientOrderId=entry, exchangeOrderId="1", state=OrderState.OPEN, amount=spec.amount),
    )
    fill = ObservedOrder(
        entry, "1", OrderState.FILLED, Decimal("0.010"), Decimal("0.010"), average_price=Decimal("3200.00000000")
    )
    observation = Observation(Decimal("3240.00000000"), Decimal("0.010"), RULES, {entry: fill})
    step = plan(spec, placed, observation, uid=UID, generation=1, deleting=False, now=NOW)
    assert step.action is not None and step.action.purpose is Purpose.STOP  # the stop goes first, as before
    assert step.status.unrealizedPnl == Decimal("0.4") and step.status.unrealizedPnlAt == NOW
    assert step.status.display == StatusDisplay(entry="3200.00", stop="3168.00", unrealizedPnl="0.40")
    assert any("filled 0.010 at 3200.00" in note.message for note in step.notes)

    closing = step.status.model_copy(update={"phase": Phase.CLOSING})
    flat = Observation(Decimal("3240"), Decimal("0"), RULES, {})
    after = plan(spec, closing, flat, uid=UID, generation=1, deleting=False, now=NOW + timedelta(seconds=1))
    assert after.status.unrealizedPnl is None and after.status.display is not None
    assert after.status.display.unrealizedPnl is None
