"""The issue-18 scenarios for a peer (freqtrade, nautilus_trader), measured only from the paper exchange's records
(``/_paper/trades``, ``/_paper/orders``, ``/_paper/requests``; times on the exchange clock), exactly as
``bench.warden.scenarios`` measures Warden. Probes run one at a time."""

from __future__ import annotations

import logging
import random
import time
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import Any

from bench.peers.drivers import Peer
from bench.warden.env import ALGO_LISTS, MARKETS, POSITION_READS, BenchTimeout, Env, amount_for, wait_for

log = logging.getLogger("bench.peers")
MARKET_SYMBOL, LIMIT_SYMBOL, DRIFT_SYMBOL, IDLE_SYMBOL = "ETHUSDT", "SOLUSDT", "SEIUSDT", "BTCUSDT"


def _algos(env: Env, peer: Peer, symbol: str) -> list[dict[str, Any]]:
    return [o for o in env.paper.orders(peer.account.api_key, symbol) if o["kind"] == "algo"]


def _resting_stops(env: Env, peer: Peer, symbol: str) -> list[dict[str, Any]]:
    return [o for o in _algos(env, peer, symbol) if o["status"] == "NEW"]


def _first_fill(env: Env, peer: Peer, symbol: str, after: int) -> int | None:
    times = [t["time"] for t in env.paper.trades(peer.account.api_key, symbol) if t["side"] == "BUY"]
    late = [t for t in times if t >= after]
    return min(late) if late else None


def _first_stop(env: Env, peer: Peer, symbol: str, after: int) -> int | None:
    times = [o["time"] for o in _algos(env, peer, symbol) if o["time"] >= after]
    return min(times) if times else None


def _entry_resting(env: Env, peer: Peer, symbol: str, since: int) -> bool:
    orders = env.paper.orders(peer.account.api_key, symbol)
    return any(o["kind"] == "order" and o["status"] == "NEW" and o["time"] >= since for o in orders)


def _flat(env: Env, peer: Peer, symbol: str) -> bool:
    held = [p for p in env.paper.positions(peer.account.api_key) if p["symbol"] == symbol]
    return not any(Decimal(p["positionAmt"]) for p in held) and not _resting_stops(env, peer, symbol)


def _exit(env: Env, peer: Peer, symbol: str, timeout: float) -> None:
    peer.exit(symbol)
    try:
        wait_for(f"{peer.name} flat on {symbol}", lambda: _flat(env, peer, symbol), timeout, 0.2)
    except BenchTimeout:  # a leftover stop the peer did not cancel: take it away, so the next sample starts clean
        log.warning("%s left %s open or a stop resting; closing it on the venue", peer.name, symbol)
        env.paper.call("/_paper/external-close", {"apiKey": peer.account.api_key, "symbol": symbol})
        for o in _resting_stops(env, peer, symbol):
            env.paper.call("/_paper/cancel-algo", {"apiKey": peer.account.api_key, "symbol": symbol} | _id(o))


def _id(order: dict[str, Any]) -> dict[str, Any]:
    return {"clientAlgoId": order["clientOrderId"]}


def _open_protected(env: Env, peer: Peer, symbol: str, timeout: float) -> tuple[int, int]:
    """A market entry; (fill time, first stop time) on the exchange clock."""
    since = env.paper.now()
    peer.enter_market(symbol, amount_for(symbol))
    filled: int = wait_for(f"{peer.name} entry filled", lambda: _first_fill(env, peer, symbol, since), timeout, 0.05)
    stop: int = wait_for(f"{peer.name} stop", lambda: _first_stop(env, peer, symbol, filled), timeout, 0.05)
    return filled, stop


def market_probes(env: Env, peer: Peer, samples: int, timeout: float) -> list[float]:
    """(1) market entry filled -> stop resting; the position closed again by the peer after each sample."""
    out = []
    for _ in range(samples):
        time.sleep(random.uniform(0, 1))  # no phase lock with a polling loop
        try:
            filled, stop = _open_protected(env, peer, MARKET_SYMBOL, timeout)
            out.append(float(stop - filled))
        except BenchTimeout as error:
            log.warning("%s", error)
        _exit(env, peer, MARKET_SYMBOL, timeout)
    return out


def limit_probes(env: Env, peer: Peer, samples: int, timeout: float) -> list[float]:
    """(2) a limit entry under the market, filled by a price move -> stop resting."""
    symbol, spec = LIMIT_SYMBOL, MARKETS[LIMIT_SYMBOL]
    out = []
    for _ in range(samples):
        mark = env.paper.mark(symbol)
        limit = (mark * Decimal("0.995") / spec.tick_size).to_integral_value(ROUND_DOWN) * spec.tick_size
        since = env.paper.now()
        try:
            peer.enter_limit(symbol, amount_for(symbol, limit), limit)

            wait_for(f"{peer.name} limit entry resting", partial(_entry_resting, env, peer, symbol, since), timeout)
            time.sleep(random.uniform(0, 1))
            env.paper.set_price(symbol, limit * Decimal("0.999"))
            filled: int = wait_for("limit filled", partial(_first_fill, env, peer, symbol, since), timeout, 0.05)
            stop: int = wait_for(f"{peer.name} stop", partial(_first_stop, env, peer, symbol, filled), timeout, 0.05)
            out.append(float(stop - filled))
        except BenchTimeout as error:
            log.warning("%s", error)
        finally:
            env.paper.set_price(symbol, mark)
        _exit(env, peer, symbol, timeout)
    return out


def _cleaned(env: Env, peer: Peer, symbol: str, closed_at: int) -> int | None:
    """When the last of the symbol's stops was cancelled after ``closed_at``, once none rests any more."""
    algos = _algos(env, peer, symbol)
    if any(o["status"] == "NEW" for o in algos):
        return None
    late = [o["updateTime"] for o in algos if o["updateTime"] >= closed_at and o["status"] == "CANCELED"]
    return max(late) if late else None


def drift_probes(
    env: Env, peer: Peer, samples: int, timeout: float, close_wait: float
) -> tuple[list[float], list[float | None]]:
    """(3a) the venue cancels the resting stop -> a new one resting (``samples`` times on one position); then (3b)
    the position closed outside -> the leftover stop cancelled, ``samples`` times (a new position each), or ``None``
    if not within ``close_wait`` s, which ends the scenario (the peer still holds that trade)."""
    symbol, key = DRIFT_SYMBOL, peer.account.api_key
    replaced: list[float] = []
    _open_protected(env, peer, symbol, timeout)
    for _ in range(samples):
        time.sleep(random.uniform(0, 1))
        stops = _resting_stops(env, peer, symbol)
        if len(stops) != 1:
            log.warning("%s: %d stops resting on %s", peer.name, len(stops), symbol)
            break
        stop = stops[0]
        env.paper.call("/_paper/cancel-algo", {"apiKey": key, "symbol": symbol} | _id(stop))
        cancelled = next(
            o["updateTime"] for o in _algos(env, peer, symbol) if o["clientOrderId"] == _id(stop)["clientAlgoId"]
        )
        try:
            again: int = wait_for("stop re-placed", partial(_first_stop, env, peer, symbol, cancelled), timeout, 0.05)
            replaced.append(float(again - cancelled))
        except BenchTimeout as error:
            log.warning("%s", error)
            break
    cleanup: list[float | None] = []
    for i in range(samples):
        if i:  # a fresh protected position for every sample after the first
            _open_protected(env, peer, symbol, timeout)
        time.sleep(random.uniform(0, 1))
        closed_at = int(
            env.paper.call("/_paper/external-close", {"apiKey": key, "symbol": symbol})["order"]["updateTime"]
        )
        try:
            cleaned_at: int = wait_for(
                "leftover stop cancelled", partial(_cleaned, env, peer, symbol, closed_at), close_wait, 0.05
            )
        except BenchTimeout:
            cleanup.append(None)  # not within the wait: the peer still holds the trade, so the scenario stops here
            break
        cleanup.append(float(cleaned_at - closed_at))
    return replaced, cleanup


def idle_weight(env: Env, peer: Peer, seconds: float, timeout: float) -> dict[str, Any]:
    """(4) request weight per minute with one quiet open position: the peer's signed requests (its key) and the
    public ones (no key, no Warden replica header; only one system runs at a time)."""
    _open_protected(env, peer, IDLE_SYMBOL, timeout)
    time.sleep(5.0)  # the entry's own aftermath is not "quiet"
    since = env.tap.start()
    time.sleep(seconds)
    records = env.tap.stop()
    until = env.paper.now()
    mine = [r for r in records if r.time >= since and r.replica is None and r.api_key in (peer.account.api_key, None)]
    minutes = (until - since) / 60_000
    by_route: dict[str, float] = {}
    for r in mine:
        by_route[f"{r.method} {r.path}"] = by_route.get(f"{r.method} {r.path}", 0) + r.weight / minutes
    return {
        "weight_per_min": round(sum(r.weight for r in mine) / minutes, 1),
        "requests_per_min": round(len(mine) / minutes, 1),
        "by_route": {k: round(v, 1) for k, v in sorted(by_route.items(), key=lambda kv: -kv[1])},
    }


def recovery(env: Env, peer: Peer, timeout: float) -> dict[str, Any]:
    """(5) SIGKILL and restart with the idle position open: when the restarted process had been answered a request
    showing the position and one showing its stop (by id or in a list of open algo orders)."""
    key = peer.account.api_key
    env.tap.start()
    killed_at = env.paper.now()
    peer.kill9()
    peer.start()

    def reread() -> int | None:
        records = [r for r in env.tap.snapshot() if r.api_key == key and r.status == 200 and r.method == "GET"]
        position = [r.time for r in records if r.path in POSITION_READS]
        stop = [r.time for r in records if r.path == "/fapi/v1/algoOrder" or r.path in ALGO_LISTS]
        return max(min(position), min(stop)) if position and stop else None

    try:
        at: int = wait_for(f"{peer.name} re-read", reread, timeout, 0.5)
        seconds: float | None = round((at - killed_at) / 1000, 2)
    except BenchTimeout:
        seconds = None
    env.tap.stop()
    return {"recovery_s": seconds}


def duplicates(env: Env, peer: Peer) -> dict[str, int]:
    """Client ids used twice, and symbols with more than one resting stop (after the restart settled)."""
    orders = [o for o in env.paper.orders(peer.account.api_key) if o["source"] == "api"]
    ids: dict[tuple[str, str], int] = {}
    resting: dict[str, int] = {}
    for o in orders:
        ids[(o["kind"], o["clientOrderId"])] = ids.get((o["kind"], o["clientOrderId"]), 0) + 1
        if o["kind"] == "algo" and o["status"] == "NEW":
            resting[o["symbol"]] = resting.get(o["symbol"], 0) + 1
    return {
        "repeated_client_ids": sum(n - 1 for n in ids.values()),
        "extra_resting_stops": sum(n - 1 for n in resting.values()),
        "orders": len(orders),
    }
