"""The Helm chart: lint, schema, rendering, and a real install on a real kube-apiserver (tests/chart/conftest.py).

The test API server has no Prometheus Operator CRDs (they cannot be fetched offline), so the chart renders the
ServiceMonitor and PrometheusRule only when the cluster serves monitoring.coreos.com/v1 (or with
``monitoring.assumeCRDs=true``). Here the server-side checks run without them; the PrometheusRule is checked
to embed files/alerts.yaml verbatim, and that file is checked and unit-tested by promtool (test_alerts.py).
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART, Cluster, by_kind, helm_template, manifests, run, tool

VARIANTS: dict[str, list[str]] = {
    "default": [],
    "paper": ["paper.enabled=true"],
    "watch-namespace": ["watchNamespace=trading", "paper.enabled=true"],
    "secret-namespaces": ["rbac.secretNamespaces={team-a,team-b}"],
    "single-replica": ["replicaCount=1", "networkPolicy.enabled=false", "migrations.enabled=false"],
    "signals": ["signals.enabled=true", "signals.tls.secretName=tv-tls", "signals.tls.clientCA.secretName=tv-ca"],
    "signals-namespaced": ["signals.enabled=true", "watchNamespace=trading"],
    "cidrs": [
        "database.cidrs={10.20.0.0/16}",
        "networkPolicy.apiServer.cidrs={10.0.0.1/32}",
        "networkPolicy.exchange.cidrs={0.0.0.0/0}",
    ],
}


def lint(*sets: str) -> subprocess.CompletedProcess[str]:
    args = [tool("helm"), "lint", "--strict", str(CHART)]
    for item in sets:
        args += ["--set", item]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint(variant: str) -> None:
    done = lint(*VARIANTS[variant])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "bad",
    [
        "replicaCount=0",
        "image.pullPolicy=Sometimes",
        "watchNamespace=Not_A_Namespace",
        "database.existingSecret=",
        "metrics.port=70000",
        "networkPolicy.exchange.cidrs={not-a-cidr}",
        "unknownValue=1",
        "signals.allowedCIDRs={tradingview}",
        "signals.service.type=Ingress",
    ],
)
def test_schema_refuses_bad_values(bad: str) -> None:
    done = lint(bad)
    assert done.returncode != 0, f"helm lint accepted {bad}"
    assert "schema" in (done.stdout + done.stderr).lower()


def controller_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [deployment] = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"] == "warden"]
    return deployment


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_controller_deployment() -> None:
    objects = manifests(helm_template())
    deployment = controller_deployment(objects)
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    [container] = spec["containers"]
    assert container["command"] + container["args"] == ["python", "-m", "controller", "run"]
    assert container["image"] == "ghcr.io/warden/warden:0.1.0"
    env = env_of(container)
    assert env["WARDEN_DATABASE_URL"] == {"secretKeyRef": {"name": "warden-database", "key": "url"}}
    assert env["WARDEN_LEASE_NAME"] == "warden-leader"
    assert env["WARDEN_LEASE_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["WARDEN_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["WARDEN_METRICS_ADDR"] == "0.0.0.0"
    assert env["WARDEN_METRICS_PORT"] == "9464"
    assert env["WARDEN_HEALTH_ADDR"] == "0.0.0.0"
    assert env["WARDEN_HEALTH_PORT"] == "8080"
    assert "WARDEN_NAMESPACE" not in env
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9464, "health": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    [migrate] = spec["initContainers"]
    assert migrate["command"] + migrate["args"] == ["python", "-m", "controller", "migrate"]
    assert env_of(migrate)["WARDEN_DATABASE_URL"] == env["WARDEN_DATABASE_URL"]
    assert migrate["securityContext"] == security


def test_watch_namespace_sets_env_and_namespaced_rbac() -> None:
    objects = manifests(helm_template("watchNamespace=trading"))
    env = env_of(controller_deployment(objects)["spec"]["template"]["spec"]["containers"][0])
    assert env["WARDEN_NAMESPACE"] == "trading"
    # Nothing cluster-scoped: kopf's namespace and CRD scanning is off with one watched namespace.
    assert by_kind(objects, "ClusterRole") == [] and by_kind(objects, "ClusterRoleBinding") == []
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in by_kind(objects, "Role")}
    assert ("trading", "warden") in roles
    assert ("warden-system", "warden-leader-election") in roles


def test_paper_exchange() -> None:
    assert not [d for d in by_kind(manifests(helm_template()), "Deployment") if "paper" in d["metadata"]["name"]]
    objects = manifests(helm_template("paper.enabled=true"))
    [paper] = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"] == "warden-paper"]
    [container] = paper["spec"]["template"]["spec"]["containers"]
    assert container["command"] + container["args"] == [
        "python", "-m", "paper", "--host", "0.0.0.0", "--port", "8000",
    ]  # fmt: skip
    [service] = [s for s in by_kind(objects, "Service") if s["metadata"]["name"] == "warden-paper"]
    assert service["spec"]["ports"][0]["port"] == 8000
    assert service["spec"]["selector"] == paper["spec"]["selector"]["matchLabels"]
    [policy] = by_kind(objects, "NetworkPolicy")
    assert any(
        rule["ports"] == [{"port": 8000, "protocol": "TCP"}] and "podSelector" in rule["to"][0]
        for rule in policy["spec"]["egress"]
    )


def test_network_policy() -> None:
    [policy] = by_kind(manifests(helm_template("database.cidrs={10.20.0.0/16}")), "NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"ports": [{"port": 9464, "protocol": "TCP"}]}]
    egress_ports = [sorted((p["port"], p["protocol"]) for p in rule["ports"]) for rule in spec["egress"]]
    assert [(53, "TCP"), (53, "UDP")] in egress_ports  # DNS
    assert [(443, "TCP"), (6443, "TCP")] in egress_ports  # the API server
    assert [(443, "TCP")] in egress_ports  # exchange HTTPS
    [postgres] = [rule for rule in spec["egress"] if rule["ports"] == [{"port": 5432, "protocol": "TCP"}]]
    assert postgres["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


def test_pdb_only_with_a_standby() -> None:
    [pdb] = by_kind(manifests(helm_template()), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert by_kind(manifests(helm_template("replicaCount=1")), "PodDisruptionBudget") == []


def test_prometheus_rule_embeds_the_alerts_file() -> None:
    assert by_kind(manifests(helm_template()), "PrometheusRule") == []  # no monitoring.coreos.com/v1 here
    objects = manifests(helm_template("monitoring.assumeCRDs=true"))
    [rule] = by_kind(objects, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    [monitor] = by_kind(objects, "ServiceMonitor")
    [metrics] = [s for s in by_kind(objects, "Service") if s["metadata"]["name"] == "warden-metrics"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    # The job label Prometheus Operator gives the targets is the Service name, which WardenDown matches.
    assert "warden" in metrics["metadata"]["name"]
    # Also rendered when the cluster says it serves the API.
    discovered = manifests(helm_template(extra=["--api-versions", "monitoring.coreos.com/v1"]))
    assert len(by_kind(discovered, "PrometheusRule")) == 1
    custom = manifests(helm_template("monitoring.assumeCRDs=true", "monitoring.runbookUrl=https://wiki.example/rb"))
    [rule] = by_kind(custom, "PrometheusRule")
    urls = [r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert urls and all(u.startswith("https://wiki.example/rb#") for u in urls)


# --- on a real API server ------------------------------------------------------------------------------------


def ensure_namespace(cluster: Cluster, *names: str) -> None:
    for name in names:
        if cluster.kubectl("get", "namespace", name, check=False).returncode != 0:
            cluster.kubectl("create", "namespace", name)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_server_side_dry_run(cluster: Cluster, variant: str) -> None:
    """Every object the chart renders is accepted by a real kube-apiserver with strict field validation."""
    ensure_namespace(cluster, "warden-system", "trading", "team-a", "team-b")
    rendered = helm_template(*VARIANTS[variant])
    kinds = {o["kind"] for o in manifests(rendered)}
    assert {"Deployment", "ServiceAccount", "Service", "Role", "RoleBinding"} <= kinds
    done = cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=rendered)
    assert "(server dry run)" in done.stdout


def helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return run([tool("helm"), "--kubeconfig", str(cluster.plane.kubeconfig), *args])


def can_i(cluster: Cluster, verb: str, resource: str, namespace: str | None, sa: str, subresource: str = "") -> bool:
    args = ["auth", "can-i", verb, resource, f"--as=system:serviceaccount:{sa}"]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    if subresource:
        args.append(f"--subresource={subresource}")
    done = cluster.kubectl(*args, check=False)
    assert done.stdout.strip() in ("yes", "no"), done.stdout + done.stderr
    return done.stdout.strip() == "yes"


POSITIONS = "positions.trading.warden.dev"
ACCOUNTS = "exchangeaccounts.trading.warden.dev"
LEASES = "leases.coordination.k8s.io"


def test_helm_install_cluster_wide_least_privilege(cluster: Cluster) -> None:
    ensure_namespace(cluster, "ops", "team-x")
    done = helm(cluster, "install", "warden", str(CHART), "-n", "ops", "--set", "paper.enabled=true")
    # No Prometheus Operator on this server: the chart says so instead of failing.
    assert "were NOT created" in done.stdout
    assert "kind: ExchangeAccount" in done.stdout
    assert cluster.get_json("deployment", "warden", "-n", "ops")["spec"]["replicas"] == 2
    assert cluster.get_json("service", "warden-paper", "-n", "ops")["spec"]["ports"][0]["port"] == 8000
    sa = "ops:warden"
    allowed = [
        ("get", POSITIONS, "team-x", ""),
        ("list", POSITIONS, None, ""),
        ("watch", POSITIONS, None, ""),
        ("patch", POSITIONS, "team-x", ""),
        ("patch", POSITIONS, "team-x", "status"),
        ("create", POSITIONS, "team-x", ""),
        ("watch", ACCOUNTS, None, ""),
        ("patch", ACCOUNTS, "team-x", "status"),
        ("get", "secrets", "team-x", ""),
        ("create", "events", "team-x", ""),
        ("patch", "events", "team-x", ""),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io", None, ""),
        ("create", LEASES, "ops", ""),
        ("get", f"{LEASES}/warden-leader", "ops", ""),
        ("update", f"{LEASES}/warden-leader", "ops", ""),
    ]
    denied = [
        ("delete", POSITIONS, "team-x", ""),
        ("update", POSITIONS, "team-x", ""),
        ("update", POSITIONS, "team-x", "status"),
        ("delete", ACCOUNTS, "team-x", ""),
        ("list", "secrets", "team-x", ""),
        ("watch", "secrets", None, ""),
        ("create", "secrets", "team-x", ""),
        ("get", "configmaps", "team-x", ""),
        ("create", "pods", "ops", ""),
        ("update", f"{LEASES}/someone-else", "ops", ""),
        ("create", LEASES, "team-x", ""),
        ("get", f"{LEASES}/warden-leader", "team-x", ""),
        ("create", "customresourcedefinitions.apiextensions.k8s.io", None, ""),
        ("list", "namespaces", None, ""),  # kopf lists namespaces only in namespaced mode
    ]
    wrong = [c for c in allowed if not can_i(cluster, *c[:3], sa, c[3])]
    wrong += [c for c in denied if can_i(cluster, *c[:3], sa, c[3])]
    assert not wrong, f"RBAC differs from least privilege for: {wrong}"
    helm(cluster, "uninstall", "warden", "-n", "ops")


def test_helm_install_single_namespace_least_privilege(cluster: Cluster) -> None:
    ensure_namespace(cluster, "ops-ns", "desk", "elsewhere")
    helm(cluster, "install", "desk", str(CHART), "-n", "ops-ns", "--set", "watchNamespace=desk")
    sa = "ops-ns:desk-warden"
    allowed = [
        ("watch", POSITIONS, "desk", ""),
        ("patch", POSITIONS, "desk", "status"),
        ("get", "secrets", "desk", ""),
        ("create", "events", "desk", ""),
        ("update", f"{LEASES}/warden-leader", "ops-ns", ""),
    ]
    denied = [
        ("list", POSITIONS, None, ""),
        ("watch", POSITIONS, "elsewhere", ""),
        ("get", "secrets", "elsewhere", ""),
        ("create", "events", "elsewhere", ""),
        ("list", "namespaces", None, ""),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io", None, ""),
    ]
    wrong = [c for c in allowed if not can_i(cluster, *c[:3], sa, c[3])]
    wrong += [c for c in denied if can_i(cluster, *c[:3], sa, c[3])]
    assert not wrong, f"RBAC differs from least privilege for: {wrong}"
    helm(cluster, "uninstall", "desk", "-n", "ops-ns")


def test_secret_namespaces_limit_secret_reads(cluster: Cluster) -> None:
    ensure_namespace(cluster, "ops-sn", "vault-a", "vault-b")
    helm(cluster, "install", "sn", str(CHART), "-n", "ops-sn", "--set", "rbac.secretNamespaces={vault-a}")
    sa = "ops-sn:sn-warden"
    assert can_i(cluster, "get", "secrets", "vault-a", sa)
    assert not can_i(cluster, "get", "secrets", "vault-b", sa)
    assert can_i(cluster, "watch", POSITIONS, "vault-b", sa)
    helm(cluster, "uninstall", "sn", "-n", "ops-sn")


SIGNAL_SOURCES = "signalsources.trading.warden.dev"
TRADINGVIEW = ["52.89.214.238/32", "34.212.75.30/32", "54.218.53.128/32", "52.32.178.7/32"]


def signals_objects(*sets: str) -> dict[str, Any]:
    objects = manifests(helm_template("signals.enabled=true", *sets))
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects if "signals" in o["metadata"]["name"]}


def test_signals_is_off_unless_enabled() -> None:
    assert [o for o in manifests(helm_template()) if "signals" in o["metadata"]["name"]] == []


def test_signals_deployment_serves_https_from_the_certificate_secret_and_verifies_clients() -> None:
    objects = signals_objects("signals.tls.secretName=tv-tls", "signals.tls.clientCA.secretName=tv-ca")
    spec = objects["Deployment/warden-signals"]["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "warden-signals"  # its own, not the controller's
    assert "ServiceAccount/warden-signals" in objects
    [container] = spec["containers"]
    assert container["command"] == ["python", "-m", "controller.signals"]
    env = env_of(container)
    assert (env["WARDEN_SIGNALS_ADDR"], env["WARDEN_SIGNALS_PORT"]) == ("0.0.0.0", "8443")
    assert (env["WARDEN_SIGNALS_TLS_CERT"], env["WARDEN_SIGNALS_TLS_KEY"]) == (
        "/etc/warden/tls/tls.crt",
        "/etc/warden/tls/tls.key",
    )
    assert (env["WARDEN_SIGNALS_CLIENT_CA"], env["WARDEN_SIGNALS_CLIENT_CN"]) == (
        "/etc/warden/client-ca/ca.crt",
        "TradingView Webhooks",
    )
    volumes = {v["name"]: v.get("secret", {}).get("secretName") for v in spec["volumes"]}
    assert (volumes["tls"], volumes["client-ca"]) == ("tv-tls", "tv-ca")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    service = objects["Service/warden-signals"]["spec"]
    assert service["ports"] == [{"name": "signals", "port": 443, "targetPort": "signals", "protocol": "TCP"}]
    plain = env_of(signals_objects()["Deployment/warden-signals"]["spec"]["template"]["spec"]["containers"][0])
    assert "WARDEN_SIGNALS_TLS_CERT" not in plain and "WARDEN_SIGNALS_CLIENT_CA" not in plain


def test_client_verification_without_tls_is_refused() -> None:
    args = [tool("helm"), "template", str(CHART), "--set", "signals.enabled=true"]
    done = subprocess.run([*args, "--set", "signals.tls.clientCA.secretName=tv-ca"], capture_output=True, text=True)
    assert done.returncode != 0 and "needs signals.tls.secretName" in done.stderr


def test_signals_allow_list_admits_only_tradingview_by_default() -> None:
    policy = signals_objects()["NetworkPolicy/warden-signals"]["spec"]
    [signals, metrics] = policy["ingress"]
    assert signals["ports"] == [{"port": 8443, "protocol": "TCP"}]
    assert [block["ipBlock"]["cidr"] for block in signals["from"]] == TRADINGVIEW
    assert metrics == {"ports": [{"port": 9465, "protocol": "TCP"}]}
    anyone = signals_objects("signals.allowedCIDRs=null")["NetworkPolicy/warden-signals"]["spec"]["ingress"][0]
    assert "from" not in anyone
    balanced = signals_objects(
        "signals.service.type=LoadBalancer", "signals.service.loadBalancerSourceRanges={1.2.3.4/32}"
    )
    service = balanced["Service/warden-signals"]["spec"]
    assert service["externalTrafficPolicy"] == "Local" and service["loadBalancerSourceRanges"] == ["1.2.3.4/32"]


def test_signals_rbac_is_namespaced_with_watch_namespace() -> None:
    objects = signals_objects("watchNamespace=trading")
    assert objects["Role/warden-signals"]["metadata"]["namespace"] == "trading"
    assert objects["RoleBinding/warden-signals"]["subjects"][0]["name"] == "warden-signals"
    assert "ClusterRole/warden-signals" not in objects
    assert "ClusterRole/warden-signals" in signals_objects()


def test_signals_install_least_privilege(cluster: Cluster) -> None:
    ensure_namespace(cluster, "ops-sig", "desk-sig", "elsewhere-sig")
    helm(cluster, "install", "sig", str(CHART), "-n", "ops-sig", "--set", "watchNamespace=desk-sig",
         "--set", "signals.enabled=true")  # fmt: skip
    sa = "ops-sig:sig-warden-signals"
    allowed = [
        ("get", SIGNAL_SOURCES, "desk-sig", ""),
        ("patch", SIGNAL_SOURCES, "desk-sig", "status"),
        ("get", "secrets", "desk-sig", ""),
        ("create", POSITIONS, "desk-sig", ""),
        ("list", POSITIONS, "desk-sig", ""),
        ("patch", POSITIONS, "desk-sig", ""),
        ("get", ACCOUNTS, "desk-sig", ""),
    ]
    denied = [
        ("list", SIGNAL_SOURCES, "desk-sig", ""),
        ("patch", SIGNAL_SOURCES, "desk-sig", ""),
        ("list", "secrets", "desk-sig", ""),
        ("delete", POSITIONS, "desk-sig", ""),
        ("patch", POSITIONS, "desk-sig", "status"),
        ("watch", POSITIONS, "desk-sig", ""),
        ("patch", ACCOUNTS, "desk-sig", ""),
        ("create", POSITIONS, "elsewhere-sig", ""),
        ("get", "secrets", "elsewhere-sig", ""),
        ("get", SIGNAL_SOURCES, "elsewhere-sig", ""),
        ("create", "events", "desk-sig", ""),
        ("update", f"{LEASES}/warden-leader", "ops-sig", ""),
    ]
    wrong = [c for c in allowed if not can_i(cluster, *c[:3], sa, c[3])]
    wrong += [c for c in denied if can_i(cluster, *c[:3], sa, c[3])]
    assert not wrong, f"RBAC differs from least privilege for: {wrong}"
    # And the controller's ServiceAccount gained nothing on SignalSources.
    assert not can_i(cluster, "get", SIGNAL_SOURCES, "desk-sig", "ops-sig:sig-warden")
    helm(cluster, "uninstall", "sig", "-n", "ops-sig")
