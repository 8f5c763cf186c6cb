"""Least privilege, proven: the whole lifecycle runs as the chart's ServiceAccount, authenticated with a token
from ``kubectl create token``, and the API server's own audit log shows it was never refused (no 403)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devtools.localenv.processes import Service
from devtools.localenv.stack import PaperAccount, Stack
from tests.chart.conftest import helm_template, manifests
from tests.e2e.conftest import Trader, position_manifest, wait_for
from tests.e2e.signals import Sender

RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
# The Deployment's settings that mean the same outside a pod (addresses and ports stay on 127.0.0.1).
DEPLOYMENT_ENV = ("WARDEN_LEASE_NAME", "WARDEN_NAMESPACE")


@dataclass
class Install:
    """The chart's RBAC objects applied to the API server, and how its Deployment would run the controller."""

    namespace: str
    service_account: str
    env: dict[str, str]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def install_rbac(stack: Stack, *sets: str, container: str = "controller") -> Install:
    """``helm template`` with these values; apply only the RBAC objects (there is no kubelet to run pods). The
    Install is of the Deployment whose container is ``container``."""
    suffix = uuid.uuid4().hex[:8]
    namespace = f"warden-{suffix}"
    stack.kubectl("create", "namespace", namespace)
    # A release name of its own: ClusterRoles and their bindings are cluster-scoped.
    objects = manifests(helm_template(*sets, namespace=namespace, release=f"w{suffix}"))
    rbac = [o for o in objects if o["kind"] in RBAC_KINDS]
    stack.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}))
    pods = [o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment"]
    pod = next(p for p in pods if p["containers"][0]["name"] == container)
    env: dict[str, str] = {}
    for item in pod["containers"][0]["env"]:
        if item["name"] in DEPLOYMENT_ENV:
            env[item["name"]] = item["value"]
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = namespace  # the downward API: the pod's namespace is the release namespace
    return Install(namespace, pod["serviceAccountName"], env)


def token_kubeconfig(stack: Stack, install: Install, name: str) -> str:
    """A kubeconfig holding only the ServiceAccount's token: no client certificate."""
    token = stack.kubectl(
        "create", "token", install.service_account, "-n", install.namespace, "--duration=1h"
    ).stdout.strip()
    kubeconfig = stack.control_plane.token_kubeconfig(stack.workdir / f"{name}.kubeconfig", token, install.namespace)
    assert "client-certificate" not in kubeconfig.read_text()
    return str(kubeconfig)


def start_as(stack: Stack, install: Install, name: str) -> Service:
    """The controller as the ServiceAccount."""
    return stack.start_controller(name, KUBECONFIG=token_kubeconfig(stack, install, name), **install.env)


def audit_entries(stack: Stack, user: str) -> list[dict[str, Any]]:
    """The API server's audit log entries for one user (complete lines only: the server keeps writing)."""
    lines = stack.control_plane.audit_log.read_text().split("\n")[:-1]
    return [e for e in map(json.loads, lines) if e["user"]["username"] == user]


@pytest.fixture
def alone(stack: Stack) -> Iterator[None]:
    """Only the controller under test acts: any running one (cluster-wide, another Lease) stops meanwhile."""
    running = [service for service in stack.controllers if service.alive()]
    for service in running:
        service.stop()
    yield
    for service in running:
        service.start()


def paper_orders(trader: Trader, account: PaperAccount) -> list[dict[str, Any]]:
    orders = trader.stack.paper_admin(f"/_paper/orders?apiKey={account.api_key}")
    assert isinstance(orders, list)
    return orders


def run_lifecycle(trader: Trader, service: Service, account: PaperAccount, account_name: str) -> list[dict[str, Any]]:
    """A market entry with a take profit → Protected with both resting → ``spec.state: Closed`` → Closed; then a
    second Position (deletionPolicy Close) deleted while Protected is closed on the exchange before it goes.
    Returns every Position object as it was seen along the way, status included."""
    ref = {"name": account_name}
    seen: list[dict[str, Any]] = []

    def snapshot(name: str) -> None:
        obj = trader.position(name)
        assert obj is not None
        seen.append(obj)

    trader.apply(position_manifest("entry", accountRef=ref, takeProfit=[{"price": "70000", "portion": "0.5"}]))
    status = trader.wait_phase("entry", "Protected", service, timeout=90)
    resting = {
        o["clientOrderId"] for o in paper_orders(trader, account) if o["kind"] == "algo" and o["status"] == "NEW"
    }
    assert status["stopOrder"]["clientOrderId"] in resting, (status, resting)
    assert wait_for(
        "the take profit to rest",
        lambda: any(r["state"] == "Open" for r in trader.status("entry").get("takeProfitOrders", [])),
        60,
        service,
    )
    snapshot("entry")
    trader.stack.kubectl(
        "patch", "position", "entry", "-n", trader.namespace, "--type=merge", "-p", '{"spec":{"state":"Closed"}}'
    )
    assert trader.wait_phase("entry", "Closed", service, timeout=90)["exitReason"] == "Requested"
    snapshot("entry")

    trader.apply(position_manifest("doomed", accountRef=ref, deletionPolicy="Close"))
    trader.wait_phase("doomed", "Protected", service, timeout=90)
    snapshot("doomed")
    trader.stack.kubectl("delete", "position", "doomed", "-n", trader.namespace, "--wait=false")
    wait_for("the deleted Position to be gone", lambda: trader.position("doomed") is None, 90, service)
    assert trader.stack.paper_admin(f"/_paper/positions?apiKey={account.api_key}") == []
    return seen


INSTALLS = [
    pytest.param(("watchNamespace={namespace}",), id="namespaced"),
    pytest.param((), id="cluster-wide"),
]


@pytest.mark.parametrize("values", INSTALLS)
def test_lifecycle_as_the_charts_service_account_is_never_refused(
    trader: Trader, alone: None, values: tuple[str, ...]
) -> None:
    stack = trader.stack
    install = install_rbac(stack, *(v.format(namespace=trader.namespace) for v in values))
    service = start_as(stack, install, f"sa-{install.namespace}")
    try:
        run_lifecycle(trader, service, trader.account, "paper")
    finally:
        # SIGTERM: the Lease is handed back with the same credentials. Cluster-wide it may see every test's
        # account, and closing their clients takes a while.
        service.stop(timeout=60)
    assert service.process is not None and service.process.returncode == 0, service.tail()
    lease = json.loads(stack.kubectl("get", "lease", "-n", install.namespace, "-o", "json").stdout)["items"]
    assert [item["spec"].get("holderIdentity") for item in lease] == [None], "handed back on SIGTERM"

    resources = never_refused(stack, install)
    # Evidence that the filter matches the controller at all: it patched the Positions and renewed the Lease.
    assert resources["patch positions"] > 0 and resources["update leases"] > 0, resources


def never_refused(stack: Stack, install: Install) -> Counter[str]:
    """The ServiceAccount's requests by verb and resource; none was forbidden (403)."""
    entries = audit_entries(stack, install.user)
    done = [e for e in entries if e["stage"] == "ResponseComplete"]
    resources = Counter(f"{e['verb']} {e.get('objectRef', {}).get('resource', e['requestURI'])}" for e in done)
    refused = [(e["verb"], e["requestURI"]) for e in entries if e.get("responseStatus", {}).get("code") == 403]
    assert refused == [], f"{len(refused)} of {len(done)} requests were forbidden: {refused}"
    print(f"\n{install.user}: {len(done)} requests, none forbidden: {dict(resources.most_common())}")
    return resources


@pytest.mark.parametrize("values", INSTALLS)
def test_signals_as_the_receivers_service_account_are_never_refused(
    trader: Trader, controller: Service, values: tuple[str, ...]
) -> None:
    """Open, resend, close, a refusal, a notional limit checked at the venue's price, the source's status: all as
    the receiver's own ServiceAccount from the chart."""
    stack = trader.stack
    sets = ("signals.enabled=true", *(v.format(namespace=trader.namespace) for v in values))
    install = install_rbac(stack, *sets, container="signals")
    assert install.service_account.endswith("-warden-signals")
    name = f"sig-{install.namespace}"
    service, url = stack.start_signals(name, KUBECONFIG=token_kubeconfig(stack, install, name), **install.env)
    try:
        sender = Sender(trader, url)
        token = sender.add_source("rbac-tv", limits={"maxNotional": "1000"})
        codes = [
            sender.signal("rbac-tv", token, id="o1", amount="0.010").code,  # 650 at the venue's price
            sender.signal("rbac-tv", token, id="o1", amount="0.010").code,
            sender.signal("rbac-tv", token, id="o2", amount="0.020").code,  # 1300: over the limit
            sender.signal("rbac-tv", "wrong", id="o3").code,
            sender.signal("rbac-tv", token, id="c1", action="close", side="sell").code,
        ]
        assert codes == [201, 200, 422, 401, 200]
        wait_for("the counts in status", lambda: sender.source_status("rbac-tv").get("refused") == 2, 30)
        [position] = sender.positions()
        assert position["spec"]["state"] == "Closed"
    finally:
        service.stop()
    resources = never_refused(stack, install)
    for request in ("get signalsources", "get secrets", "create positions", "list positions", "patch positions",
                    "get exchangeaccounts", "patch signalsources"):  # fmt: skip
        assert resources[request] > 0, (request, resources)
