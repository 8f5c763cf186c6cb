"""The Prometheus metrics Warden exports: the contract between controller/metrics, the chart's alerts
(charts/warden/files/alerts.yaml) and its Grafana dashboard (charts/warden/files/dashboard.json).

The chart tests check that alerts and dashboard query only these names; a controller test can check the same
list against a real ``/metrics`` page: ``queryable_names()`` are the series names prometheus_client writes
there, less the ``_created`` companions of counters and histograms.
"""

from __future__ import annotations

# name -> (type, label names). Counters are named as queried, with their ``_total`` suffix.
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "warden_positions": ("gauge", ("account", "phase")),
    "warden_unprotected_positions": ("gauge", ("account",)),
    "warden_unprotected_seconds": ("gauge", ("account",)),
    "warden_fill_to_protect_seconds": ("histogram", ()),
    "warden_reconcile_total": ("counter", ("result",)),
    "warden_reconcile_duration_seconds": ("histogram", ()),
    "warden_exchange_requests_total": ("counter", ("account", "result")),
    "warden_exchange_errors_total": ("counter", ("account", "error_class")),
    "warden_exchange_weight_used": ("gauge", ("account",)),
    "warden_exchange_weight_budget": ("gauge", ("account",)),
    "warden_orders_placed_total": ("counter", ("purpose",)),
    "warden_orders_canceled_total": ("counter", ("purpose",)),
    "warden_drift_detected_total": ("counter", ("kind",)),
    "warden_risk_refusals_total": ("counter", ("limit",)),
    "warden_close_failures_total": ("counter", ("account",)),
    "warden_position_phase_age_max_seconds": ("gauge", ("phase",)),
    "warden_audit_writes_total": ("counter", ("result",)),
    "warden_audit_up": ("gauge", ()),
    "warden_audit_backlog": ("gauge", ()),
    "warden_audit_backlog_overflow_total": ("counter", ()),
    "warden_leader": ("gauge", ()),
    "warden_lease_transitions_total": ("counter", ()),
    "warden_observation_age_seconds": ("gauge", ("account",)),
    "warden_realized_pnl_today": ("gauge", ("account",)),
    "warden_unrealized_pnl": ("gauge", ("account",)),
    "warden_daily_loss_limit_reached": ("gauge", ("account",)),
    "warden_signals_total": ("counter", ("namespace", "source", "outcome", "reason")),
}

METRIC_NAMES: tuple[str, ...] = tuple(METRICS)

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def queryable_names() -> set[str]:
    """Every series name a PromQL expression may use: gauges and counters as listed, histograms' parts."""
    names: set[str] = set()
    for name, (kind, _) in METRICS.items():
        if kind == "histogram":
            names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
        else:
            names.add(name)
    return names
