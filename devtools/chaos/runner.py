"""Run a chaos schedule on the real local environment: two controller replicas, kube-apiserver + etcd,
Postgres and the paper exchange, with Positions created and ended as planned while faults hit.

The runner is the only thing that touches the processes: it SIGKILLs and pauses replicas, restarts them
(arming a failpoint on some restarts, so a replica also dies right before/after an exchange call or a status
write), stops Postgres and kube-apiserver for a while, and asks the paper exchange for faults, gaps,
external closes and venue-cancelled stops. Every fault is logged with its start and end on the wall clock
(the paper exchange's clock in these runs) for the checker.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import itertools
import json
import logging
import random
import signal
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from controller.api.v1alpha1 import GROUP, VERSION
from devtools.chaos.evidence import Evidence, FaultRecord, PositionRecord, collect
from devtools.chaos.schedule import FAILPOINTS, MARKETS, AccountRef, Action, Plan
from devtools.localenv.processes import Service
from devtools.localenv.stack import PaperAccount, Stack, exchange_account_manifest
from paper.models import VenueName
from paper.requestlog import venue_of_path

REPLICAS = ("replica-a", "replica-b")
GAP_HOLD_S = 3.0
RESTART_DELAY_S = 0.5
DRAIN_TIMEOUT_S = 420.0
log = logging.getLogger("warden.chaos")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Tally:
    kills: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    """Faults of the whole run: processes, dependencies, price gaps (one price per symbol for both venues)."""
    venues: defaultdict[VenueName, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """What happened on one venue's accounts: Positions created and deleted, venue faults armed, stops the venue
    cancelled, external closes."""
    skipped: Counter[str] = field(default_factory=Counter)


class Chaos:
    def __init__(self, plan: Plan, workdir: Path, say: Callable[[str], None] = print) -> None:
        self.plan = plan
        self.workdir = workdir
        self.say = say
        self.stack = Stack(workdir)
        self.rng = random.Random(plan.seed * 7919 + 1)
        order = list(FAILPOINTS)
        self.rng.shuffle(order)
        self.next_failpoint = itertools.cycle(order)
        self.arming = True
        self.replicas: dict[str, Service] = {}
        self.armed: dict[str, str] = {}
        self.deliberate: set[int] = set()  # pids the runner killed itself
        self.faults: list[FaultRecord] = []
        self.tally = Tally()
        self.accounts: dict[AccountRef, PaperAccount] = {}
        self.ledger: dict[str, PositionRecord] = {}
        self.plans = {p.name: p for p in plan.positions}
        self.lock = threading.RLock()
        self.background: list[threading.Thread] = []
        self.stopping = threading.Event()

    # --- environment ------------------------------------------------------------------------------

    def start(self) -> None:
        self.say(f"==> starting the environment in {self.workdir}")
        self.stack.start()
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            str(self.stack.kubeconfig), client_configuration=config
        )
        api = kubernetes.client.ApiClient(config)
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.core = kubernetes.client.CoreV1Api(api)
        self.coordination = kubernetes.client.CoordinationV1Api(api)
        for symbol, (_, base, _, _) in MARKETS.items():
            self.stack.paper_admin("/_paper/price", {"symbol": symbol, "price": str(base)})
        for ref in self.plan.accounts:
            self.accounts[ref] = self.stack.create_paper_account(balance="1000000", venue=ref.venue)
            self.add_account(ref)
        for name in REPLICAS:
            self.start_replica(name)

    def add_account(self, ref: AccountRef) -> None:
        namespace, account = ref.namespace, self.accounts[ref]
        self.core.create_namespace(kubernetes.client.V1Namespace(metadata={"name": namespace}))
        secret = kubernetes.client.V1Secret(
            metadata={"name": "paper-credentials"},
            data={
                "apiKey": base64.b64encode(account.api_key.encode()).decode(),
                "secret": base64.b64encode(account.secret.encode()).decode(),
            },
        )
        self.core.create_namespaced_secret(namespace, secret)
        body = exchange_account_manifest(self.stack.paper_url, ref.venue)
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "exchangeaccounts", body)

    def start_replica(self, name: str) -> None:
        env: dict[str, str] = {}
        armed = ""
        if self.arming and self.rng.random() < self.plan.failpoint_share:
            armed = f"{next(self.next_failpoint)}@{self.rng.randint(1, 3)}"
            env["WARDEN_FAILPOINTS"] = armed
        with self.lock:
            self.replicas[name] = self.stack.start_controller(name, **env)
            self.armed[name] = armed

    def supervise(self) -> None:
        """Restart every replica that died; a death the runner did not cause is a failpoint's."""
        while not self.stopping.is_set():
            for name in REPLICAS:
                with self.lock:
                    service = self.replicas[name]
                    if service.alive() or service.process is None:
                        continue
                    pid, code = service.pid, service.process.returncode
                    moment = now_ms()
                    if pid in self.deliberate:
                        self.deliberate.discard(pid)
                    elif code == -signal.SIGKILL and self.armed[name]:
                        self.faults.append(FaultRecord("failpoint", moment, moment, name, self.armed[name]))
                        self.tally.kills["failpoint " + self.armed[name].split("@")[0]] += 1
                    else:  # not a fault the runner injected: a finding, never an excuse for the checker
                        self.tally.faults[f"unexpected exit {code}"] += 1
                        self.say(f"    {name} exited by itself ({code}):\n{service.tail(20)}")
                time.sleep(RESTART_DELAY_S)
                self.start_replica(name)
            time.sleep(0.2)

    def leader(self) -> str | None:
        try:
            lease = self.coordination.read_namespaced_lease("warden-leader", "default", _request_timeout=3)
        except Exception:  # the API server may be down: then nobody can tell
            return None
        holder: str | None = lease.spec.holder_identity if lease.spec is not None else None
        return holder

    def pick(self, leader: bool) -> tuple[str, bool]:
        """A replica to hit: the lease holder or the other one; and whether it holds the lease."""
        current = self.leader()
        if current not in REPLICAS:
            return self.rng.choice(REPLICAS), False
        return (current, True) if leader else (next(n for n in REPLICAS if n != current), False)

    def background_task(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.background.append(thread)

    # --- actions ---------------------------------------------------------------------------------

    def do(self, action: Action) -> None:
        handler = getattr(self, f"do_{action.kind}")
        handler(**action.args)

    def position_namespace(self, name: str) -> str:
        return self.plans[name].account.namespace

    def do_create(self, names: list[str]) -> None:
        for name in names:
            if name in self.ledger:
                continue
            plan = self.plans[name]
            namespace = self.position_namespace(name)
            created: Any = self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "positions", plan.manifest("paper"), _request_timeout=10
            )
            _, _, amount, _ = MARKETS[plan.symbol]
            self.ledger[name] = PositionRecord(
                namespace,
                name,
                created["metadata"]["uid"],
                self.accounts[plan.account].api_key,
                plan.symbol,
                plan.side,
                Decimal(amount),
                venue=plan.venue,
            )
            self.tally.venues[plan.venue]["positions"] += 1
        for venue in {self.plans[name].venue for name in names}:
            self.tally.venues[venue]["burst create" if len(names) > 1 else "create"] += 1

    def do_close(self, names: list[str]) -> None:
        for name in names:
            self.patch_closed(name)

    def patch_closed(self, name: str) -> None:
        try:
            self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.position_namespace(name),
                "positions",
                name,
                {"spec": {"state": "Closed"}},
                _request_timeout=10,
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def do_delete(self, names: list[str]) -> None:
        for name in names:
            if name not in self.ledger:
                continue
            try:
                self.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, self.position_namespace(name), "positions", name, _request_timeout=10
                )
            except ApiException as error:
                if error.status != 404:
                    raise
            self.ledger[name] = replace(self.ledger[name], deleted=True)
        for venue in {self.plans[name].venue for name in names}:
            self.tally.venues[venue]["burst delete" if len(names) > 1 else "delete"] += 1

    def do_gap(self, symbol: str, percent: str, side: str) -> None:
        _, base, _, places = MARKETS[symbol]
        move = Decimal(percent) / 100
        gapped = round(base * (1 - move if side == "long" else 1 + move), places)
        start = now_ms()
        self.stack.paper_admin("/_paper/price", {"symbol": symbol, "price": str(gapped)})
        self.tally.faults["price gap"] += 1

        def restore() -> None:
            time.sleep(GAP_HOLD_S)
            self.stack.paper_admin("/_paper/price", {"symbol": symbol, "price": str(base)})
            with self.lock:
                self.faults.append(FaultRecord("gap", start, now_ms(), symbol, f"{base} -> {gapped}"))

        self.background_task(restore)

    def do_external_close(self, name: str) -> None:
        record = self.ledger.get(name)
        if record is None:
            self.tally.skipped["external close"] += 1
            return
        moment = now_ms()
        result = self.stack.paper_admin("/_paper/external-close", {"apiKey": record.api_key, "symbol": record.symbol})
        closed = isinstance(result, dict) and result.get("closed")
        self.tally.venues[record.venue]["external close" if closed else "external close (nothing held)"] += 1
        with self.lock:
            self.faults.append(FaultRecord("external_close", moment, moment, record.api_key, name))

    def do_cancel_stop(self, name: str) -> None:
        record = self.ledger.get(name)
        if record is None:
            self.tally.skipped["cancel stop"] += 1
            return
        orders = self.stack.paper_admin(f"/_paper/orders?apiKey={record.api_key}&symbol={record.symbol}")
        assert isinstance(orders, list)
        stops: list[dict[str, Any]] = [  # Warden's own (not a stop Bybit attached to an entry)
            o
            for o in orders
            if o["kind"] == "algo" and o["status"] == "NEW" and o["type"] == "STOP_MARKET" and o["source"] == "api"
        ]
        if not stops:
            self.tally.skipped["cancel stop"] += 1
            return
        moment = now_ms()
        cancel = {"apiKey": record.api_key, "symbol": record.symbol, "clientAlgoId": stops[0]["clientAlgoId"]}
        self.stack.paper_admin("/_paper/cancel-algo", cancel)
        self.tally.venues[record.venue]["stop cancelled by the venue"] += 1
        with self.lock:
            self.faults.append(FaultRecord("cancel_algo", moment, moment, record.api_key, name))

    def do_exchange_fault(self, venue: VenueName, rule: dict[str, Any]) -> None:
        self.stack.paper_admin("/_paper/faults", rule)
        kind = rule["mode"] + (f" {rule['status']}" if "status" in rule else "")
        if rule["mode"] == "timeout":
            kind += " (executed)" if rule.get("executed") else " (not executed)"
        self.tally.venues[venue][f"exchange {kind} armed"] += 1

    def do_kill(self, leader: bool, index: int) -> None:
        name, leading = self.pick(leader)
        with self.lock:
            service = self.replicas[name]
            if not service.alive() or service.process is None:
                self.tally.skipped["kill (already down)"] += 1
                return
            self.deliberate.add(service.pid)
            service.process.send_signal(signal.SIGKILL)
            moment = now_ms()
            self.faults.append(FaultRecord("kill", moment, moment, name, f"#{index}"))
            self.tally.kills["SIGKILL leader" if leading else "SIGKILL standby"] += 1

    def do_pause(self, seconds: float) -> None:
        name, _ = self.pick(leader=True)
        with self.lock:
            service = self.replicas[name]
            process = service.process
            if process is None or not service.alive():
                self.tally.skipped["pause"] += 1
                return
            process.send_signal(signal.SIGSTOP)
        start = now_ms()
        self.tally.faults["SIGSTOP/SIGCONT"] += 1

        def resume() -> None:
            time.sleep(seconds)
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
            with self.lock:
                self.faults.append(FaultRecord("pause", start, now_ms(), name, f"{seconds:.1f}s"))

        self.background_task(resume)

    def do_postgres(self, seconds: float) -> None:
        self.outage("postgres", "Postgres stopped", self.stack.postgres.stop, self.stack.postgres.start, seconds)

    def do_apiserver(self, seconds: float) -> None:
        plane = self.stack.control_plane
        self.outage("apiserver", "kube-apiserver restarted", plane.stop_apiserver, plane.start_apiserver, seconds)

    def outage(
        self, kind: str, label: str, stop: Callable[[], None], start: Callable[[], None], seconds: float
    ) -> None:
        """Stop a dependency for ``seconds`` in the background, then start it again (and wait until it answers)."""
        self.tally.faults[label] += 1

        def down_and_up() -> None:
            began = now_ms()
            stop()
            time.sleep(seconds)
            start()
            with self.lock:
                self.faults.append(FaultRecord(kind, began, now_ms(), "", f"{seconds:.1f}s"))

        self.background_task(down_and_up)

    # --- the run ---------------------------------------------------------------------------------

    def execute(self) -> None:
        begin = time.monotonic()
        queue = [(a.at, i, a, 0) for i, a in enumerate(self.plan.actions)]
        heapq.heapify(queue)
        counter = itertools.count(len(queue))
        report_due = 30.0  # seconds into the run, like the actions' times
        while queue:
            at, _, action, attempt = heapq.heappop(queue)
            delay = begin + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elapsed = time.monotonic() - begin
            if elapsed >= report_due:
                report_due = elapsed + 30
                self.say(f"    t={elapsed:5.0f}s kills={sum(self.tally.kills.values())} positions={len(self.ledger)}")
            try:
                self.do(action)
            except Exception as error:  # e.g. the API server is down right now: try again shortly
                if attempt >= 20:
                    self.say(f"    gave up on {action.kind} {action.args}: {error}")
                    self.tally.skipped[action.kind] += 1
                    continue
                heapq.heappush(queue, (time.monotonic() - begin + 2.0, next(counter), action, attempt + 1))

    def drain(self) -> None:
        """Stop injecting; close what is still open; wait until every Position is finished or gone."""
        self.say("==> draining: closing what is open and waiting for every Position to finish")
        self.arming = False
        for thread in self.background:
            thread.join()
        for symbol, (_, base, _, _) in MARKETS.items():
            self.stack.paper_admin("/_paper/price", {"symbol": symbol, "price": str(base)})
        for name, record in self.ledger.items():
            if not record.deleted:
                self.patch_closed(name)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            unfinished = self.unfinished()
            if not unfinished:
                return
            time.sleep(1.0)
        self.say(f"    still unfinished after {DRAIN_TIMEOUT_S:.0f}s: {sorted(self.unfinished())}")

    def statuses(self) -> dict[str, dict[str, Any] | None]:
        """name → status, or None when the object is gone."""
        found: dict[str, dict[str, Any] | None] = {name: None for name in self.ledger}
        for ref in self.accounts:
            listed: Any = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, "positions", _request_timeout=10
            )
            for obj in listed["items"]:
                if obj["metadata"]["name"] in found:
                    found[obj["metadata"]["name"]] = obj.get("status") or {}
        return found

    def unfinished(self) -> list[str]:
        try:
            statuses = self.statuses()
        except Exception:
            return ["(API server unreachable)"]
        waiting = []
        for name, status in statuses.items():
            if self.ledger[name].deleted:
                if status is not None:
                    waiting.append(name)
            elif status is None or status.get("phase") not in ("Closed", "Failed") or status.get("auditBacklog"):
                waiting.append(name)
        return waiting

    def evidence(self) -> Evidence:
        statuses = self.statuses()
        positions = [
            replace(record, status=statuses.get(name) or {}, deleted=record.deleted or statuses.get(name) is None)
            for name, record in sorted(self.ledger.items())
        ]
        with self.lock:
            faults = list(self.faults)
        return asyncio.run(collect(self.stack.paper_url, self.stack.postgres.url, positions, faults, now_ms()))

    def paper_fault_counts(self) -> dict[VenueName, Counter[str]]:
        """The faults the paper exchange injected, per venue: a request's by its path, an admin action's by its
        account."""
        with urllib.request.urlopen(f"{self.stack.paper_url}/_paper/faults", timeout=30) as response:
            body = json.loads(response.read())
        venue_of_key = {account.api_key: ref.venue for ref, account in self.accounts.items()}
        fired: dict[VenueName, Counter[str]] = defaultdict(Counter)
        for event in body.get("log", []):
            path = event.get("path")
            venue = venue_of_path(path) if path is not None else venue_of_key[event["apiKey"]]
            fired[venue][event["mode"]] += 1
        return fired

    def run(self) -> tuple[Evidence, dict[str, Any]]:
        supervisor = threading.Thread(target=self.supervise, daemon=True)
        try:
            self.start()
            supervisor.start()
            self.say(
                f"==> running seed {self.plan.seed}: {len(self.plan.positions)} positions, "
                f"{self.plan.counts().get('kill', 0)} timed kills, {self.plan.duration:.0f}s"
            )
            self.execute()
            self.drain()
            evidence = self.evidence()
            fired = self.paper_fault_counts()
            summary = {
                "seed": self.plan.seed,
                "positions": len(self.ledger),
                "kills": dict(self.tally.kills),
                "faults": dict(self.tally.faults),
                "venues": {
                    venue.value: {
                        "accounts": sum(1 for ref in self.accounts if ref.venue is venue),
                        **dict(self.tally.venues[venue]),
                        "venue_faults_fired": dict(fired[venue]),
                    }
                    for venue in self.plan.venues
                },
                "skipped": dict(self.tally.skipped),
            }
            return evidence, summary
        finally:
            self.stopping.set()
            if supervisor.is_alive():
                supervisor.join()
            for service in self.replicas.values():
                if service.process is not None and service.alive():
                    service.process.send_signal(signal.SIGCONT)
            self.stack.stop()
