"""Warden's vocabulary, declared once: condition types and reasons, exit reasons, risk limits and audit event types.

``StrEnum`` members are their strings, so status, audit rows, Kubernetes events and metric labels read exactly as
before; a misspelt name is a ``mypy`` error, not a condition or an alert that never matches.
"""

from __future__ import annotations

from enum import StrEnum


class ConditionType(StrEnum):
    READY = "Ready"
    PROTECTED = "Protected"
    """A resting stop covers the whole exposure (the alerts read it)."""
    SYNCED = "Synced"
    """The exchange was observed and the last action's outcome is known."""
    ESCALATED = "Escalated"
    """Protection or a close keeps failing with exposure: a human is needed."""
    PAUSED = "Paused"
    VANISHED = "Vanished"
    """The exchange reports no position, and no trade explains it."""


class ExitReason(StrEnum):
    """Why a Position left its open phases (``status.exitReason``); a Failed Position's is also its Ready reason."""

    # Closed
    STOP_LOSS = "StopLoss"
    TRAILING_STOP = "TrailingStop"
    TAKE_PROFIT = "TakeProfit"
    LIQUIDATION = "Liquidation"
    EXTERNAL_CLOSE = "ExternalClose"
    REQUESTED = "Requested"
    DELETED = "Deleted"
    ORPHANED = "Orphaned"
    CANCELED_BEFORE_ENTRY = "CanceledBeforeEntry"
    ENTRY_CANCELED = "EntryCanceled"
    ENTRY_EXPIRED = "EntryExpired"
    ADOPTED_POSITION_GONE = "AdoptedPositionGone"
    # Failed
    INVALID_SPEC = "InvalidSpec"
    UNKNOWN_SYMBOL = "UnknownSymbol"
    INVALID_PRICE = "InvalidPrice"
    INVALID_AMOUNT = "InvalidAmount"
    AMOUNT_BELOW_MINIMUM = "AmountBelowMinimum"
    STOP_ON_WRONG_SIDE = "StopOnWrongSide"
    TAKE_PROFIT_ON_WRONG_SIDE = "TakeProfitOnWrongSide"
    RISK_LIMIT = "RiskLimit"
    CONDITIONAL_ORDER_CAP = "ConditionalOrderCap"
    """The venue's cap on resting conditional orders leaves no room for this Position's stop and take profits."""
    ENTRY_REJECTED = "EntryRejected"
    SETTING_REJECTED = "SettingRejected"
    RETRIES_EXHAUSTED = "RetriesExhausted"


class Reason(StrEnum):
    """Why a condition is what it is; a Position that ended says so with its exit reason instead (Failed, Orphaned)."""

    # Ready
    ENTRY_PLACED = "EntryPlaced"
    PROTECTED = "Protected"
    CLOSING = "Closing"
    CLOSE_FAILING = "CloseFailing"
    CLOSED = "Closed"
    AUDIT_UNAVAILABLE = "AuditUnavailable"
    VENUE_TRAILING_ON_SIDE = "VenueTrailingOnSide"
    """The entry waits: a position-level trailing stop is in force on the symbol's side, and would close this
    Position's fill with the rest of the venue position."""
    PRE_ARMED_STOP_ON_SIDE = "PreArmedStopOnSide"
    """The entry waits: another Position's pre-armed stop rests on the symbol's side, and would close this Position's
    fill with the rest of the venue position."""
    # Protected
    STOP_RESTING = "StopResting"
    STOP_MISSING = "StopMissing"
    STOP_REJECTED = "StopRejected"
    FLAT = "Flat"
    # Escalated
    REPEATED_FAILURES = "RepeatedFailures"
    RECOVERED = "Recovered"
    # Paused
    ANNOTATED = "Annotated"
    RESUMED = "Resumed"
    # Vanished
    NO_EXPLAINING_TRADE = "NoExplainingTrade"
    REAPPEARED = "Reappeared"
    # Synced: observed, or how the exchange failed (``Outcome``), or why the account cannot be used
    OBSERVED = "Observed"
    OBSERVE_FAILED = "ObserveFailed"
    EXCHANGE_REJECTED = "ExchangeRejected"
    EXCHANGE_RETRY = "ExchangeRetry"
    EXCHANGE_UNKNOWN = "ExchangeUnknown"
    EXCHANGE_ACCOUNT = "ExchangeAccount"
    # An ExchangeAccount's Ready (also a Position's Synced while its account is not ready)
    READY = "Ready"
    ACCOUNT_NOT_FOUND = "AccountNotFound"
    CREDENTIALS_NOT_FOUND = "CredentialsNotFound"
    CREDENTIALS_INVALID = "CredentialsInvalid"
    EXCHANGE_UNREACHABLE = "ExchangeUnreachable"


class RiskLimit(StrEnum):
    """The ``RiskLimits`` field that refused an entry (the ``warden_risk_refusals_total`` label)."""

    MAX_OPEN_POSITIONS = "maxOpenPositions"
    MAX_POSITION_NOTIONAL = "maxPositionNotional"
    MAX_TOTAL_NOTIONAL = "maxTotalNotional"
    DAILY_LOSS_LIMIT = "dailyLossLimit"
    COOLDOWN_AFTER_LOSS = "cooldownAfterLoss"


class SignalReason(StrEnum):
    """How the signal receiver answered a signal (the ``reason`` of its audit event and metric)."""

    CREATED = "Created"
    """201: the Position was created."""
    CLOSED = "Closed"
    """200: the source's open Positions of the symbol were set Closed."""
    DRY_RUN = "DryRun"
    """202: the source is a dry run; the answer is the Position it would create."""
    DUPLICATE = "Duplicate"
    """200: the signal's Position exists already (a resend or a replay), or a close found nothing open."""
    UNAUTHORIZED = "Unauthorized"
    """401: a wrong or missing token or signature, or an unknown source (the same answer, so none can be probed)."""
    TOO_LARGE = "TooLarge"
    """413: the body is over 16 KiB."""
    STALE = "Stale"
    """409: the signal's time is older than the source's maxAge."""
    MALFORMED = "Malformed"
    """422: the body is not a JSON object."""
    INVALID = "Invalid"
    """422: a field is missing, unknown or wrong, or the Position it makes would be refused."""
    UNKNOWN_SYMBOL = "UnknownSymbol"
    """422: the symbol is not one of the source's allowedSymbols."""
    OVER_LIMIT = "OverLimit"
    """422: the signal's notional is above the source's limits.maxNotional."""
    RATE_LIMITED = "RateLimited"
    """429: over the source's limits.perMinute."""
    UNAVAILABLE = "Unavailable"
    """503: the API server (or the venue, for a price) cannot be reached; TradingView resends."""

    @property
    def outcome(self) -> SignalOutcome:
        if self in (SignalReason.CREATED, SignalReason.CLOSED, SignalReason.DRY_RUN):
            return SignalOutcome.ACCEPTED
        if self is SignalReason.DUPLICATE:
            return SignalOutcome.DUPLICATE
        return SignalOutcome.REFUSED


class SignalOutcome(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    DUPLICATE = "duplicate"


class EventType(StrEnum):
    """Every audit event type Warden writes (also the reason of its Kubernetes events), with what it means: the
    audit catalogue. ``docs/audit-events.md`` is generated from it (``python -m controller.audit.catalogue``; a
    test fails on drift), and the end-to-end suite fails when the store holds a type that is not listed here."""

    group: str
    meaning: str
    detail: str

    def __new__(cls, value: str, group: str, meaning: str, detail: str = "") -> EventType:
        member = str.__new__(cls, value)
        member._value_ = value
        member.group, member.meaning, member.detail = group, meaning, detail
        return member

    # Position
    POSITION_CREATED = ("PositionCreated", "position", "Warden saw the Position for the first time.", "spec")
    SPEC_CHANGED = ("SpecChanged", "position", "The Position's spec changed (a new generation).", "generation, spec")
    POSITION_REJECTED = (
        "PositionRejected",
        "position",
        "The spec cannot be traded (market rules, stop side); ends Failed.",
    )
    RISK_REFUSED = ("RiskRefused", "position", "A risk limit of the account refused the entry; ends Failed.", "limit")
    PAUSED = ("Paused", "position", "The paused annotation was set: observe only, no orders.")
    RESUMED = ("Resumed", "position", "The paused annotation was removed.")
    SETTING_INTENT = ("SettingIntent", "position", "Leverage or margin mode is about to be set, before the entry.")
    SETTING_APPLIED = (
        "SettingApplied",
        "position",
        "The exchange accepted the leverage or margin mode (the message names it).",
    )
    PHASE_CHANGED = ("PhaseChanged", "position", "A phase transition.", "realizedPnl, fees, filled, exitReason")
    POSITION_CLOSED = ("PositionClosed", "position", "The Position is flat and Closed.", "reason, realized PnL, fees")
    POSITION_ORPHANED = (
        "PositionOrphaned",
        "position",
        "Deleted with deletionPolicy Orphan: the exchange was left as is.",
    )
    # Orders (every order kind: entry, stop, takeProfit, close)
    ENTRY_INTENT = ("EntryIntent", "entry", "The entry order is about to be sent (committed before the call).")
    ENTRY_PARTIALLY_FILLED = (
        "EntryPartiallyFilled",
        "entry",
        "Part of a limit entry filled; the stop follows the filled amount.",
    )
    ENTRY_FILLED = ("EntryFilled", "entry", "The entry order filled.", "filled, average price")
    ENTRY_EXPIRED = ("EntryExpired", "entry", "The unfilled rest of a limit entry was cancelled after expireAfter.")
    ENTRY_WAITING = (
        "EntryWaiting",
        "entry",
        "The entry waits while a position-level trailing stop is in force on the symbol's side (it would close this "
        "Position's fill too).",
    )
    ORDER_PLACED = ("OrderPlaced", "order", "The exchange accepted an order.", "purpose, exchange order id, amount")
    ORDER_REJECTED = ("OrderRejected", "order", "The exchange refused an order.", "purpose, error")
    ORDER_FOUND = ("OrderFound", "order", "An order sent without an answer (crash, timeout) rests on the exchange.")
    ORDER_CANCELED = ("OrderCanceled", "order", "Warden cancelled one of its orders.", "purpose")
    STOP_INTENT = (
        "StopIntent",
        "stop",
        "A reduce-only stop is about to be sent (in the status write before the call; stored after it).",
        "amount, trigger",
    )
    STOP_PLACED = ("StopPlaced", "stop", "The stop rests on the exchange.")
    STOP_MOVE = ("StopMove", "stop", "A new stop is placed; the old one is cancelled once it rests (never a gap).")
    BREAKEVEN_REACHED = (
        "BreakevenReached",
        "stop",
        "The breakeven was reached: the stop moves to the entry price (plus the offset), never back.",
        "what was reached, the new stop price",
    )
    STOP_RETRY = ("StopRetry", "stop", "The stop was rejected; it is placed again after a back-off.")
    ORDER_CANCEL = ("OrderCancel", "order", "An order is about to be cancelled (replaced, or no longer needed).")
    STOP_CANCELED = ("StopCanceled", "stop", "The stop was seen cancelled on the exchange.")
    STOP_TRIGGERED = ("StopTriggered", "stop", "The stop triggered and closed the position.")
    TAKE_PROFIT_INTENT = ("TakeProfitIntent", "takeProfit", "A take-profit order is about to be sent.")
    TAKE_PROFIT_TRIGGERED = ("TakeProfitTriggered", "takeProfit", "A take profit triggered (fully or partly).")
    TRAILING_STOP_INTENT = (
        "TrailingStopIntent",
        "trailing",
        "A native trailing stop is about to be sent: an order (TRAILING_STOP_MARKET), or set on the venue position "
        "(Bybit trading-stop).",
        "price: the activation, or a position trailing stop's distance",
    )
    TRAILING_STOP_CLEAR = (
        "TrailingStopClear",
        "trailing",
        "The venue position's trailing stop Warden set is about to be cleared (another Position shares the side, or "
        "this one closes).",
    )
    POSITION_TRAILING_APPLIED = (
        "PositionTrailingApplied",
        "trailing",
        "The venue accepted a position-level trailing stop (set, or cleared with distance 0); the position's next "
        "read confirms it.",
        "price: the distance",
    )
    TRAILING_EMULATED = (
        "TrailingEmulated",
        "trailing",
        "A native trailing stop the venue keeps per position is emulated from now on: another Position shares the "
        "symbol's side (or the venue refused it).",
    )
    TRAILING_ACTIVATED = ("TrailingActivated", "trailing", "The emulated trailing stop's activation price was reached.")
    TRAILING_MOVED = ("TrailingMoved", "trailing", "The emulated trailing stop moved with the high-water mark.")
    TRAILING_STOP_TRIGGERED = (
        "TrailingStopTriggered",
        "trailing",
        "The trailing stop triggered and closed the position.",
    )
    CLOSE_STARTED = ("CloseStarted", "close", "Closing began.", "reason")
    CLOSE_INTENT = ("CloseIntent", "close", "The reduce-only market close is about to be sent.")
    CLOSE_RETRY = ("CloseRetry", "close", "The close was rejected; it is sent again after a back-off.")
    CLOSE_FILLED = ("CloseFilled", "close", "The close order filled.")
    # Drift found by observation
    DRIFT_EXTERNAL_CLOSE = (
        "DriftExternalClose",
        "drift",
        "The position was closed outside Warden (website, liquidation).",
    )
    DRIFT_STOP_MISSING = ("DriftStopMissing", "drift", "Warden's stop is gone; a new one is placed at once.")
    DRIFT_TAKE_PROFIT_MISSING = ("DriftTakeProfitMissing", "drift", "A take profit is gone; it is placed again.")
    DRIFT_ORPHAN_ORDER = (
        "DriftOrphanOrder",
        "drift",
        "A Warden order with no live Position: cancelled, or kept (and reported) while it is the only stop "
        "of an open exchange position.",
        "clientOrderId, symbol, repair",
    )
    DRIFT_UNTRACKED_POSITION = (
        "DriftUntrackedPosition",
        "drift",
        "An exchange position with no Position resource: reported, or adopted per the account's untrackedPositions.",
        "symbol, side, size, repair",
    )
    POSITION_ADOPTED = (
        "PositionAdopted",
        "position",
        "Warden took over an untracked exchange position (spec.adopted).",
    )
    DRIFT_POSITION_VANISHED = (
        "DriftPositionVanished",
        "drift",
        "The exchange position vanished with no trade explaining it.",
    )
    # Errors
    EXCHANGE_ERROR = ("ExchangeError", "error", "An exchange call failed.", "class, code, message, outcome, attempt")
    ESCALATED = ("Escalated", "error", "Protection keeps failing with exposure; a human is needed.")
    # Account and controller
    ACCOUNT_READY = ("AccountReady", "account", "The ExchangeAccount's credentials and exchange answered.")
    ACCOUNT_NOT_READY = ("AccountNotReady", "account", "The ExchangeAccount cannot be used.", "reason")
    CONTROLLER_STARTED = ("ControllerStarted", "controller", "A Warden replica started.", "replica")
    CONTROLLER_STOPPED = (
        "ControllerStopped",
        "controller",
        "A Warden replica stopped (after handing back its Lease).",
        "replica",
    )
    LEADERSHIP_ACQUIRED = ("LeadershipAcquired", "controller", "This replica holds the Lease and may act.", "epoch")
    LEADERSHIP_LOST = ("LeadershipLost", "controller", "This replica stopped acting (lease lost or released).", "epoch")
    # Signals (the receiver; no Position uid: the name is the Position's, or the source's when none)
    SIGNAL_ACCEPTED = (
        "SignalAccepted",
        "signal",
        "A signal created a Position, closed Positions, or (dry run) would have.",
        "source, reason, signal id, action, symbol, side, positions",
    )
    SIGNAL_DUPLICATE = (
        "SignalDuplicate",
        "signal",
        "A signal whose Position exists already (a resend or a replay): nothing was created.",
        "source, reason, signal id, position",
    )
    SIGNAL_REFUSED = (
        "SignalRefused",
        "signal",
        "A signal was refused (wrong token, stale, invalid, unknown symbol, over a limit or the rate); the message "
        "says why.",
        "source, reason, answer code",
    )
    # The audit store itself
    AUDIT_BACKLOG_FLUSHED = (
        "AuditBacklogFlushed",
        "audit",
        "Events buffered in status (an outage, or a crash right after a stop or close was sent) reached the store.",
    )
    AUDIT_BACKLOG_OVERFLOW = (
        "AuditBacklogOverflow",
        "audit",
        "A Position's bounded backlog overflowed; events were counted.",
    )
    AUDIT_UNAVAILABLE = (
        "AuditUnavailable",
        "audit",
        "An entry waits: its intent cannot be committed to the audit store.",
    )
