"""The settings: read once from the environment, refused with a clear message when unusable, secrets hidden, and
the README's table generated from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.settings import LeaseSettings, Settings, SettingsError, SignalsSettings, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"
DSN = "postgresql://warden:hunter2@db:5432/warden"


def test_defaults_without_any_variable() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.observation.weight_per_minute == 360
    assert settings.observation.user_stream is True
    assert settings.lease.election is True
    assert settings.scope.namespace is None
    assert (settings.signals.addr, settings.signals.tls_cert) == ("127.0.0.1", None)  # loopback, plain HTTP
    with pytest.raises(SettingsError, match="WARDEN_DATABASE_URL is required"):
        settings.audit.dsn()


def test_every_variable_is_read() -> None:
    env = {
        "WARDEN_DATABASE_URL": DSN,
        "WARDEN_METRICS_ADDR": "0.0.0.0",
        "WARDEN_METRICS_PORT": "9000",
        "WARDEN_HEALTH_ADDR": "0.0.0.0",
        "WARDEN_HEALTH_PORT": "8081",
        "WARDEN_NAMESPACE": "desk",
        "WARDEN_REPLICA_ID": "replica-a",
        "WARDEN_POD_NAME": "warden-0",
        "WARDEN_LEADER_ELECTION": "false",
        "WARDEN_LEASE_NAME": "lease",
        "WARDEN_LEASE_NAMESPACE": "warden-system",
        "WARDEN_LEASE_DURATION": "30",
        "WARDEN_LEASE_RENEW_DEADLINE": "20",
        "WARDEN_LEASE_RETRY": "0.5",
        "WARDEN_RECONCILE_INTERVAL": "0.25",
        "WARDEN_IDLE_RECHECK": "60",
        "WARDEN_USER_STREAM": "FALSE",
        "WARDEN_OBSERVE_WEIGHT_PER_MINUTE": "120",
        "WARDEN_SWEEP_INTERVAL": "3",
        "WARDEN_FAILPOINTS": "entry:after-send@2",
        "WARDEN_SIGNALS_ADDR": "0.0.0.0",
        "WARDEN_SIGNALS_PORT": "443",
        "WARDEN_SIGNALS_METRICS_PORT": "9466",
        "WARDEN_SIGNALS_TLS_CERT": "/tls/tls.crt",
        "WARDEN_SIGNALS_TLS_KEY": "/tls/tls.key",
        "WARDEN_SIGNALS_CLIENT_CA": "/tls/client-ca.crt",
        "WARDEN_SIGNALS_CLIENT_CN": "Someone Else",
        "WARDEN_SIGNALS_SOURCE_CACHE": "5",
        "WARDEN_SIGNALS_STATUS_INTERVAL": "2",
    }
    s = Settings.from_env(env)
    assert s.audit.dsn() == DSN
    assert (s.serving.metrics_addr, s.serving.metrics_port, s.serving.health_addr, s.serving.health_port) == (
        "0.0.0.0",
        9000,
        "0.0.0.0",
        8081,
    )
    assert (s.scope.namespace, s.scope.replica) == ("desk", "replica-a")
    assert s.lease == LeaseSettings(False, "lease", "warden-system", 30.0, 20.0, 0.5)
    assert (s.observation.interval_s, s.observation.idle_recheck_s, s.observation.user_stream) == (0.25, 60.0, False)
    assert (s.observation.weight_per_minute, s.observation.sweep_interval_s) == (120, 3.0)
    assert s.testing.failpoints == "entry:after-send@2"
    assert s.signals == SignalsSettings(
        "0.0.0.0", 443, 9466, "/tls/tls.crt", "/tls/tls.key", "/tls/client-ca.crt", "Someone Else", 5.0, 2.0
    )
    assert Settings.unknown(env) == []


def test_the_replica_falls_back_to_the_pod_then_to_host_and_pid() -> None:
    assert Settings.from_env({"WARDEN_POD_NAME": "warden-1"}).scope.replica == "warden-1"
    assert re.fullmatch(r".+-\d+", Settings.from_env({}).scope.replica)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WARDEN_IDLE_RECHECK", "abc", "WARDEN_IDLE_RECHECK must be a number of seconds > 0, got 'abc'"),
        ("WARDEN_SWEEP_INTERVAL", "0", "WARDEN_SWEEP_INTERVAL must be a number of seconds > 0, got '0'"),
        ("WARDEN_METRICS_PORT", "9464.5", "WARDEN_METRICS_PORT must be a whole number > 0, got '9464.5'"),
        ("WARDEN_OBSERVE_WEIGHT_PER_MINUTE", "-1", "must be a whole number > 0, got '-1'"),
        ("WARDEN_USER_STREAM", "no", "WARDEN_USER_STREAM must be true or false, got 'no'"),
        ("WARDEN_LEASE_RETRY", "12", "0 < retry < renew deadline < duration"),
        ("WARDEN_SIGNALS_TLS_CERT", "/tls/tls.crt", "set both the TLS certificate and its key, or neither"),
        ("WARDEN_SIGNALS_CLIENT_CA", "/tls/ca.crt", "client certificates are verified only over TLS"),
    ],
)
def test_an_unusable_value_is_refused_by_name(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({name: value})


def test_a_misspelt_variable_is_found() -> None:
    assert Settings.unknown({"WARDEN_IDLE_RECHEK": "5", "WARDEN_NAMESPACE": "x", "HOME": "/root"}) == [
        "WARDEN_IDLE_RECHEK"
    ]


def test_what_make_up_writes_for_tools_is_not_called_misspelt() -> None:
    source = (Path(__file__).resolve().parents[2] / "devtools" / "localenv" / "__main__.py").read_text()
    written = set(re.findall(r'"(WARDEN_[A-Z_]+)":', source))
    assert "WARDEN_PAPER_URL" in written and "WARDEN_DATABASE_URL" in written
    assert Settings.unknown(dict.fromkeys(written, "x")) == []
    assert Settings.unknown({"WARDEN_PAPER_URLL": "x"}) == ["WARDEN_PAPER_URLL"]


def test_the_dsn_is_never_shown() -> None:
    settings = Settings.from_env({"WARDEN_DATABASE_URL": DSN})
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.audit)


def test_readme_table_is_generated_from_the_settings() -> None:
    text = README.read_text()
    found = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", text, re.S)
    assert found, "README.md has no settings table"
    assert found.group(1) == markdown_table(), "regenerate it: python -m controller.settings"
