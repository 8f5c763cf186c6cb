"""Decide the next step for one Position. Pure: no I/O, no clock (``now`` is an argument).

One call yields one step: the status to record and at most one exchange action. A step changes the phase
or acts, never both, so every transition is its own audited record. The shell records the status first
(so an order's intent is durable before the order is sent), executes the action, records its result with
``controller.reconcile.results``, observes again and calls the planner again until a step neither acts
nor changes the phase.

Protection comes first: while a filled amount is open, the first thing decided is the stop that covers
it. Orders are never amended in place: a replacement is placed under a new client id and the old order
is cancelled only once the replacement rests (it waits in ``retiredOrders``), so there is never a moment
without a stop.

The decisions live by phase: ``pending`` (before and during the entry, checked by ``entry``), ``entered``
(EntryPlaced and Protected, with ``stops`` and ``targets``), ``closing``; ``context`` holds what they share,
``status`` what the shell also uses, ``phases`` the transitions a step may make.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from controller.api.v1alpha1 import (
    DeletionPolicy,
    OrderState,
    Phase,
    PositionSpec,
    PositionStatus,
    TrailingMode,
    VenueTrailingState,
)
from controller.api.vocabulary import ConditionType, EventType, ExitReason, Reason
from controller.reconcile.closing import closing
from controller.reconcile.context import Context
from controller.reconcile.entered import entered
from controller.reconcile.model import Note, Observation, Step
from controller.reconcile.pending import pending
from controller.reconcile.phases import TERMINAL, check_transition
from controller.reconcile.risk import RiskContext
from controller.reconcile.status import absorb, all_records, condition_is, fill_notes, replace_status
from controller.reconcile.stops import protection_restored
from controller.reconcile.valuation import DEFAULT_REFRESH, revalued, shown

PAUSE_ANNOTATION = "trading.warden.dev/paused"


def plan(
    spec: PositionSpec,
    status: PositionStatus,
    observation: Observation,
    *,
    uid: str,
    generation: int,
    deleting: bool,
    now: datetime,
    paused: bool = False,
    risk: RiskContext | None = None,
    pnl_refresh: timedelta | None = DEFAULT_REFRESH,
) -> Step:
    """``paused``: the pause annotation is set (observe and report only). ``risk``: the account's limits and
    book, checked before the entry is placed; the shell serializes entries per account while it holds it.
    ``pnl_refresh``: how often the unrealized PnL may be refreshed (``valuation``); None: not on this call."""
    if status.phase in TERMINAL:
        return Step(replace_status(status, observedGeneration=generation))
    absorbed = replace_status(absorb(status, observation), observedGeneration=generation)
    ctx = Context(
        spec, observation, uid, generation, deleting, now, risk, absorbed.retryAfter, keeps_emulating(absorbed)
    )
    if deleting and spec.deletionPolicy is DeletionPolicy.ORPHAN:
        step = orphan(ctx, absorbed)
    elif paused:
        step = hold_paused(ctx, absorbed)
    else:
        step = decide(ctx, resumed(ctx, absorbed))
    check_transition(status.phase, step.status.phase)
    mode = ctx.trailing_mode()
    if step.status.trailingMode is not mode:
        if step.status.trailingMode is TrailingMode.NATIVE and mode is TrailingMode.EMULATED:
            why = "the venue refused it" if observation.alone_on_side else "another Position shares the symbol's side"
            note = Note(EventType.TRAILING_EMULATED, f"the trailing stop is emulated from now on: {why}")
            ctx.notes = (*ctx.notes, note)
        step = replace(step, status=replace_status(step.status, trailingMode=mode))
    notes = fill_notes(status, step.status, ctx.rules) + ctx.notes + step.notes
    valued = revalued(
        step.status,
        side=spec.side,
        amount=ctx.exposure(step.status),
        mark=observation.mark_price,
        rules=ctx.rules,
        now=now,
        every=pnl_refresh,
    )
    return replace(step, status=shown(valued, ctx.rules), notes=notes)


def keeps_emulating(status: PositionStatus) -> bool:
    """A trailing stop emulated with exposure stays emulated (the emulated stop may have moved: native would leave it
    there unmanaged); so does one whose position-level trailing the venue refused."""
    refused = status.venueTrailing is not None and status.venueTrailing.state is VenueTrailingState.REJECTED
    return refused or (status.trailingMode is TrailingMode.EMULATED and bool(status.filled))


# --- pause, orphan, and which phase decides ------------------------------------------------------


def hold_paused(ctx: Context, status: PositionStatus) -> Step:
    if not condition_is(status, ConditionType.PAUSED):
        ctx.notes = (Note(EventType.PAUSED, f"{PAUSE_ANNOTATION} is set: observing only, no orders"),)
    message = f"{PAUSE_ANNOTATION} is set: Warden observes and reports but sends no orders"
    return Step(paused_protection(ctx, ctx.condition(status, ConditionType.PAUSED, True, Reason.ANNOTATED, message)))


def paused_protection(ctx: Context, status: PositionStatus) -> PositionStatus:
    """Paused, nothing re-places a lost stop; the Protected condition (which the alerts read) still tells
    whether a resting stop covers the exposure."""
    entry = status.entryOrder
    filled = entry.filled if entry is not None and entry.filled else Decimal(0)  # fills go on while paused
    exposure = ctx.exposure(replace_status(status, filled=max(filled, status.filled or Decimal(0))))
    if exposure < ctx.rules.min_amount:
        return status
    stop = status.stopOrder
    if stop is not None and stop.state is OrderState.OPEN and stop.amount >= exposure:
        return protection_restored(ctx, status)
    message = f"paused with no resting stop covering {ctx.rules.size(exposure)} {ctx.spec.symbol}"
    return ctx.condition(status, ConditionType.PROTECTED, False, Reason.STOP_MISSING, message)


def resumed(ctx: Context, status: PositionStatus) -> PositionStatus:
    if not condition_is(status, ConditionType.PAUSED):
        return status
    ctx.notes = (Note(EventType.RESUMED, f"{PAUSE_ANNOTATION} removed: acting again"),)
    return ctx.condition(status, ConditionType.PAUSED, False, Reason.RESUMED, "acting on the exchange again")


def orphan(ctx: Context, status: PositionStatus) -> Step:
    left = [r.clientOrderId for r in all_records(status) if ctx.on_exchange(r)]
    message = (
        f"deleted with deletionPolicy Orphan: left untouched on the exchange: position "
        f"{ctx.rules.size(ctx.obs.position_size)} {ctx.spec.symbol}, open orders {', '.join(left) or 'none'}"
    )
    status = replace_status(status, phase=Phase.CLOSED, exitReason=ExitReason.ORPHANED, closedAt=ctx.now)
    status = ctx.condition(status, ConditionType.READY, True, ExitReason.ORPHANED, message)
    return Step(status, notes=(Note(EventType.POSITION_ORPHANED, message, warning=True),))


def decide(ctx: Context, status: PositionStatus) -> Step:
    if status.failedAttempts == 0 and condition_is(status, ConditionType.ESCALATED):
        status = ctx.condition(
            status, ConditionType.ESCALATED, False, Reason.RECOVERED, "the last exchange action succeeded"
        )
    if status.phase is Phase.PENDING:
        return pending(ctx, status)
    if status.phase is Phase.CLOSING:
        return closing(ctx, status)
    return entered(ctx, status)
