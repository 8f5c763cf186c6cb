"""Operating Warden: exactly one acting replica (leader election on a Lease), and the metrics contract."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from controller.localenv.processes import Service
from controller.localenv.stack import Stack
from tests.chart.metric_names import METRICS
from tests.e2e.conftest import Trader, position_manifest, wait_for


def lease_holder(stack: Stack) -> str | None:
    done = stack.kubectl("get", "lease", "warden-leader", "-n", "default", "-o", "json", check=False)
    if done.returncode != 0:
        return None
    holder: str | None = json.loads(done.stdout)["spec"].get("holderIdentity")
    return holder


def requests_by_replica(trader: Trader) -> list[tuple[int, str | None]]:
    log = trader.stack.paper_admin(f"/_paper/requests?apiKey={trader.account.api_key}")
    assert isinstance(log, list)
    return sorted((r["seq"], r["replica"]) for r in log)


@pytest.fixture
def replicas(stack: Stack, controller: Service) -> Iterator[tuple[Service, Service]]:
    """Two replicas instead of the shared controller: the first holds the lease before the second starts."""
    controller.stop()
    first = stack.start_controller("replica-a")
    wait_for("replica-a to lead", lambda: lease_holder(stack) == "replica-a", 30, first)
    second = stack.start_controller("replica-b")
    try:
        yield first, second
    finally:
        for service in (first, second):
            if service.alive() and service.process is not None:
                service.process.send_signal(signal.SIGCONT)
            service.stop()
        controller.start()


def test_standby_takes_over_when_the_leader_dies(replicas: tuple[Service, Service], trader: Trader) -> None:
    leader, standby = replicas
    trader.apply(position_manifest("failover"))
    trader.wait_phase("failover", "Protected", leader)
    assert leader.process is not None
    leader.process.kill()  # SIGKILL mid-lifecycle: no clean hand-over
    trader.stack.kubectl(
        "patch", "position", "failover", "-n", trader.namespace, "--type=merge", "-p", '{"spec":{"state":"Closed"}}'
    )
    trader.wait_phase("failover", "Closed", standby, timeout=30)
    assert lease_holder(trader.stack) == "replica-b"
    replicas_in_order = [replica for _, replica in requests_by_replica(trader)]
    assert set(replicas_in_order) == {"replica-a", "replica-b"}
    handover = replicas_in_order.index("replica-b")
    assert set(replicas_in_order[handover:]) == {"replica-b"}, "the dead leader's term ended before the next began"


def test_paused_leader_sends_nothing_after_its_lease_expired(trader: Trader, replicas: tuple[Service, Service]) -> None:
    leader, standby = replicas
    trader.apply(position_manifest("paused-leader"))
    trader.wait_phase("paused-leader", "Protected", leader)
    assert leader.process is not None
    leader.process.send_signal(signal.SIGSTOP)
    wait_for("the standby to take the lease", lambda: lease_holder(trader.stack) == "replica-b", 30, standby)
    trader.stack.kubectl(
        "patch",
        "position",
        "paused-leader",
        "-n",
        trader.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"stopLoss":{"price":"63500"}}}',
    )
    moved = wait_for(
        "the new leader to move the stop",
        lambda: (
            (s := trader.status("paused-leader")).get("stopOrder", {}).get("triggerPrice") == "63500"
            and s["stopOrder"]["state"] == "Open"
        ),
        30,
        standby,
    )
    assert moved
    first_of_b = next(seq for seq, replica in requests_by_replica(trader) if replica == "replica-b")
    leader.process.send_signal(signal.SIGCONT)
    time.sleep(3)  # the old leader runs again: its fence must hold
    late = [seq for seq, replica in requests_by_replica(trader) if replica == "replica-a" and seq > first_of_b]
    assert late == [], f"the paused leader sent {len(late)} requests after losing its lease"
    assert leader.alive()
    assert lease_holder(trader.stack) == "replica-b"


def _metric_families(service: Service) -> dict[str, str]:
    port = (service.env or {})["WARDEN_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            families[name] = kind
    return families


def test_every_metric_the_chart_queries_is_exported(trader: Trader, controller: Service) -> None:
    trader.apply(position_manifest("measured"))
    trader.wait_phase("measured", "Protected", controller)
    families = _metric_families(controller)
    for name, (kind, _labels) in METRICS.items():
        assert families.get(name) == kind, f"{name}: exported as {families.get(name)}"
    health = (controller.env or {})["WARDEN_HEALTH_PORT"]
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(f"http://127.0.0.1:{health}{path}", timeout=5) as response:
            body: dict[str, Any] = json.loads(response.read())
            assert response.status == 200, body
    assert body["leader"] is True and body["epoch"] >= 1
