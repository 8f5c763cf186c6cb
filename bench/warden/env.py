"""The benchmark's view of the real components. Every figure comes from their own records: the paper exchange's
order, trade and request logs (times on the exchange clock), the API server's request counters, and /proc.
Nothing is read from the controller's internals, so the harness measures whatever the controller does."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any, cast

import kubernetes
from kubernetes.client import V1Namespace, V1ObjectMeta, V1Secret
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from controller.exchange import binanceusdm
from controller.exchange.bybit import BUDGET as BYBIT_BUDGET
from controller.exchange.bybit import CAPABILITIES as BYBIT_CAPABILITIES
from controller.exchange.port import BudgetUnit, RequestBudget
from devtools.localenv.processes import Service
from devtools.localenv.stack import PaperAccount, Stack, exchange_account_manifest
from paper.markets import load_markets
from paper.models import VenueName
from paper.requestlog import LoggedRequest

GROUP, VERSION = "trading.warden.dev", "v1alpha1"
USER_AGENT = "warden-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Every request that reports an account's positions, and every one that reveals a stop (for recovery).
POSITION_READS = frozenset({"/fapi/v3/positionRisk", "/fapi/v2/positionRisk", "/fapi/v3/account", "/fapi/v2/account"})
ALGO_LISTS = frozenset({"/fapi/v1/openAlgoOrders", "/fapi/v1/allAlgoOrders"})
assert BYBIT_CAPABILITIES.conditional_cap is not None
BYBIT_CONDITIONAL_CAP = BYBIT_CAPABILITIES.conditional_cap.limit
"""Conditional orders per symbol per Bybit account."""


@dataclass(frozen=True)
class BenchVenue:
    """What the scenarios read or send differently on each front of the paper exchange. Everything else is the one
    engine's: symbols (``BTCUSDT`` on both), the admin order log (a stop is ``kind: algo`` there on both, although
    Bybit lists its conditional orders with the others), positions, trades, prices."""

    name: VenueName
    cancel_field: str
    """The client id's field in ``/_paper/cancel-algo``."""
    updated_field: str
    """When an order last changed, in the front's own rendering (``/_paper/external-close`` answers with it)."""
    position_reads: frozenset[str]
    """Requests that report the account's positions (one symbol's or every one)."""
    stop_lookups: frozenset[str]
    """Requests that look one order up by its client id (they show a stop when it is that stop's id)."""
    stop_lists: frozenset[str]
    """Requests that list a symbol's or the account's open stops (those naming no client id)."""
    limits: RequestBudget
    """The venue's limits, as its adapter declares them."""
    ccxt_cancel_stop: Mapping[str, object]
    """ccxt ``cancel_order`` parameters of a stop besides its client id (the floor)."""
    ccxt_client_id: str
    """The parameter that carries the client id in that cancel."""
    probes_per_symbol: int | None
    """How many probe Positions may stay open on one symbol of an account: under Bybit's cap of conditional orders
    per symbol, less the room Warden keeps for a stop and its replacement. None: no cap the probes reach (Binance's
    is per account, and lifted for the run)."""

    @property
    def unit(self) -> BudgetUnit:
        return self.limits.unit

    @property
    def budget(self) -> str:
        """The unit's name in the results' keys: ``weight`` (Binance) or ``requests`` (Bybit)."""
        return self.unit.value.lower()

    @property
    def order_pace_s(self) -> float:
        """Seconds between two orders of a harness that sends them back to back (the floor), so that it stays
        within the venue's per-endpoint limit with a tenth to spare; 0 where the venue has none."""
        per_second = self.limits.per_endpoint_per_second
        return 1.1 / per_second if per_second else 0.0

    def cost(self, record: LoggedRequest) -> int:
        """What the request spends of the venue's budget: its weight on Binance; one on Bybit, where every request
        counts one against the IP's 600 per 5 s (the paper leaves the weight of a Bybit request at zero)."""
        return record.weight if self.unit is BudgetUnit.WEIGHT else 1


BINANCE = BenchVenue(
    VenueName.BINANCE_USDM,
    cancel_field="clientAlgoId",
    updated_field="updateTime",
    position_reads=POSITION_READS,
    stop_lookups=frozenset({"/fapi/v1/algoOrder"}),
    stop_lists=ALGO_LISTS,
    limits=binanceusdm.BUDGET,
    ccxt_cancel_stop={"trigger": True},
    ccxt_client_id="clientOrderId",
    probes_per_symbol=None,
)
BYBIT = BenchVenue(
    VenueName.BYBIT,
    cancel_field="orderLinkId",
    updated_field="updatedTime",
    position_reads=frozenset({"/v5/position/list"}),
    # Conditional orders are in the one order list: realtime (open, and the latest ended) and history.
    stop_lookups=frozenset({"/v5/order/realtime", "/v5/order/history"}),
    stop_lists=frozenset({"/v5/order/realtime"}),
    limits=BYBIT_BUDGET,
    ccxt_cancel_stop={},
    ccxt_client_id="orderLinkId",
    probes_per_symbol=BYBIT_CONDITIONAL_CAP - 2,
)


class BenchTimeout(Exception):
    """A wait ran out; the scenario reports what it saw instead of a figure."""


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise BenchTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (with few samples p99 is the maximum, which is what it should be)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))
    return ordered[int(rank) - 1]


# --- the paper exchange ------------------------------------------------------------------------


@dataclass
class Paper:
    url: str

    def call(self, path: str, payload: dict[str, Any] | None = None, method: str | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def now(self) -> int:
        clock: dict[str, Any] = self.call("/_paper/clock")
        return int(clock["now"])

    def orders(self, api_key: str, symbol: str | None = None) -> list[dict[str, Any]]:
        query = {"apiKey": api_key, **({"symbol": symbol} if symbol else {})}
        rows: list[dict[str, Any]] = self.call(f"/_paper/orders?{urllib.parse.urlencode(query)}")
        return rows

    def trades(self, api_key: str, symbol: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"apiKey": api_key, "symbol": symbol})
        rows: list[dict[str, Any]] = self.call(f"/_paper/trades?{query}")
        return rows

    def positions(self, api_key: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.call(f"/_paper/positions?apiKey={api_key}")
        return rows

    def mark(self, symbol: str) -> Decimal:
        """The mark price, from the public endpoint (a harness request: it carries no replica header)."""
        with urllib.request.urlopen(f"{self.url}/fapi/v1/premiumIndex?symbol={symbol}", timeout=30) as response:
            return Decimal(json.loads(response.read())["markPrice"])

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.call("/_paper/price", {"symbol": symbol, "price": str(price)})


class RequestTap:
    """Copies the paper exchange's request log while recording (the venue keeps only the newest 100,000, which a
    busy controller fills in under a minute)."""

    def __init__(self, paper: Paper, every: float = 1.0) -> None:
        self.paper = paper
        self.every = every
        self.records: list[LoggedRequest] = []
        self._since = 0
        self._last_seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        rows = self.paper.call(f"/_paper/requests?since={self._since}")
        fresh = [LoggedRequest.from_row(r) for r in rows if r["seq"] > self._last_seq]
        with self._lock:
            self.records.extend(fresh)
        if fresh:
            self._last_seq = fresh[-1].seq
            self._since = fresh[-1].time

    def start(self) -> int:
        """Record from now on; returns the start on the exchange clock."""
        self.stop()
        with self._lock:
            self.records = []
        self._since = self.paper.now()
        self._last_seq = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="request-tap", daemon=True)
        self._thread.start()
        return self._since

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(OSError):
                self._poll()

    def snapshot(self) -> list[LoggedRequest]:
        with contextlib.suppress(OSError):
            self._poll()
        with self._lock:
            return list(self.records)

    def stop(self) -> list[LoggedRequest]:
        if self._thread is None:
            return []
        self._stop.set()
        self._thread.join()
        self._thread = None
        return self.snapshot()


# --- Kubernetes --------------------------------------------------------------------------------


class Kube:
    """The harness's own API client (user agent ``warden-bench``); it counts its requests, so scenario 8 can
    subtract them from the API server's counters."""

    def __init__(self, kubeconfig: Path) -> None:
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=config)  # type: ignore[no-untyped-call]
        self.api = kubernetes.client.ApiClient(config)
        self.api.user_agent = USER_AGENT
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.requests: dict[tuple[str, str], int] = {}

    def _count(self, verb: str, resource: str) -> None:
        self.requests[(verb, resource)] = self.requests.get((verb, resource), 0) + 1

    def namespace(self, name: str) -> None:
        self._count("POST", "namespaces")
        with contextlib.suppress(ApiException):  # already there
            self.core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=name)))

    def account(self, namespace: str, account: PaperAccount, paper_url: str) -> None:
        """A Secret and an ExchangeAccount named ``paper`` on the account's venue, as a trader sets them up."""
        self._count("POST", "secrets")
        secret = V1Secret(
            metadata=V1ObjectMeta(name="paper-credentials"),
            string_data={"apiKey": account.api_key, "secret": account.secret},
        )
        self.core.create_namespaced_secret(namespace, secret)
        self.create(
            namespace,
            "exchangeaccounts",
            exchange_account_manifest(paper_url, account.venue),
        )

    def create(self, namespace: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        self._count("POST", plural)
        return cast(
            dict[str, Any], self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        )

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._count("GET", "positions")
        try:
            found = cast(
                dict[str, Any], self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "positions", name)
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def list(self, namespace: str) -> list[dict[str, Any]]:
        self._count("LIST", "positions")
        found = cast(dict[str, Any], self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "positions"))
        items: list[dict[str, Any]] = found["items"]
        return items

    def patch_spec(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self._count("PATCH", "positions")
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "positions", name, {"spec": spec})

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._count("PATCH", "positions/status")
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "positions", name, {"status": status}
        )

    def delete(self, namespace: str, name: str) -> None:
        self._count("DELETE", "positions")
        with contextlib.suppress(ApiException):
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "positions", name)

    def apiserver_requests(self) -> dict[tuple[str, str], float]:
        """``apiserver_request_total`` summed by (verb, resource[/subresource]); non-resource URLs left out."""
        method, url, headers, _, _ = self.api.param_serialize("GET", "/metrics")
        response = self.api.call_api(method, url, header_params=headers)
        text = response.response.data.decode()
        totals: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "apiserver_request":
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total") or not sample.labels.get("resource"):
                    continue
                resource = sample.labels["resource"]
                if sample.labels.get("subresource"):
                    resource += "/" + sample.labels["subresource"]
                key = (sample.labels["verb"], resource)
                totals[key] = totals.get(key, 0.0) + sample.value
        return totals


def phase(obj: dict[str, Any] | None) -> str | None:
    if obj is None:
        return None
    value: str | None = (obj.get("status") or {}).get("phase")
    return value


# --- the processes -----------------------------------------------------------------------------


@dataclass
class ProcSample:
    cpu_s: float
    rss_mib: float
    at: float


def proc_sample(pid: int) -> ProcSample:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    rss = 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return ProcSample(cpu, rss, time.monotonic())


@dataclass
class Usage:
    """CPU cores and resident memory of a process over a window, sampled once a second."""

    pid: int
    samples: list[ProcSample] = field(default_factory=list)

    def sample(self) -> None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            self.samples.append(proc_sample(self.pid))

    def result(self) -> dict[str, float | None]:
        if len(self.samples) < 2:
            return {"cpu_cores": None, "rss_mib": None, "rss_mib_max": None}
        first, last = self.samples[0], self.samples[-1]
        return {
            "cpu_cores": round((last.cpu_s - first.cpu_s) / (last.at - first.at), 3),
            "rss_mib": round(last.rss_mib, 1),
            "rss_mib_max": round(max(s.rss_mib for s in self.samples), 1),
        }


# --- markets and manifests ---------------------------------------------------------------------

MARKETS = load_markets()


def amount_for(symbol: str, price: Decimal | None = None) -> Decimal:
    """A small order comfortably above the minimum notional (prices wander during a run)."""
    spec = MARKETS[symbol]
    price = price or spec.initial_mark_price
    steps = (spec.min_notional * Decimal("1.5") / price / spec.step_size).to_integral_value(ROUND_CEILING)
    return max(steps * spec.step_size, spec.min_qty)


def unified(symbol: str) -> str:
    return f"{symbol.removesuffix('USDT')}/USDT:USDT"


def position_manifest(name: str, symbol: str, amount: Decimal, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accountRef": {"name": "paper"},
        "symbol": unified(symbol),
        "side": "long",
        "amount": f"{amount:f}",
        "entry": {"type": "market"},
        "stopLoss": {"percent": "5"},
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Position",
        "metadata": {"name": name},
        "spec": body | spec,
    }


# --- one environment ---------------------------------------------------------------------------

PAPER_ARGS = [
    # The controller's behaviour is what is measured, not the exchange's refusals: the limits are lifted and
    # the weight is counted from the request log instead.
    "--weight-limit",
    "1000000000",
    "--orders-per-10s",
    "1000000000",
    "--orders-per-minute",
    "1000000000",
    # Binance allows 200 open conditional orders per account; 1,000 protected Positions need 1,000.
    "--max-algo-orders",
    "1000000",
    # Bybit's 600 requests per 5 s per IP (its per-account order limits stay: the controller paces itself by them).
    "--bybit-ip-limit",
    "1000000000",
    "--log-level",
    "WARNING",
]
# 1 Hz mark price updates on every symbol: a calm walk (no jumps, no crashes), so no stop triggers by itself.
CALM_WALK = {
    "walk": {
        "seed": 7,
        "tickMs": 1000,
        "calmVolatility": 0.0003,
        "volatileVolatility": 0.0003,
        "jumpChance": 0.0,
        "crashChance": 0.0,
    }
}


CHART_LEASE = {"WARDEN_LEASE_DURATION": "15", "WARDEN_LEASE_RENEW_DEADLINE": "10", "WARDEN_LEASE_RETRY": "2"}


@dataclass
class Env:
    """One stack (control plane, Postgres, paper exchange) and the controller replicas the harness runs; its
    accounts are on ``venue``'s front."""

    workdir: Path
    venue: BenchVenue = BINANCE
    stack: Stack = field(init=False)
    paper: Paper = field(init=False)
    kube: Kube = field(init=False)
    tap: RequestTap = field(init=False)
    controllers: dict[str, Service] = field(default_factory=dict)
    controller_env: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stack = Stack(self.workdir, paper_args=list(PAPER_ARGS))

    def start(self) -> None:
        self.stack.start()
        self.paper = Paper(self.stack.paper_url)
        self.kube = Kube(self.stack.kubeconfig)
        self.tap = RequestTap(self.paper)
        self.paper.call("/_paper/price-path", CALM_WALK)

    def start_controller(self, name: str = "warden", **env: str) -> Service:
        self.controller_env[name] = env
        # The default lease timings (as deployed), not the tests' 4 s: a 3 s renew deadline is missed on two cores while
        # a thousand Positions ramp up. Recovery is unaffected: a replica restarted under its own name takes its
        # lease back at once.
        service = self.stack.start_controller(name, **(CHART_LEASE | env))
        self.controllers[name] = service
        return service

    def restart_controller(self, name: str = "warden", *, kill: bool, env: dict[str, str] | None = None) -> Service:
        """SIGKILL (a crash) or SIGTERM (a rollout), then start again under the same replica id, with ``env``
        (default: the environment it had)."""
        service = self.controllers[name]
        if kill and service.process is not None:
            service.process.kill()
            service.process.wait()
        else:
            service.stop()
        return self.start_controller(name, **(self.controller_env[name] if env is None else env))

    def alive(self, name: str = "warden") -> Service:
        service = self.controllers[name]
        if not service.alive():
            raise RuntimeError(f"controller {name} died:\n{service.tail(60)}")
        return service

    def account(self, namespace: str) -> PaperAccount:
        self.kube.namespace(namespace)
        account = self.stack.create_paper_account(balance="100000000", venue=self.venue.name)
        self.kube.account(namespace, account, self.stack.paper_url)
        return account

    def stop(self) -> None:
        with contextlib.suppress(AttributeError):  # the tap exists once start() got that far
            self.tap.stop()
        self.stack.stop()


@contextlib.contextmanager
def environment(workdir: Path, venue: BenchVenue = BINANCE) -> Iterator[Env]:
    env = Env(workdir, venue)
    try:
        env.start()
        yield env
    finally:
        env.stop()
