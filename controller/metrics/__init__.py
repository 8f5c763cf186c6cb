"""Prometheus metrics (prefix ``warden_``; labels are bounded: phases, purposes, error classes)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("warden_reconcile_total", "Position reconcile passes", ["result"])
RECONCILE_SECONDS = Histogram("warden_reconcile_duration_seconds", "Duration of one Position reconcile pass")
ORDERS_PLACED = Counter("warden_orders_placed_total", "Orders sent to an exchange", ["purpose"])
ORDERS_CANCELED = Counter("warden_orders_canceled_total", "Order cancels sent to an exchange", ["purpose"])
EXCHANGE_ERRORS = Counter("warden_exchange_errors_total", "Exchange errors by ccxt class", ["error_class"])
PHASE_TRANSITIONS = Counter("warden_phase_transitions_total", "Position phase transitions", ["phase"])
AUDIT_WRITES = Counter("warden_audit_writes_total", "Audit event batches written", ["result"])
AUDIT_UP = Gauge("warden_audit_up", "1 when the audit store takes writes")
AUDIT_BACKLOG = Gauge("warden_audit_backlog", "Audit events buffered in Position status, waiting for the store")
AUDIT_BACKLOG_OVERFLOW = Counter(
    "warden_audit_backlog_overflow_total", "Audit events that did not fit in a Position's bounded backlog"
)
