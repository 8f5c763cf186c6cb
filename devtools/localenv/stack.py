"""The whole local environment: control plane, Postgres, paper exchange, CRDs, and the controller."""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.api.v1alpha1 import GROUP, VERSION
from devtools.localenv.controlplane import ControlPlane
from devtools.localenv.postgres import Postgres
from devtools.localenv.processes import Service, free_port, http_ok, wait_until
from paper.models import VenueName

REPO = Path(__file__).resolve().parents[2]


def bin_dir() -> Path:
    """Where `make setup` put kube-apiserver, etcd, kubectl, helm, promtool and hadolint (as scripts/setup.sh)."""
    cache = Path(os.environ.get("WARDEN_CACHE", Path.home() / ".cache" / "warden"))
    return Path(os.environ.get("WARDEN_BIN", cache / "bin"))


def kubectl_path() -> str:
    return str(bin_dir() / "kubectl")


def exchange_account_manifest(paper_url: str, venue: VenueName = VenueName.BINANCE_USDM, **spec: Any) -> dict[str, Any]:
    """The ExchangeAccount ``paper`` on the paper exchange's ``venue`` front, reading the Secret
    ``paper-credentials`` (``spec`` adds to it, e.g. risk limits): what a trader writes, and what the tests, the chaos
    runner and the benchmark create. The paper's venue names are ccxt's ids, as ``spec.exchange`` wants."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ExchangeAccount",
        "metadata": {"name": "paper"},
        "spec": {
            "exchange": venue.value,
            "apiBaseUrl": paper_url,
            "credentialsSecretRef": {"name": "paper-credentials"},
            **spec,
        },
    }


@dataclass
class PaperAccount:
    api_key: str
    secret: str
    venue: VenueName = VenueName.BINANCE_USDM


@dataclass
class Stack:
    workdir: Path
    detach: bool = False
    control_plane: ControlPlane = field(init=False)
    postgres: Postgres = field(init=False)
    paper: Service | None = None
    paper_port: int = 0
    paper_args: list[str] = field(default_factory=list)
    """Extra command-line options of the paper exchange (the benchmark lifts its limits)."""
    controllers: list[Service] = field(default_factory=list)
    paper_weight_limit: int = 100 * 2400
    """Binance limits request weight per IP, and here every account of every test shares 127.0.0.1; per-account
    spending is measured from the paper exchange's request log instead (tests that test the limiter set it)."""

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.control_plane = ControlPlane(self.workdir / "kube", bin_dir(), detach=self.detach)
        self.postgres = Postgres(self.workdir / "postgres", detach=self.detach)

    @property
    def paper_url(self) -> str:
        return f"http://127.0.0.1:{self.paper_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    def start(self, progress: bool = False) -> None:
        say = print if progress else (lambda *_: None)
        say("==> starting kube-apiserver + etcd")
        self.control_plane.start()
        say("==> starting Postgres")
        self.postgres.start()
        say("==> starting the paper exchange")
        self.paper_port = free_port()
        self.paper = Service(
            "paper",
            [
                *(sys.executable, "-m", "paper", "--host", "127.0.0.1", "--port", str(self.paper_port)),
                *("--weight-limit", str(self.paper_weight_limit)),
                *self.paper_args,  # later options win
            ],
            self.workdir / "logs" / "paper.log",
            detach=self.detach,
        )
        self.paper.start()
        wait_until("the paper exchange", lambda: http_ok(f"{self.paper_url}/fapi/v1/time"), 30, self.paper)
        say("==> installing the CRDs")
        self.kubectl("apply", "-f", str(REPO / "crds"))
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl_path(), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
        )

    def paper_admin(self, path: str, payload: dict[str, object] | None = None, method: str | None = None) -> object:
        """GET without a payload, POST with one, or ``method`` (e.g. DELETE)."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.paper_url}{path}", data=data, headers={"Content-Type": "application/json"}, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def create_paper_account(self, balance: str = "100000", venue: VenueName = VenueName.BINANCE_USDM) -> PaperAccount:
        account = PaperAccount(f"paper-{secrets.token_hex(8)}", secrets.token_hex(24), venue)
        self.paper_admin(
            "/_paper/accounts",
            {"apiKey": account.api_key, "secret": account.secret, "balance": balance, "venue": venue.value},
        )
        return account

    def controller_env(self, name: str, **extra: str) -> dict[str, str]:
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "WARDEN_DATABASE_URL": self.postgres.url,
            "WARDEN_METRICS_PORT": str(free_port()),
            "WARDEN_HEALTH_PORT": str(free_port()),
            "WARDEN_REPLICA_ID": name,
            # As in the image: glibc's per-thread arenas (the Kubernetes client's threads) only inflate memory.
            "MALLOC_ARENA_MAX": "2",
            # Short lease timings, so a test's standby takes over in seconds.
            "WARDEN_LEASE_DURATION": "4",
            "WARDEN_LEASE_RENEW_DEADLINE": "3",
            "WARDEN_LEASE_RETRY": "0.5",
            **extra,
        }

    def start_controller(self, name: str = "controller", **extra: str) -> Service:
        service = Service(
            name,
            [sys.executable, "-m", "controller"],
            self.workdir / "logs" / f"{name}.log",
            env=self.controller_env(name, **extra),
            detach=self.detach,
        )
        service.start()
        self.controllers.append(service)
        return service

    def start_signals(
        self, name: str = "signals", context: ssl.SSLContext | None = None, **extra: str
    ) -> tuple[Service, str]:
        """The signal receiver on 127.0.0.1 and a free port; returns it and its URL (``WARDEN_SIGNALS_URL``). With
        ``WARDEN_SIGNALS_TLS_CERT`` it serves HTTPS, and ``context`` is how to reach it (a client certificate)."""
        port = free_port()
        env = {
            "KUBECONFIG": str(self.kubeconfig),
            "WARDEN_DATABASE_URL": self.postgres.url,
            "WARDEN_SIGNALS_PORT": str(port),
            "WARDEN_SIGNALS_METRICS_PORT": str(free_port()),
            "MALLOC_ARENA_MAX": "2",
            **extra,
        }
        service = Service(
            name,
            [sys.executable, "-m", "controller.signals"],
            self.workdir / "logs" / f"{name}.log",
            env=env,
            detach=self.detach,
        )
        service.start()
        self.controllers.append(service)
        url = f"{'https' if 'WARDEN_SIGNALS_TLS_CERT' in extra else 'http'}://127.0.0.1:{port}"
        wait_until("the signal receiver", lambda: http_ok(f"{url}/healthz", context), 30, service)
        return service, url

    def stop(self) -> None:
        for service in self.controllers:
            service.stop()
        if self.paper is not None:
            self.paper.stop()
        self.postgres.stop()
        self.control_plane.stop()
