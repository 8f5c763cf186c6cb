"""Operating Warden: exactly one acting replica (leader election on a Lease), and the metrics contract."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from devtools.localenv.processes import Service, http_ok
from devtools.localenv.stack import Stack
from tests.chart.metric_names import METRICS
from tests.e2e.conftest import Trader, position_manifest, wait_for


def lease_holder(stack: Stack, name: str = "warden-leader") -> str | None:
    done = stack.kubectl("get", "lease", name, "-n", "default", "-o", "json", check=False)
    if done.returncode != 0:
        return None
    holder: str | None = json.loads(done.stdout)["spec"].get("holderIdentity")
    return holder


def requests_by_replica(trader: Trader) -> list[tuple[int, str | None]]:
    log = trader.stack.paper_admin(f"/_paper/requests?apiKey={trader.account.api_key}")
    assert isinstance(log, list)
    return sorted((r["seq"], r["replica"]) for r in log)


def serving(service: Service) -> bool:
    port = (service.env or {})["WARDEN_HEALTH_PORT"]
    try:
        return http_ok(f"http://127.0.0.1:{port}/healthz")
    except OSError:  # not listening yet
        return False


@contextmanager
def two_replicas(stack: Stack, controller: Service, **env: str) -> Iterator[tuple[Service, Service]]:
    """Two replicas instead of the shared controller: the first holds the lease before the second starts, and
    the second is up (serving its health endpoint, contending for the lease) before they are used."""
    controller.stop()
    lease = env.get("WARDEN_LEASE_NAME", "warden-leader")
    first = stack.start_controller("replica-a", **env)
    wait_for("replica-a to lead", lambda: lease_holder(stack, lease) == "replica-a", 30, first)
    second = stack.start_controller("replica-b", **env)
    wait_for("replica-b to stand by", lambda: serving(second), 60, second)
    try:
        yield first, second
    finally:
        for service in (first, second):
            if service.alive() and service.process is not None:
                service.process.send_signal(signal.SIGCONT)
            service.stop()
        controller.start()


@pytest.fixture
def replicas(stack: Stack, controller: Service) -> Iterator[tuple[Service, Service]]:
    with two_replicas(stack, controller) as pair:
        yield pair


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


async def controller_events(stack: Stack, since: datetime) -> list[tuple[str, str, int | None]]:
    conn = await asyncpg.connect(stack.postgres.url)
    try:
        rows = await conn.fetch(
            # The term a leadership event is about is in its detail (the writer of LeadershipLost has none left).
            "SELECT replica, type, (detail->>'epoch')::int AS epoch FROM events"
            " WHERE position_uid IS NULL AND occurred_at >= $1"
            " AND type IN ('LeadershipAcquired', 'LeadershipLost', 'ControllerStopped') ORDER BY occurred_at",
            since,
        )
    finally:
        await conn.close()
    return [(r["replica"], r["type"], r["epoch"]) for r in rows]


async def test_sigterm_hands_the_lease_to_the_standby(trader: Trader, stack: Stack, controller: Service) -> None:
    lease = f"handover-{uuid.uuid4().hex[:8]}"  # this test's alone
    # A lease that outlasts the test: only a hand-back lets the standby in before the test gives up.
    long_lease = {"WARDEN_LEASE_NAME": lease, "WARDEN_LEASE_DURATION": "600", "WARDEN_LEASE_RENEW_DEADLINE": "10"}
    since = datetime.now(UTC)
    with two_replicas(stack, controller, **long_lease) as (leader, standby):
        # The shared controller may have swept the new account before it stopped: those requests are not this test's.
        began = max((seq for seq, _ in requests_by_replica(trader)), default=0)
        trader.apply(position_manifest("before-handover"))
        trader.wait_phase("before-handover", "Protected", leader)
        assert leader.process is not None
        signalled = time.monotonic()
        leader.process.send_signal(signal.SIGTERM)
        wait_for("the standby to hold the lease", lambda: lease_holder(stack, lease) == "replica-b", 60, standby)
        took = time.monotonic() - signalled
        assert leader.process.wait(60) == 0, leader.tail()
        exited = time.monotonic() - signalled
        # The new leader acts: it closes the old leader's Position, then enters a new one (one after the other:
        # both are the same net position on the exchange).
        close = '{"spec":{"state":"Closed"}}'
        stack.kubectl("patch", "position", "before-handover", "-n", trader.namespace, "--type=merge", "-p", close)
        trader.wait_phase("before-handover", "Closed", standby)
        trader.apply(position_manifest("after-handover"))
        trader.wait_phase("after-handover", "Protected", standby)
    replicas_in_order = [replica for seq, replica in requests_by_replica(trader) if seq > began]
    handover = replicas_in_order.index("replica-b")
    assert set(replicas_in_order[:handover]) == {"replica-a"} and set(replicas_in_order[handover:]) == {"replica-b"}
    events = await controller_events(stack, since)
    a = [(type_, epoch) for replica, type_, epoch in events if replica == "replica-a"]
    b = [(type_, epoch) for replica, type_, epoch in events if replica == "replica-b"]
    # replica-a: acquired epoch 1, released it and said so before it stopped; replica-b: epoch 2 at once.
    assert a == [("LeadershipAcquired", 1), ("LeadershipLost", 1), ("ControllerStopped", None)], events
    assert b[0] == ("LeadershipAcquired", 2), events
    print(f"\nlease held by the standby {took:.1f}s after SIGTERM (exit after {exited:.1f}s); lease duration 600s")


def test_a_replica_restarted_under_its_own_name_takes_its_lease_back_at_once(
    trader: Trader, stack: Stack, controller: Service
) -> None:
    """A pod restarted in place keeps its name: the lease it held is its dead process's, so it needs no wait
    for the lease to expire; it starts a new term (a higher epoch)."""
    lease = f"restart-{uuid.uuid4().hex[:8]}"
    long_lease = {"WARDEN_LEASE_NAME": lease, "WARDEN_LEASE_DURATION": "600", "WARDEN_LEASE_RENEW_DEADLINE": "10"}
    controller.stop()
    first = stack.start_controller("replica-r", **long_lease)
    try:
        wait_for("replica-r to lead", lambda: lease_holder(stack, lease) == "replica-r", 30, first)
        trader.apply(position_manifest("before-restart"))
        trader.wait_phase("before-restart", "Protected", first)
        assert first.process is not None
        first.process.kill()
        first.process.wait(30)
        again = stack.start_controller("replica-r", **long_lease)
        close = '{"spec":{"state":"Closed"}}'
        stack.kubectl("patch", "position", "before-restart", "-n", trader.namespace, "--type=merge", "-p", close)
        trader.wait_phase("before-restart", "Closed", again)  # long before the 600 s lease could expire
        got = stack.kubectl("get", "lease", lease, "-n", "default", "-o", "json")
        spec = json.loads(got.stdout)["spec"]
        assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("replica-r", 2)
    finally:
        for service in stack.controllers:
            if service.name == "replica-r":
                service.stop()
        controller.start()


def test_a_starting_leader_builds_each_account_once_however_many_positions_ask(
    trader: Trader, controller: Service
) -> None:
    """A new leader's Positions all ask for their account at once. One reads it and its Secret and builds the
    exchange clients and the observer; the others wait for that one. (Each used to build its own: markets
    loaded again for every Position, and every extra observer kept reading the account and streaming its events.)"""
    names = [f"resting-{i}" for i in range(5)]
    for name in names:
        trader.apply(position_manifest(name, stop="59000", entry={"type": "limit", "price": "60000"}))
    for name in names:
        trader.wait_phase(name, "EntryPlaced", controller)
    controller.stop()
    since = int(time.time() * 1000)
    controller.start()

    def streams() -> list[dict[str, Any]]:
        sent = trader.requests(since)
        # Once the timed reads run, every Position's daemon has asked for the account (they start together).
        reads = [r for r in sent if r["path"] == "/fapi/v3/positionRisk"]
        return (
            [r for r in sent if r["path"] == "/fapi/v1/listenKey" and r["method"] == "POST"] if len(reads) > 3 else []
        )

    opened = wait_for("the restarted controller to observe the account", streams, 60, controller)
    sent = trader.requests(since)
    assert len(opened) == 1, f"{len(opened)} user-data streams opened for one account"
    loads = [r for r in sent if r["path"] == "/fapi/v1/exchangeInfo"]
    assert len(loads) <= 2, f"markets loaded {len(loads)} times: one exchange client and one stream client"
    for name in names:
        trader.patch_spec(name, {"state": "Closed"})
    for name in names:
        trader.wait_phase(name, "Closed", controller)


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
