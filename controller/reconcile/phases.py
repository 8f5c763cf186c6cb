"""The phases a Position may move between, as one table: ``plan()`` refuses a step outside it, and the chaos
checker reads a run's phase changes against it."""

from __future__ import annotations

from collections.abc import Mapping

from controller.api.v1alpha1 import Phase

INITIAL = Phase.PENDING

TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    # The entry is placed (a market entry may fill in the same step; an exit starts from EntryPlaced, so the
    # chain passes through the exposure), the Position is closed before any order (or its entry was cancelled, or
    # orphaned), or it cannot be traded as written.
    Phase.PENDING: frozenset({Phase.ENTRY_PLACED, Phase.CLOSED, Phase.FAILED}),
    # The stop rests; or an exit began; or the entry ended unfilled (or the Position was orphaned).
    Phase.ENTRY_PLACED: frozenset({Phase.PROTECTED, Phase.CLOSING, Phase.CLOSED}),
    Phase.PROTECTED: frozenset({Phase.CLOSING, Phase.CLOSED}),
    Phase.CLOSING: frozenset({Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
    Phase.FAILED: frozenset(),
}
"""Phase -> the phases one step may move it to (staying put is always allowed)."""

TERMINAL = frozenset(phase for phase, onward in TRANSITIONS.items() if not onward)


class ForbiddenTransition(AssertionError):
    """A step moved a Position between phases the table does not connect: a bug in the planner."""


def allowed(before: Phase, after: Phase) -> bool:
    return before is after or after in TRANSITIONS[before]


def check_transition(before: Phase, after: Phase) -> None:
    if not allowed(before, after):
        raise ForbiddenTransition(f"no step may move a Position from {before} to {after}")
