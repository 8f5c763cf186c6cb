"""The benchmark's scenarios. Latencies are differences of the paper exchange's own timestamps (fill → stop
created, cancel → stop re-created, close → stop cancelled); request cost (Binance's weight, Bybit's requests) is
the exchange's request log; resources are /proc; Kubernetes requests are the API server's
``apiserver_request_total``."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import Any

from bench.warden.env import (
    MARKETS,
    BenchTimeout,
    BenchVenue,
    Env,
    Usage,
    amount_for,
    percentile,
    phase,
    position_manifest,
    unified,
    wait_for,
)
from controller.audit.store import AuditEvent, AuditStore
from controller.exchange.client import make_exchange
from devtools.localenv.stack import PaperAccount
from paper.requestlog import LoggedRequest

log = logging.getLogger("bench")
TERMINAL = {"Closed", "Failed"}
BACKGROUND_SYMBOL = "BTCUSDT"  # the N open Positions
MARKET_PROBE_SYMBOL = "ETHUSDT"  # scenario 1 and 8
LIMIT_PROBE_SYMBOL = "SOLUSDT"  # scenario 2
DRIFT_PROBE_SYMBOL = "SEIUSDT"  # scenario 3: closing it externally touches nothing else


def summary(values: list[float], floor: float | None = None) -> dict[str, Any]:
    p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
    out: dict[str, Any] = {"samples": len(values), "p50_ms": p50, "p99_ms": p99, "max_ms": max(values, default=None)}
    if floor and p50 is not None and p99 is not None:
        out["p50_floor_ratio"] = round(p50 / floor, 2)
        out["p99_floor_ratio"] = round(p99 / floor, 2)
    return out


def _prefix(client_id: str) -> str:
    """Warden's client ids are ``<position>-<purpose><sequence>``: the part before the dash names the Position."""
    return client_id.rsplit("-", 1)[0]


def _status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("status") or {}


# --- the floor ---------------------------------------------------------------------------------


async def _floor(env: Env, account: PaperAccount, namespace: str, samples: int) -> dict[str, Any]:
    """What protecting a fill costs at the least on this machine: read the position (one ccxt round trip),
    record the intent (one status patch), place the stop (one ccxt round trip). Measured raw, before any
    controller runs, with ccxt's client-side throttle off."""
    symbol = unified(MARKET_PROBE_SYMBOL)
    amount = amount_for(MARKET_PROBE_SYMBOL)
    venue = env.venue
    client = make_exchange(venue.name.value, account.api_key, account.secret, base_url=env.stack.paper_url)
    client.enableRateLimit = False
    env.kube.create(namespace, "positions", position_manifest("floor", MARKET_PROBE_SYMBOL, amount))
    read, patch, place, total = [], [], [], []
    try:
        await client.load_markets()
        await client.create_order(symbol, "market", "buy", str(amount))
        mark = env.paper.mark(MARKET_PROBE_SYMBOL)  # the harness's read (ccxt's bybit has no fetch_mark_price)
        tick = MARKETS[MARKET_PROBE_SYMBOL].tick_size
        stop = (mark * Decimal("0.9") / tick).to_integral_value(ROUND_DOWN) * tick
        for i in range(samples):
            t0 = time.perf_counter()
            await client.fetch_positions([symbol])
            t1 = time.perf_counter()
            env.kube.patch_status(namespace, "floor", {"phase": "EntryPlaced", "observedGeneration": i + 1})
            t2 = time.perf_counter()
            params = {"stopLossPrice": str(stop), "reduceOnly": True, "clientOrderId": f"floor-{i}"}
            await client.create_order(symbol, "market", "sell", str(amount), None, params)
            t3 = time.perf_counter()
            await client.cancel_order(None, symbol, {venue.ccxt_client_id: f"floor-{i}", **venue.ccxt_cancel_stop})
            await asyncio.sleep(venue.order_pace_s)  # outside the timed steps
            read.append((t1 - t0) * 1000)
            patch.append((t2 - t1) * 1000)
            place.append((t3 - t2) * 1000)
            total.append((t3 - t0) * 1000)
        await client.create_order(symbol, "market", "sell", str(amount), None, {"reduceOnly": True})
    finally:
        await client.close()
    env.kube.delete(namespace, "floor")
    return {
        "ccxt_read_ms": summary(read),
        "status_patch_ms": summary(patch),
        "ccxt_place_stop_ms": summary(place),
        "fill_to_protect_ms": summary(total),
    }


def floor(env: Env, samples: int) -> dict[str, Any]:
    account = env.account("bench-floor")
    return asyncio.run(_floor(env, account, "bench-floor", samples))


# --- scenario 7: audit events per second -------------------------------------------------------


async def _audit_rate(dsn: str, writers: int, batch: int, seconds: float) -> float:
    store = AuditStore(dsn)
    await store.ready()
    written = 0
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)

    async def writer(w: int) -> None:
        nonlocal written
        n = 0
        while time.perf_counter() < end:
            events = [
                AuditEvent(
                    position_uid=str(uuid.uuid4()),
                    namespace="bench-audit",
                    name=f"writer-{w}",
                    type="StopPlaced",
                    occurred_at=now,
                    account="paper",
                    symbol="BTC/USDT:USDT",
                    phase_before="EntryPlaced",
                    phase_after="Protected",
                    client_order_id=f"w{run}-{w}-{n}",
                    amount=Decimal("0.002"),
                    price=Decimal("61750.0"),
                    message="placing a reduce-only stop",
                    detail={"purpose": "stop"},
                    key=f"{run}/{w}/{n}/{j}",
                )
                for j in range(batch)
            ]
            await store.record(events)
            written += batch
            n += 1

    start = time.perf_counter()
    end = start + seconds
    try:
        await asyncio.gather(*(writer(w) for w in range(writers)))
    finally:
        await store.close()
    return written / (time.perf_counter() - start)


def audit_throughput(env: Env, seconds: float) -> dict[str, Any]:
    """Sustained events/s into the audit store on the run's Postgres: bulk batches, and the controller's shape
    (many Positions each writing a couple of events per step at once)."""
    dsn = env.stack.postgres.url
    bulk = asyncio.run(_audit_rate(dsn, writers=4, batch=500, seconds=seconds))
    shaped = asyncio.run(_audit_rate(dsn, writers=64, batch=2, seconds=seconds))
    return {
        "bulk_4x500_per_s": round(bulk),
        "concurrent_64x2_per_s": round(shaped),
    }


# --- scenario 8: Kubernetes API requests per Position lifecycle --------------------------------


def _minus(after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def lifecycles(env: Env, namespace: str, count: int, idle_s: float) -> dict[str, Any]:
    """Create → Protected → close → Closed → delete → gone, one after another on an otherwise idle controller.
    The API server's counters over that time, minus the harness's own requests and minus the idle rate (lease
    renewals, fleet refresh, watch reconnects) measured just before."""
    env.account(namespace)
    amount = amount_for(MARKET_PROBE_SYMBOL)
    before = env.kube.apiserver_requests()
    time.sleep(idle_s)
    idle = _minus(env.kube.apiserver_requests(), before)
    own_before = dict(env.kube.requests)
    before = env.kube.apiserver_requests()
    start = time.monotonic()
    durations = []
    for i in range(count):
        began = time.monotonic()
        name = f"life-{i}"
        env.kube.create(namespace, "positions", position_manifest(name, MARKET_PROBE_SYMBOL, amount))
        _wait_phase(env, namespace, name, "Protected", 120)
        env.kube.patch_spec(namespace, name, {"state": "Closed"})
        _wait_phase(env, namespace, name, "Closed", 120)
        env.kube.delete(namespace, name)
        _wait_gone(env, namespace, name, 120)
        durations.append(time.monotonic() - began)
    elapsed = time.monotonic() - start
    used = _minus(env.kube.apiserver_requests(), before)
    # The harness counts its own calls under the API server's verb names (GET, LIST, POST, PATCH, DELETE).
    own = {k: v - own_before.get(k, 0) for k, v in env.kube.requests.items()}
    scale = elapsed / idle_s
    controller: dict[str, float] = {}
    for key in set(used) | set(idle):
        left = used.get(key, 0.0) - own.get(key, 0) - idle.get(key, 0.0) * scale
        if left > 0.5:
            controller[f"{key[0]} {key[1]}"] = round(left / count, 1)
    return {
        "lifecycles": count,
        "lifecycle_s_p50": round(percentile(durations, 0.5) or 0, 2),
        "per_lifecycle": round(sum(controller.values()), 1),
        "by_verb_resource": dict(sorted(controller.items(), key=lambda kv: -kv[1])),
        "idle_per_minute": round(sum(idle.values()) * 60 / idle_s, 1),
    }


# --- ramp, steady state ------------------------------------------------------------------------


def background_manifest(i: int, amount: Decimal) -> dict[str, Any]:
    """The N open Positions: long BTC with a 5 % stop; one in twenty trails natively, one in twenty emulated."""
    extra: dict[str, Any] = {}
    if i % 20 == 0:
        extra["trailingStop"] = {"callbackPercent": "5"}
    elif i % 20 == 10:
        extra["trailingStop"] = {"callbackPercent": "5", "mode": "emulated"}
    return position_manifest(f"bg-{i:05d}", BACKGROUND_SYMBOL, amount, **extra)


def ramp(env: Env, counts: Mapping[str, int], timeout: float) -> dict[str, Any]:
    """Bring each namespace to its count of background Positions, all Protected."""
    amount = amount_for(BACKGROUND_SYMBOL)
    start = time.monotonic()
    for namespace, count in counts.items():
        have = {o["metadata"]["name"] for o in env.kube.list(namespace) if o["metadata"]["name"].startswith("bg-")}
        for i in range(count):
            manifest = background_manifest(i, amount)
            if manifest["metadata"]["name"] not in have:
                env.kube.create(namespace, "positions", manifest)

    def protected() -> int:
        return sum(
            1
            for namespace in counts
            for o in env.kube.list(namespace)
            if o["metadata"]["name"].startswith("bg-") and phase(o) == "Protected"
        )

    want = sum(counts.values())
    seen = 0
    try:
        while (seen := protected()) < want:
            for name in env.controllers:
                env.alive(name)
            if time.monotonic() - start > timeout:
                raise BenchTimeout(f"{seen}/{want} Protected after {timeout:.0f}s")
            time.sleep(2)
    except BenchTimeout as error:
        return {
            "positions": want,
            "protected": seen,
            "seconds": round(time.monotonic() - start, 1),
            "error": str(error),
        }
    return {"positions": want, "protected": seen, "seconds": round(time.monotonic() - start, 1)}


def controller_cost(records: Iterable[LoggedRequest], api_keys: dict[str, str], venue: BenchVenue) -> dict[str, Any]:
    """What the controllers' requests (those with a replica header) spend of the venue's budget, by account;
    public requests carry no key, so they are shared out evenly (both venues count the budget per IP anyway)."""
    by_key: dict[str, float] = {label: 0.0 for label in api_keys.values()}
    public = 0
    requests = 0
    for r in records:
        if r.replica is None:
            continue
        requests += 1
        if r.api_key in api_keys:
            by_key[api_keys[r.api_key]] += venue.cost(r)
        elif r.api_key is None:
            public += venue.cost(r)
    share = public / max(len(by_key), 1)
    return {
        "by_account": {k: v + share for k, v in by_key.items()},
        "total": sum(by_key.values()) + public,
        "requests": requests,
    }


def steady(env: Env, seconds: float, api_keys: dict[str, str]) -> dict[str, Any]:
    """A quiet window with N open Positions, prices moving at 1 Hz: the venue's budget spent (``weight_per_min_*``
    on Binance, ``requests_per_min_*`` on Bybit), requests, CPU, memory."""
    usage = {name: Usage(service.pid) for name, service in env.controllers.items()}
    assert env.stack.paper is not None
    paper_usage = Usage(env.stack.paper.pid)
    api_before = env.kube.apiserver_requests()
    since = env.tap.start()
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        for u in [*usage.values(), paper_usage]:
            u.sample()
        for name in env.controllers:
            env.alive(name)
        time.sleep(1.0)
    for u in [*usage.values(), paper_usage]:
        u.sample()
    records = env.tap.stop()
    until = env.paper.now()
    api_used = _minus(env.kube.apiserver_requests(), api_before)
    minutes = (until - since) / 60_000
    venue = env.venue
    cost = controller_cost((r for r in records if r.time >= since), api_keys, venue)
    per_replica: dict[str, dict[str, int]] = {}
    for r in records:
        if r.replica is not None and r.api_key in api_keys:
            counts = per_replica.setdefault(r.replica, {})
            counts[api_keys[r.api_key]] = counts.get(api_keys[r.api_key], 0) + 1
    by_path: dict[str, float] = {}
    for r in records:
        # The accounts measured and public requests, as the total counts them (not an idle account's sweeps).
        if r.replica is not None and r.time >= since and (r.api_key in api_keys or r.api_key is None):
            route = f"{r.method} {r.path}{'' if r.symbol else ' (all symbols)'}"
            by_path[route] = by_path.get(route, 0) + venue.cost(r) / minutes
    return {
        "seconds": round(minutes * 60, 1),
        f"{venue.budget}_per_min_total": round(cost["total"] / minutes, 1),
        f"{venue.budget}_per_min_by_route": {k: round(v, 1) for k, v in sorted(by_path.items(), key=lambda kv: -kv[1])},
        f"{venue.budget}_per_min_by_account": {k: round(v / minutes, 1) for k, v in cost["by_account"].items()},
        # What one account spends: the figure to hold flat in N (the venue budgets orders per account).
        f"{venue.budget}_per_min_per_account": round(cost["total"] / minutes / max(len(api_keys), 1), 1),
        "exchange_requests_per_s": round(cost["requests"] / (minutes * 60), 1),
        "requests_by_replica_and_account": per_replica,
        "k8s_requests_per_s": round(sum(api_used.values()) / (minutes * 60), 1),
        "k8s_requests_per_s_by_verb_resource": {
            f"{verb} {resource}": round(count / (minutes * 60), 2)
            for (verb, resource), count in sorted(api_used.items(), key=lambda kv: -kv[1])[:8]
            if count
        },
        "controllers": {name: u.result() for name, u in usage.items()},
        "paper_exchange": paper_usage.result(),
    }


# --- scenario 1: market entry filled → stop resting ---------------------------------------------


def _fill_time(env: Env, api_key: str, symbol: str, client_id: str) -> int | None:
    times = [t["time"] for t in env.paper.trades(api_key, symbol) if t["clientOrderId"] == client_id]
    return max(times) if times else None


def _first_stop_after(env: Env, api_key: str, symbol: str, prefix: str, after: int) -> int | None:
    times = [
        o["time"]
        for o in env.paper.orders(api_key, symbol)
        if o["kind"] == "algo" and o["clientOrderId"].startswith(prefix + "-") and o["time"] >= after
    ]
    return min(times) if times else None


def _wait_gone(env: Env, namespace: str, name: str, timeout: float) -> None:
    wait_for(f"{namespace}/{name} gone", lambda: env.kube.get(namespace, name) is None, timeout, 0.25)


def _wait_phase(env: Env, namespace: str, name: str, want: str, timeout: float) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        obj = env.kube.get(namespace, name)
        if phase(obj) == "Failed" and want != "Failed":
            raise BenchTimeout(f"{namespace}/{name} failed: {_status(obj)}")
        return obj if phase(obj) == want else None

    found: dict[str, Any] = wait_for(f"{namespace}/{name} {want}", reached, timeout)
    return found


def _has_order(env: Env, api_key: str, symbol: str, client_id: str) -> bool:
    return any(o["clientOrderId"] == client_id for o in env.paper.orders(api_key, symbol))


def _stops_gone(env: Env, api_key: str, symbol: str, prefix: str, after: int) -> int | None:
    """When the last of a Position's stops was cancelled (after ``after``), once none rests any more."""
    algos = [
        o
        for o in env.paper.orders(api_key, symbol)
        if o["kind"] == "algo" and o["clientOrderId"].startswith(prefix + "-")
    ]
    if any(o["status"] == "NEW" for o in algos):
        return None
    late = [o["updateTime"] for o in algos if o["updateTime"] >= after]
    return max(late) if late else None


@dataclass
class Probes:
    """Positions the scenarios create; deleted (closed by Warden) at the end of a stage, or before the next one
    where the venue's cap on conditional orders per symbol would refuse it (``BenchVenue.probes_per_symbol``)."""

    env: Env
    clear_timeout: float
    made: list[tuple[str, str, str]] = field(default_factory=list)  # namespace, name, symbol

    def create(self, namespace: str, manifest: dict[str, Any]) -> str:
        symbol = manifest["spec"]["symbol"]
        room = self.env.venue.probes_per_symbol
        if room is not None and sum(1 for ns, _, s in self.made if (ns, s) == (namespace, symbol)) >= room:
            self.clear(self.clear_timeout)  # between samples: no measurement is running
        self.env.kube.create(namespace, "positions", manifest)
        name: str = manifest["metadata"]["name"]
        self.made.append((namespace, name, symbol))
        return name

    def clear(self, timeout: float) -> None:
        for namespace, name, _ in self.made:
            self.env.kube.delete(namespace, name)
        for namespace, name, _ in self.made:
            try:
                _wait_gone(self.env, namespace, name, timeout)
            except BenchTimeout:
                log.warning("probe %s/%s still there", namespace, name)
        self.made.clear()


def market_probes(
    env: Env, probes: Probes, targets: list[tuple[str, str]], samples: int, tag: str, timeout: float
) -> dict[str, Any]:
    """Market entries one at a time (round robin over ``targets`` = (namespace, api key)); each: the entry's last
    fill → the first stop of that Position created on the exchange."""
    amount = amount_for(MARKET_PROBE_SYMBOL)
    latencies: list[float] = []
    missed = 0
    for i in range(samples):
        namespace, api_key = targets[i % len(targets)]
        time.sleep(random.uniform(0, 1))  # no phase lock with a polling interval
        name = probes.create(namespace, position_manifest(f"m-{tag}-{i}", MARKET_PROBE_SYMBOL, amount))
        try:
            obj = _wait_phase(env, namespace, name, "Protected", timeout)
        except BenchTimeout as error:
            log.warning("%s", error)
            missed += 1
            continue
        entry = _status(obj)["entryOrder"]["clientOrderId"]
        filled = _fill_time(env, api_key, MARKET_PROBE_SYMBOL, entry)
        stop = _first_stop_after(env, api_key, MARKET_PROBE_SYMBOL, _prefix(entry), filled or 0)
        if filled is None or stop is None:
            missed += 1
            continue
        latencies.append(float(stop - filled))
    return {"latencies_ms": latencies, "missed": missed}


# --- scenario 2: limit entry filled by a price move → stop resting ---------------------------------


def limit_probes(
    env: Env, probes: Probes, namespace: str, api_key: str, samples: int, tag: str, timeout: float
) -> dict[str, Any]:
    symbol, spec = LIMIT_PROBE_SYMBOL, MARKETS[LIMIT_PROBE_SYMBOL]
    latencies: list[float] = []
    missed = 0
    for i in range(samples):
        mark = env.paper.mark(symbol)
        limit = (mark * Decimal("0.995") / spec.tick_size).to_integral_value(ROUND_DOWN) * spec.tick_size
        manifest = position_manifest(
            f"l-{tag}-{i}", symbol, amount_for(symbol, limit), entry={"type": "limit", "price": f"{limit:f}"}
        )
        name = probes.create(namespace, manifest)
        try:
            obj = _wait_phase(env, namespace, name, "EntryPlaced", timeout)
            entry = _status(obj)["entryOrder"]["clientOrderId"]
            wait_for(f"{name}'s entry resting", partial(_has_order, env, api_key, symbol, entry), timeout)
            time.sleep(random.uniform(0, 1))
            env.paper.set_price(symbol, limit * Decimal("0.999"))  # the last price reaches the limit: it fills
            _wait_phase(env, namespace, name, "Protected", timeout)
        except BenchTimeout as error:
            log.warning("%s", error)
            missed += 1
            continue
        finally:
            env.paper.set_price(symbol, mark)
        filled = _fill_time(env, api_key, symbol, entry)
        stop = _first_stop_after(env, api_key, symbol, _prefix(entry), filled or 0)
        if filled is None or stop is None:
            missed += 1
            continue
        latencies.append(float(stop - filled))
    return {"latencies_ms": latencies, "missed": missed}


# --- scenario 3: drift detection ---------------------------------------------------------------


def drift_probes(
    env: Env, probes: Probes, namespace: str, api_key: str, samples: int, tag: str, timeout: float
) -> dict[str, Any]:
    """Per sample, one Position on its own symbol: its stop cancelled by the venue → a new stop created; then the
    position closed on the website → Warden cancels the orphaned stop."""
    symbol = DRIFT_PROBE_SYMBOL
    stop_cancelled: list[float] = []
    closed: list[float] = []
    missed = 0
    for i in range(samples):
        name = probes.create(namespace, position_manifest(f"d-{tag}-{i}", symbol, amount_for(symbol)))
        try:
            obj = _wait_phase(env, namespace, name, "Protected", timeout)
            stop_id = _status(obj)["stopOrder"]["clientOrderId"]
            prefix = _prefix(stop_id)
            time.sleep(random.uniform(0, 1))
            cancel = {"apiKey": api_key, "symbol": symbol, env.venue.cancel_field: stop_id}
            env.paper.call("/_paper/cancel-algo", cancel)
            cancelled_at = next(
                o["updateTime"] for o in env.paper.orders(api_key, symbol) if o["clientOrderId"] == stop_id
            )

            replaced = partial(_first_stop_after, env, api_key, symbol, prefix, cancelled_at)
            stop_cancelled.append(float(wait_for(f"{name}'s stop re-placed", replaced, timeout) - cancelled_at))
            _wait_phase(env, namespace, name, "Protected", timeout)
            time.sleep(random.uniform(0, 1))
            close = env.paper.call("/_paper/external-close", {"apiKey": api_key, "symbol": symbol})
            closed_at = int(close["order"][env.venue.updated_field])

            orphan_cancelled = partial(_stops_gone, env, api_key, symbol, prefix, closed_at)
            closed.append(float(wait_for(f"{name}'s orphan stop cancelled", orphan_cancelled, timeout) - closed_at))
            # The next probe opens on the same symbol: this one must be done closing first (in one-way mode
            # both share one exchange position).
            _wait_phase(env, namespace, name, "Closed", timeout)
        except BenchTimeout as error:
            log.warning("%s", error)
            missed += 1
    return {"stop_cancelled_ms": stop_cancelled, "position_closed_ms": closed, "missed": missed}


# --- scenario 5: restart recovery --------------------------------------------------------------


@dataclass(frozen=True)
class Watched:
    api_key: str
    symbol: str
    orders: tuple[str, ...]  # the client ids of its resting stops


def open_positions(env: Env, namespaces: dict[str, str]) -> list[Watched]:
    """Every open Position with its resting stop (and native trailing stop), from the API server."""
    found = []
    for namespace, api_key in namespaces.items():
        for obj in env.kube.list(namespace):
            status = _status(obj)
            if status.get("phase") in TERMINAL or "entryOrder" not in status:
                continue
            orders = tuple(
                record["clientOrderId"]
                for record in (status.get("stopOrder"), status.get("trailingOrder"))
                if record and record.get("state") == "Open"
            )
            found.append(Watched(api_key, obj["spec"]["symbol"].split("/")[0] + "USDT", orders))
    return found


def _recovered_at(position: Watched, records: list[LoggedRequest], venue: BenchVenue) -> int | None:
    """When the exchange had answered, since the restart, a request that shows this Position's size and one that
    shows each of its stops (by client id, or in a list of the symbol's or the account's open stops: Binance's open
    algo orders, Bybit's one order list)."""

    def answered(match: Any) -> int | None:
        times = [r.time for r in records if r.api_key == position.api_key and r.status == 200 and match(r)]
        return min(times) if times else None

    def symbol_ok(r: LoggedRequest) -> bool:
        return r.symbol in (None, position.symbol)

    seen = [answered(lambda r: r.method == "GET" and r.path in venue.position_reads and symbol_ok(r))]
    for client_id in position.orders:
        seen.append(
            answered(
                lambda r, c=client_id: (
                    r.method == "GET"
                    and (
                        (r.path in venue.stop_lookups and r.client_order_id == c)
                        or (r.path in venue.stop_lists and r.client_order_id is None and symbol_ok(r))
                    )
                )
            )
        )
    return None if any(t is None for t in seen) else max(t for t in seen if t is not None)


def recovery(env: Env, namespaces: dict[str, str], timeout: float, name: str = "warden") -> dict[str, Any]:
    watched = open_positions(env, namespaces)
    env.tap.start()
    killed_at = env.paper.now()
    env.restart_controller(name, kill=True)
    pending = list(watched)
    last = killed_at
    began = time.monotonic()
    while pending and time.monotonic() - began < timeout:
        time.sleep(1.0)
        env.alive(name)
        records = env.tap.snapshot()
        still = []
        for position in pending:
            at = _recovered_at(position, records, env.venue)
            if at is None:
                still.append(position)
            else:
                last = max(last, at)
        pending = still
    env.tap.stop()
    return {
        "positions": len(watched),
        "stops": sum(len(p.orders) for p in watched),
        "recovery_s": None if pending else round((last - killed_at) / 1000, 2),
        "not_recovered": len(pending),
    }


def duplicates(env: Env, namespaces: dict[str, str]) -> dict[str, int]:
    """Orders sent twice: a client id used by more than one order, or a Position with more than one resting order
    of the same purpose. Also the exchange's positions against what the Positions say they hold."""
    repeated = extra_entries = extra_open = mismatched = 0
    for namespace, api_key in namespaces.items():
        orders = [o for o in env.paper.orders(api_key) if o["source"] == "api"]
        ids: dict[tuple[str, str], int] = {}
        entries: dict[str, int] = {}
        open_by_purpose: dict[str, int] = {}
        for o in orders:
            ids[(o["kind"], o["clientOrderId"])] = ids.get((o["kind"], o["clientOrderId"]), 0) + 1
            if o["kind"] == "order" and not o["reduceOnly"] and not o["closePosition"]:
                entries[_prefix(o["clientOrderId"])] = entries.get(_prefix(o["clientOrderId"]), 0) + 1
            if o["kind"] == "algo" and o["status"] == "NEW":
                purpose = o["clientOrderId"].rstrip("0123456789")
                open_by_purpose[purpose] = open_by_purpose.get(purpose, 0) + 1
        repeated += sum(n - 1 for n in ids.values())
        extra_entries += sum(n - 1 for n in entries.values())
        extra_open += sum(n - 1 for n in open_by_purpose.values())
        expected: dict[str, Decimal] = {}
        for obj in env.kube.list(namespace):
            status = _status(obj)
            if status.get("phase") in ("EntryPlaced", "Protected", "Closing"):
                symbol = obj["spec"]["symbol"].split("/")[0] + "USDT"
                expected[symbol] = expected.get(symbol, Decimal(0)) + Decimal(status.get("filled") or "0")
        held = {p["symbol"]: Decimal(p["positionAmt"]) for p in env.paper.positions(api_key)}
        mismatched += sum(1 for s in set(expected) | set(held) if expected.get(s, 0) != held.get(s, 0))
    return {
        "repeated_client_ids": repeated,
        "extra_entries": extra_entries,
        "extra_resting_stops": extra_open,
        "position_mismatches": mismatched,
    }
