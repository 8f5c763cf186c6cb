"""Every knob of the operator, in one place: ``Settings.from_env`` reads the ``WARDEN_*`` variables once, at start,
and the command line hands the result to what needs it; no other module reads the environment.

Each field names its variable, its unit and why its default is what it is; the README's table of settings is
generated from these declarations (``python -m controller.settings``), and a test fails when the two differ.
"""

from __future__ import annotations

import os
import socket
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self, TypeVar, Union, get_args, get_origin, get_type_hints

_T = TypeVar("_T")
PREFIX = "WARDEN_"


def knob(env: str, default: _T, doc: str, *, secret: bool = False) -> _T:
    """A field read from ``env``; ``doc`` is its line in the README (unit, and why the default)."""
    value: _T = field(default=default, metadata={"env": env, "doc": doc, "secret": secret}, repr=not secret)
    return value


LOCAL_ENV_FOR_TOOLS = frozenset(
    {
        "WARDEN_PAPER_URL",
        "WARDEN_METRICS_URL",
        "WARDEN_PAPER_API_KEY",
        "WARDEN_PAPER_API_SECRET",
        "WARDEN_PAPER_BYBIT_API_KEY",
        "WARDEN_PAPER_BYBIT_API_SECRET",
        "WARDEN_SIGNALS_URL",
    }
)
"""What `make up` writes to `.local/env` for people and tools (curl, kubectl, the tests), not for the controller: a
controller started from a shell that sourced it does not call them misspelt."""


class SettingsError(ValueError):
    """A variable whose value the operator cannot use: it refuses to start rather than guess."""


@dataclass(frozen=True)
class AuditSettings:
    database_url: str = knob(
        "WARDEN_DATABASE_URL",
        "",
        "PostgreSQL DSN of the audit store (required by `run`, `migrate`, `history`); from a Secret, never logged",
        secret=True,
    )

    def dsn(self) -> str:
        if not self.database_url:
            raise SettingsError("WARDEN_DATABASE_URL is required (the audit store)")
        return self.database_url


@dataclass(frozen=True)
class ServingSettings:
    metrics_addr: str = knob("WARDEN_METRICS_ADDR", "127.0.0.1", "address of the Prometheus metrics endpoint")
    metrics_port: int = knob("WARDEN_METRICS_PORT", 9464, "port of the metrics endpoint")
    health_addr: str = knob("WARDEN_HEALTH_ADDR", "127.0.0.1", "address of `/healthz` and `/readyz`")
    health_port: int = knob("WARDEN_HEALTH_PORT", 8080, "port of `/healthz` and `/readyz`")


@dataclass(frozen=True)
class ScopeSettings:
    namespace: str | None = knob(
        "WARDEN_NAMESPACE", None, "watch only this namespace (namespaced RBAC, no ClusterRole); unset: all namespaces"
    )
    replica_id: str | None = knob(
        "WARDEN_REPLICA_ID", None, "this process's name in leases, audit rows and requests; unset: the pod's name"
    )
    pod_name: str | None = knob(
        "WARDEN_POD_NAME", None, "set by the chart from the downward API; unset too: host name and pid"
    )

    @property
    def replica(self) -> str:
        """Unique per process: two replicas must never share a name in the Lease or the venue's logs."""
        return self.replica_id or self.pod_name or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class LeaseSettings:
    election: bool = knob(
        "WARDEN_LEADER_ELECTION", True, "`false` runs without leader election: for one replica only (`make run`)"
    )
    name: str = knob("WARDEN_LEASE_NAME", "warden-leader", "the Lease the replicas elect a leader on")
    namespace: str = knob("WARDEN_LEASE_NAMESPACE", "default", "the Lease's namespace (the chart: its own)")
    duration_s: float = knob(
        "WARDEN_LEASE_DURATION", 15.0, "seconds a leader that stopped renewing keeps the Lease (a crash's takeover)"
    )
    renew_deadline_s: float = knob(
        "WARDEN_LEASE_RENEW_DEADLINE", 10.0, "seconds a leader may fail to renew before it stops acting (fencing)"
    )
    retry_s: float = knob(
        "WARDEN_LEASE_RETRY", 2.0, "seconds between renewals, and a standby's tries (a handed-back Lease's takeover)"
    )

    def __post_init__(self) -> None:
        if not 0 < self.retry_s < self.renew_deadline_s < self.duration_s:
            raise SettingsError("lease timings must satisfy 0 < retry < renew deadline < duration")


@dataclass(frozen=True)
class ObservationSettings:
    interval_s: float = knob(
        "WARDEN_RECONCILE_INTERVAL",
        1.0,
        "seconds between looks while something is under way; the floor of an account's observation cycle",
    )
    idle_recheck_s: float = knob(
        "WARDEN_IDLE_RECHECK", 30.0, "seconds a settled Position waits for a wake before it re-checks (a safety net)"
    )
    user_stream: bool = knob(
        "WARDEN_USER_STREAM", True, "`false`: no user-data stream; resting entries are peeked at instead"
    )
    weight_per_minute: int = knob(
        "WARDEN_OBSERVE_WEIGHT_PER_MINUTE",
        360,
        "request weight an account's timed reads may spend a minute: with the sweep and the readiness check under "
        "600, a quarter of Binance's 2,400",
    )
    stream_keepalive_s: float = knob(
        "WARDEN_STREAM_KEEPALIVE",
        10.0,
        "seconds between pings on the user-data stream: it counts as alive while a pong or a push came within 1.5 "
        "of them (ccxt drops it after two missed pongs)",
    )
    safety_weight_per_minute: int = knob(
        "WARDEN_SAFETY_READ_WEIGHT_PER_MINUTE",
        24,
        "request weight an account's timed reads spend a minute while its stream is alive and no Position follows "
        "the mark: the reads are a safety net then, the pushes say what changed",
    )
    sweep_streaming_interval_s: float = knob(
        "WARDEN_SWEEP_STREAMING_INTERVAL",
        300.0,
        "seconds between an account's sweeps while its stream is alive, unless a push shows an order or a position "
        "no Position watches (then the next sweep runs)",
    )
    sweep_interval_s: float = knob(
        "WARDEN_SWEEP_INTERVAL", 30.0, "seconds between an account's sweeps for orphan orders and untracked positions"
    )
    pnl_refresh_s: float = knob(
        "WARDEN_PNL_REFRESH",
        15.0,
        "seconds between refreshes of an open Position's `status.unrealizedPnl`, each only when it moved by more "
        "than a tick's worth",
    )
    pnl_writes_per_s: float = knob(
        "WARDEN_PNL_WRITES_PER_SECOND",
        5.0,
        "Positions a second, for the whole controller, that may write a refreshed unrealized PnL: up to 75 moving "
        "Positions refresh every 15 s; 1,000 about every 200 s, for 5 status writes a second",
    )


@dataclass(frozen=True)
class SignalsSettings:
    """The signal receiver (``python -m controller.signals``), a process of its own."""

    addr: str = knob("WARDEN_SIGNALS_ADDR", "127.0.0.1", "address the signal receiver listens on")
    port: int = knob(
        "WARDEN_SIGNALS_PORT", 8443, "port of the signal receiver (`POST /v1/signals/{namespace}/{source}`)"
    )
    metrics_port: int = knob(
        "WARDEN_SIGNALS_METRICS_PORT", 9465, "port of the receiver's metrics (at `WARDEN_METRICS_ADDR`), not public"
    )
    tls_cert: str | None = knob(
        "WARDEN_SIGNALS_TLS_CERT", None, "PEM certificate (chain) file: with the key, the receiver serves HTTPS"
    )
    tls_key: str | None = knob("WARDEN_SIGNALS_TLS_KEY", None, "PEM private key file of that certificate")
    client_ca: str | None = knob(
        "WARDEN_SIGNALS_CLIENT_CA",
        None,
        "PEM CA bundle: with TLS, only clients presenting a certificate it signed get an answer (TradingView's)",
    )
    client_cn: str = knob(
        "WARDEN_SIGNALS_CLIENT_CN",
        "TradingView Webhooks",
        "with `WARDEN_SIGNALS_CLIENT_CA`: the common name the client certificate must carry",
    )
    source_cache_s: float = knob(
        "WARDEN_SIGNALS_SOURCE_CACHE",
        2.0,
        "seconds a SignalSource and its token are reused before they are read again (a flood costs no API calls; "
        "a rotated token takes effect within this)",
    )
    status_interval_s: float = knob(
        "WARDEN_SIGNALS_STATUS_INTERVAL", 1.0, "seconds between writes of a SignalSource's counts to its status"
    )

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("set both the TLS certificate and its key, or neither")
        if self.client_ca is not None and self.tls_cert is None:
            raise SettingsError("client certificates are verified only over TLS: set the certificate and key")


@dataclass(frozen=True)
class TestingSettings:
    failpoints: str = knob(
        "WARDEN_FAILPOINTS",
        "",
        "tests only: `name[@N],…` crash points that SIGKILL the process (the chaos suite); `name~S` holds there S s",
    )


@dataclass(frozen=True)
class Settings:
    audit: AuditSettings = field(default_factory=AuditSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    scope: ScopeSettings = field(default_factory=ScopeSettings)
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    observation: ObservationSettings = field(default_factory=ObservationSettings)
    signals: SignalsSettings = field(default_factory=SignalsSettings)
    testing: TestingSettings = field(default_factory=TestingSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        groups: dict[str, Any] = {f.name: _read_group(_group_type(cls, f.name), env) for f in fields(cls)}
        return cls(**groups)

    @classmethod
    def unknown(cls, environ: Mapping[str, str]) -> list[str]:
        """``WARDEN_*`` variables no setting reads: most likely a misspelt one, whose default is in force."""
        known = {env for _, _, env, _ in _knobs(cls)} | LOCAL_ENV_FOR_TOOLS
        return sorted(name for name in environ if name.startswith(PREFIX) and name not in known)


def _group_type(owner: type, name: str) -> type:
    group = get_type_hints(owner)[name]
    assert isinstance(group, type)
    return group


def _knobs(settings: type[Settings]) -> list[tuple[type, Any, str, str]]:
    """(group, field, variable, doc) for every knob, in declaration order."""
    found = []
    for outer in fields(settings):
        group = _group_type(settings, outer.name)
        for inner in fields(group):
            found.append((group, inner, inner.metadata["env"], inner.metadata["doc"]))
    return found


def _read_group(group: type[Any], env: Mapping[str, str]) -> Any:
    hints = get_type_hints(group)
    values = {
        f.name: _parse(f.metadata["env"], env[f.metadata["env"]], hints[f.name])
        for f in fields(group)
        if f.metadata["env"] in env
    }
    try:
        return group(**values)
    except SettingsError as error:
        raise SettingsError(f"{error} (from {', '.join(f.metadata['env'] for f in fields(group))})") from None


def _parse(env: str, raw: str, kind: Any) -> Any:
    optional = get_origin(kind) in (Union, types.UnionType) and type(None) in get_args(kind)
    if optional:
        return raw or None
    if kind is bool:
        if raw.lower() not in ("true", "false"):
            raise SettingsError(f"{env} must be true or false, got {raw!r}")
        return raw.lower() == "true"
    if kind is int or kind is float:
        unit = "a whole number" if kind is int else "a number of seconds"
        try:
            number = kind(raw)
        except ValueError:
            raise SettingsError(f"{env} must be {unit} > 0, got {raw!r}") from None
        if not number > 0:
            raise SettingsError(f"{env} must be {unit} > 0, got {raw!r}")
        return number
    return raw


def markdown_table() -> str:
    """The README's table of settings."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for _, knob_field, env, doc in _knobs(Settings):
        default = knob_field.default
        shown = "unset" if default in (None, "") else str(default).lower() if isinstance(default, bool) else default
        rows.append(f"| `{env}` | {shown if shown == 'unset' else f'`{shown}`'} | {doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
