"""Every audit event type Warden writes, with what it means. ``docs/audit-events.md`` is generated from this
(``python -m controller.audit.catalogue``; a test fails on drift), and the end-to-end suite fails when the
store holds a type that is not listed here."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EventType:
    name: str
    group: str
    meaning: str
    detail: str = ""


_CATALOGUE: tuple[EventType, ...] = (
    # Position
    EventType("PositionCreated", "position", "Warden saw the Position for the first time.", "spec"),
    EventType("SpecChanged", "position", "The Position's spec changed (a new generation).", "generation, spec"),
    EventType("PositionRejected", "position", "The spec cannot be traded (market rules, stop side); ends Failed."),
    EventType("RiskRefused", "position", "A risk limit of the account refused the entry; ends Failed.", "limit"),
    EventType("Paused", "position", "The paused annotation was set: observe only, no orders."),
    EventType("Resumed", "position", "The paused annotation was removed."),
    EventType("SettingIntent", "position", "Leverage or margin mode is about to be set, before the entry."),
    EventType(
        "SettingApplied", "position", "The exchange accepted the leverage or margin mode (the message names it)."
    ),
    EventType("PhaseChanged", "position", "A phase transition.", "realizedPnl, fees, filled, exitReason"),
    EventType("PositionClosed", "position", "The Position is flat and Closed.", "reason, realized PnL, fees"),
    EventType("PositionOrphaned", "position", "Deleted with deletionPolicy Orphan: the exchange was left as is."),
    # Orders (every order kind: entry, stop, takeProfit, close)
    EventType("EntryIntent", "entry", "The entry order is about to be sent (committed before the call)."),
    EventType("EntryPartiallyFilled", "entry", "Part of a limit entry filled; the stop follows the filled amount."),
    EventType("EntryFilled", "entry", "The entry order filled.", "filled, average price"),
    EventType("EntryExpired", "entry", "The unfilled rest of a limit entry was cancelled after expireAfter."),
    EventType("OrderPlaced", "order", "The exchange accepted an order.", "purpose, exchange order id, amount"),
    EventType("OrderRejected", "order", "The exchange refused an order.", "purpose, error"),
    EventType("OrderFound", "order", "An order sent without an answer (crash, timeout) rests on the exchange."),
    EventType("OrderCanceled", "order", "Warden cancelled one of its orders.", "purpose"),
    EventType(
        "StopIntent",
        "stop",
        "A reduce-only stop is about to be sent (in the status write before the call; stored after it).",
        "amount, trigger",
    ),
    EventType("StopPlaced", "stop", "The stop rests on the exchange."),
    EventType("StopMove", "stop", "A new stop is placed; the old one is cancelled once it rests (never a gap)."),
    EventType("StopRetry", "stop", "The stop was rejected; it is placed again after a back-off."),
    EventType("OrderCancel", "order", "An order is about to be cancelled (replaced, or no longer needed)."),
    EventType("StopCanceled", "stop", "The stop was seen cancelled on the exchange."),
    EventType("StopTriggered", "stop", "The stop triggered and closed the position."),
    EventType("TakeProfitIntent", "takeProfit", "A take-profit order is about to be sent."),
    EventType("TakeProfitTriggered", "takeProfit", "A take profit triggered (fully or partly)."),
    EventType("TrailingStopIntent", "trailing", "A native trailing stop (TRAILING_STOP_MARKET) is about to be sent."),
    EventType("TrailingActivated", "trailing", "The emulated trailing stop's activation price was reached."),
    EventType("TrailingMoved", "trailing", "The emulated trailing stop moved with the high-water mark."),
    EventType("TrailingStopTriggered", "trailing", "The trailing stop triggered and closed the position."),
    EventType("CloseStarted", "close", "Closing began.", "reason"),
    EventType("CloseIntent", "close", "The reduce-only market close is about to be sent."),
    EventType("CloseRetry", "close", "The close was rejected; it is sent again after a back-off."),
    EventType("CloseFilled", "close", "The close order filled."),
    # Drift found by observation
    EventType("DriftExternalClose", "drift", "The position was closed outside Warden (website, liquidation)."),
    EventType("DriftStopMissing", "drift", "Warden's stop is gone; a new one is placed at once."),
    EventType("DriftTakeProfitMissing", "drift", "A take profit is gone; it is placed again."),
    EventType(
        "DriftOrphanOrder",
        "drift",
        "A Warden order with no live Position: cancelled, or kept (and reported) while it is the only stop "
        "of an open exchange position.",
        "clientOrderId, symbol, repair",
    ),
    EventType(
        "DriftUntrackedPosition",
        "drift",
        "An exchange position with no Position resource: reported, or adopted per the account's untrackedPositions.",
        "symbol, side, size, repair",
    ),
    EventType("PositionAdopted", "position", "Warden took over an untracked exchange position (spec.adopted)."),
    EventType("DriftPositionVanished", "drift", "The exchange position vanished with no trade explaining it."),
    # Errors
    EventType("ExchangeError", "error", "An exchange call failed.", "class, code, message, outcome, attempt"),
    EventType("Escalated", "error", "Protection keeps failing with exposure; a human is needed."),
    # Account and controller
    EventType("AccountReady", "account", "The ExchangeAccount's credentials and exchange answered."),
    EventType("AccountNotReady", "account", "The ExchangeAccount cannot be used.", "reason"),
    EventType("ControllerStarted", "controller", "A Warden replica started.", "replica"),
    EventType("ControllerStopped", "controller", "A Warden replica stopped (after handing back its Lease).", "replica"),
    EventType("LeadershipAcquired", "controller", "This replica holds the Lease and may act.", "epoch"),
    EventType("LeadershipLost", "controller", "This replica stopped acting (lease lost or released).", "epoch"),
    # The audit store itself
    EventType(
        "AuditBacklogFlushed",
        "audit",
        "Events buffered in status (an outage, or a crash right after a stop or close was sent) reached the store.",
    ),
    EventType("AuditBacklogOverflow", "audit", "A Position's bounded backlog overflowed; events were counted."),
    EventType("AuditUnavailable", "audit", "An entry waits: its intent cannot be committed to the audit store."),
)

CATALOGUE: dict[str, EventType] = {event.name: event for event in _CATALOGUE}


def render() -> str:
    lines = [
        "# Audit events",
        "",
        "Generated from `controller/audit/catalogue.py` (`python -m controller.audit.catalogue`); do not edit.",
        "",
        "Every row of the `events` table has: a deterministic `event_id` (so a retried or re-flushed write never",
        "duplicates a row), the Position's uid, namespace and name, account, symbol, `type`, the phase before and",
        "after, client and exchange order ids, amount and price (`NUMERIC`), a message, a JSONB `detail`, the time",
        "it happened (`occurred_at`), the time it was stored (`recorded_at`), and the leadership `epoch` and",
        "`replica` that wrote it. Every exchange trade is also a row of `fills`; `position_summary` sums both.",
        "",
        "Append-only is enforced by triggers: `UPDATE`, `DELETE` and `TRUNCATE` on `events` and `fills` fail.",
        "",
        "## Retention",
        "",
        "`events` is partitioned by month (`events_YYYY_MM`, created three months ahead at every start and",
        "hourly; rows outside them land in `events_default`). To drop whole months older than a cutoff, as the",
        "table owner: `SELECT * FROM warden_drop_events_before('2025-01-01');` — it detaches and drops those",
        "partitions and forgets their ids. Rows are never deleted one by one. Archive a partition first with",
        "`pg_dump -t events_2024_12` if it must be kept.",
        "",
        "## Types",
        "",
        "| type | group | meaning | detail |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{e.name}` | {e.group} | {e.meaning} | {e.detail} |" for e in _CATALOGUE]
    return "\n".join(lines) + "\n"


DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-events.md"

if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if DOC.read_text() == render() else 1)
    DOC.write_text(render())
