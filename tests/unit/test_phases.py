"""The phase transition table: its shape, a planner step for every pair it declares, and a step outside it refused."""

from __future__ import annotations

import pytest

from controller.api.v1alpha1 import OrderState, Phase, PositionSpec, PositionStatus
from controller.reconcile import planner
from controller.reconcile.model import Observation, Step
from controller.reconcile.phases import INITIAL, TERMINAL, TRANSITIONS, ForbiddenTransition, check_transition
from tests.unit.test_planner import ENTRY, FILLED_ENTRY, RESTING_STOP, STOP1, obs, record, run, seen, spec

HELD = obs(size="0.010", orders={ENTRY: seen(ENTRY, OrderState.FILLED), STOP1: seen(STOP1, OrderState.OPEN)})
INTENDED_ENTRY = record(ENTRY, OrderState.INTENDED, exchange_id=None)


def stopped(phase: Phase) -> PositionStatus:
    """Filled, its stop resting."""
    return PositionStatus(phase=phase, entryOrder=FILLED_ENTRY, stopOrder=RESTING_STOP)


# (before, after): a Position and what the exchange shows, such that one planner step makes that change.
CASES: dict[tuple[Phase, Phase], tuple[PositionSpec, PositionStatus, Observation, bool]] = {
    (Phase.PENDING, Phase.ENTRY_PLACED): (
        spec(),
        PositionStatus(entryOrder=INTENDED_ENTRY),
        obs(orders={ENTRY: seen(ENTRY, OrderState.OPEN, filled="0")}),
        False,
    ),
    (Phase.PENDING, Phase.CLOSED): (spec(), PositionStatus(), obs(), True),
    (Phase.PENDING, Phase.FAILED): (spec(amount="0.0105"), PositionStatus(), obs(), False),
    (Phase.ENTRY_PLACED, Phase.PROTECTED): (
        spec(),
        stopped(Phase.ENTRY_PLACED),
        HELD,
        False,
    ),
    (Phase.ENTRY_PLACED, Phase.CLOSING): (
        spec(),
        PositionStatus(phase=Phase.ENTRY_PLACED, entryOrder=FILLED_ENTRY),
        obs(size="0.010", orders={ENTRY: seen(ENTRY, OrderState.FILLED)}),
        True,
    ),
    (Phase.ENTRY_PLACED, Phase.CLOSED): (
        spec(),
        PositionStatus(phase=Phase.ENTRY_PLACED, entryOrder=record(ENTRY, OrderState.OPEN, filled="0")),
        obs(orders={ENTRY: seen(ENTRY, OrderState.CANCELED, filled="0")}),
        False,
    ),
    (Phase.PROTECTED, Phase.CLOSING): (spec(), stopped(Phase.PROTECTED), HELD, True),
    (Phase.PROTECTED, Phase.CLOSED): (
        spec(deletionPolicy="Orphan"),
        stopped(Phase.PROTECTED),
        HELD,
        True,
    ),
    (Phase.CLOSING, Phase.CLOSED): (
        spec(),
        PositionStatus(phase=Phase.CLOSING, exitReason="Requested", entryOrder=FILLED_ENTRY),
        obs(orders={ENTRY: seen(ENTRY, OrderState.FILLED)}),
        True,
    ),
}


def test_every_declared_transition_has_a_step_that_makes_it() -> None:
    declared = {(before, after) for before, onward in TRANSITIONS.items() for after in onward}
    assert set(CASES) == declared


@pytest.mark.parametrize(("before", "after"), list(CASES), ids=[f"{b}->{a}" for b, a in CASES])
def test_a_step_makes_the_declared_transition(before: Phase, after: Phase) -> None:
    the_spec, status, observation, deleting = CASES[(before, after)]
    assert status.phase is before
    assert run(the_spec, status, observation, deleting).status.phase is after


def test_the_table_covers_every_phase_and_leads_from_pending_to_an_end() -> None:
    assert set(TRANSITIONS) == set(Phase)
    assert {Phase.CLOSED, Phase.FAILED} == TERMINAL
    reached, frontier = {INITIAL}, [INITIAL]
    while frontier:
        onward = TRANSITIONS[frontier.pop()] - reached
        reached |= onward
        frontier.extend(onward)
    assert reached == set(Phase)
    for phase in set(Phase) - TERMINAL:
        assert TRANSITIONS[phase] & TERMINAL or any(TRANSITIONS[p] & TERMINAL for p in TRANSITIONS[phase]), phase


def test_a_filled_entry_found_by_a_deleted_position_records_entry_placed_before_closing() -> None:
    """A status a lost write left at Pending, while the audit already went on: the entry is found filled and the
    Position is deleted. It moves to EntryPlaced first (the audit repeats that change under the same id), then
    starts closing from there, so the audit's chain never jumps from Pending past the exposure."""
    status = PositionStatus(entryOrder=INTENDED_ENTRY)
    found = obs(size="0.010", orders={ENTRY: seen(ENTRY, OrderState.FILLED)})
    first = run(spec(), status, found, True)
    assert first.status.phase is Phase.ENTRY_PLACED and first.action is None
    then = run(spec(), first.status, found, True)
    assert then.status.phase is Phase.CLOSING


def test_a_transition_outside_the_table_is_a_programming_error(monkeypatch: pytest.MonkeyPatch) -> None:
    check_transition(Phase.PROTECTED, Phase.PROTECTED)  # staying put is always allowed
    with pytest.raises(ForbiddenTransition, match="from Protected to EntryPlaced"):
        check_transition(Phase.PROTECTED, Phase.ENTRY_PLACED)

    def reopen(_: object, status: PositionStatus) -> Step:
        return Step(status.model_copy(update={"phase": Phase.PENDING}))

    monkeypatch.setattr(planner, "decide", reopen)
    status = stopped(Phase.PROTECTED)
    with pytest.raises(ForbiddenTransition, match="from Protected to Pending"):
        run(spec(), status, HELD)
