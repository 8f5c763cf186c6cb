"""Prometheus metrics (prefix ``warden_``). Labels are bounded: accounts, phases, purposes, error classes —
never a Position's name. The list is the contract with the chart's alerts and dashboard
(``tests/chart/metric_names.py``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POSITIONS = Gauge("warden_positions", "Positions by account and phase", ["account", "phase"])
UNPROTECTED = Gauge("warden_unprotected_positions", "Filled Positions without a covering stop", ["account"])
UNPROTECTED_SECONDS = Gauge(
    "warden_unprotected_seconds", "How long the oldest unprotected exposure has been unprotected", ["account"]
)
FILL_TO_PROTECT = Histogram(
    "warden_fill_to_protect_seconds",
    "From an entry fill seen to its stop resting",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
RECONCILES = Counter("warden_reconcile_total", "Position reconcile passes", ["result"])
RECONCILE_SECONDS = Histogram("warden_reconcile_duration_seconds", "Duration of one Position reconcile pass")
EXCHANGE_REQUESTS = Counter("warden_exchange_requests_total", "Exchange HTTP requests", ["account", "result"])
EXCHANGE_ERRORS = Counter("warden_exchange_errors_total", "Exchange errors by ccxt class", ["account", "error_class"])
WEIGHT_USED = Gauge("warden_exchange_weight_used", "Request weight used this minute, as the exchange says", ["account"])
WEIGHT_BUDGET = Gauge("warden_exchange_weight_budget", "Request weight allowed per minute", ["account"])
ORDERS_PLACED = Counter("warden_orders_placed_total", "Orders sent to an exchange", ["purpose"])
ORDERS_CANCELED = Counter("warden_orders_canceled_total", "Order cancels sent to an exchange", ["purpose"])
DRIFT = Counter("warden_drift_detected_total", "Differences found by observation", ["kind"])
RISK_REFUSALS = Counter("warden_risk_refusals_total", "Entries refused by an account limit", ["limit"])
CLOSE_FAILURES = Counter("warden_close_failures_total", "Failed close attempts", ["account"])
PHASE_AGE = Gauge(
    "warden_position_phase_age_max_seconds", "Age of the oldest Position in each non-terminal phase", ["phase"]
)
PHASE_TRANSITIONS = Counter("warden_phase_transitions_total", "Position phase transitions", ["phase"])
AUDIT_WRITES = Counter("warden_audit_writes_total", "Audit write batches", ["result"])
AUDIT_UP = Gauge("warden_audit_up", "1 when the audit store takes writes")
AUDIT_BACKLOG = Gauge("warden_audit_backlog", "Audit records buffered in Position status, waiting for the store")
AUDIT_BACKLOG_OVERFLOW = Counter(
    "warden_audit_backlog_overflow_total", "Audit records that did not fit in a Position's bounded backlog"
)
LEADER = Gauge("warden_leader", "1 while this replica holds the leader lease")
LEASE_TRANSITIONS = Counter("warden_lease_transitions_total", "Times this replica acquired the leader lease")
OBSERVATION_AGE = Gauge("warden_observation_age_seconds", "Time since the account was last observed", ["account"])
PNL_TODAY = Gauge("warden_realized_pnl_today", "Realized PnL (net of fees) of Positions closed today, UTC", ["account"])
UNREALIZED_PNL = Gauge(
    "warden_unrealized_pnl",
    "Unrealized PnL (net of fees paid) of the account's open Positions, as last valued in their status; per account, "
    "not per Position (cardinality)",
    ["account"],
)
LOSS_LIMIT_REACHED = Gauge("warden_daily_loss_limit_reached", "1 when today's loss reached dailyLossLimit", ["account"])
SIGNALS = Counter(
    "warden_signals_total",
    "Signals the receiver answered, by source (empty when unknown), outcome and reason",
    ["namespace", "source", "outcome", "reason"],
)
