"""A real kube-apiserver + etcd as plain processes, the way controller-runtime's envtest runs them."""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devtools.localenv.pki import LocalCA, service_account_keys
from devtools.localenv.processes import Service, free_port, http_ok, wait_until


@dataclass
class ControlPlane:
    workdir: Path
    bin_dir: Path
    detach: bool = False
    services: list[Service] = field(default_factory=list)
    port: int = 0

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log: one JSON line per request (who, verb, resource, response code)."""
        return self.workdir / "logs" / "audit.log"

    def _audit_policy(self) -> Path:
        # Metadata level: user, verb, object and response code, never request or response bodies (which
        # would copy Secrets into the log). RequestReceived is dropped: the code comes with the later stages.
        policy = self.workdir / "audit-policy.yaml"
        rules = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"]}
        policy.write_text(yaml.safe_dump({**rules, "rules": [{"level": "Metadata"}]}))
        return policy

    def start(self, timeout: float = 90.0) -> None:
        pki = self.workdir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        ca = LocalCA(pki)
        ca.issue("apiserver", "localhost", server=True)
        ca.issue("admin", "warden-admin", ("system:masters",))
        sa_key, sa_pub = service_account_keys(pki)

        etcd_port, etcd_peer = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = Service(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            self.workdir / "logs" / "etcd.log",
            detach=self.detach,
        )
        etcd.start()
        self.services.append(etcd)
        wait_until("etcd /health", lambda: http_ok(f"{etcd_url}/health"), timeout, etcd)

        self.port = free_port()
        apiserver = Service(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={ca.cert_path}",
                f"--service-account-issuer=https://127.0.0.1:{self.port}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                # No controller-manager creates default ServiceAccounts here.
                "--disable-admission-plugins=ServiceAccount",
                "--endpoint-reconciler-type=none",
                f"--audit-policy-file={self._audit_policy()}",
                f"--audit-log-path={self.audit_log}",
                # Bounded for long `make up` sessions; the tests read it well before it rotates.
                "--audit-log-maxsize=200",
                "--audit-log-maxbackup=1",
            ],
            self.workdir / "logs" / "kube-apiserver.log",
            detach=self.detach,
        )
        apiserver.start()
        self.services.append(apiserver)
        self._wait_ready(apiserver, timeout)
        self._write_kubeconfig(pki)
        admin = ssl.create_default_context(cafile=str(ca.cert_path))
        admin.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        probe = functools.partial(http_ok, f"{self.server}/api/v1/namespaces/default", admin)
        wait_until("the default namespace", probe, timeout, apiserver)

    def _apiserver(self) -> Service:
        return next(s for s in self.services if s.name == "kube-apiserver")

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver alone (etcd keeps the data), as an API server restart or outage would."""
        self._apiserver().stop()

    def start_apiserver(self, timeout: float = 90.0) -> None:
        """Start the stopped kube-apiserver again on the same port, certificates and etcd."""
        apiserver = self._apiserver()
        apiserver.start()
        self._wait_ready(apiserver, timeout)

    def _wait_ready(self, apiserver: Service, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(self.workdir / "pki" / "ca.crt"))
        wait_until("kube-apiserver /readyz", lambda: http_ok(f"{self.server}/readyz", context), timeout, apiserver)

    def _write_kubeconfig(self, pki: Path) -> None:
        user = {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}
        self.kubeconfig.write_text(self._config("warden-admin", user, "default"))

    def token_kubeconfig(self, path: Path, token: str, namespace: str) -> Path:
        """A kubeconfig that authenticates with a bearer token only (e.g. a ServiceAccount's), no client cert."""
        path.write_text(self._config("token", {"token": token}, namespace))
        return path

    def _config(self, user_name: str, user: dict[str, str], namespace: str) -> str:
        pki = self.workdir / "pki"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "warden-local",
                    "cluster": {"server": self.server, "certificate-authority": str(pki / "ca.crt")},
                }
            ],
            "users": [{"name": user_name, "user": user}],
            "contexts": [
                {
                    "name": "warden-local",
                    "context": {"cluster": "warden-local", "user": user_name, "namespace": namespace},
                }
            ],
            "current-context": "warden-local",
        }
        return yaml.safe_dump(config)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
