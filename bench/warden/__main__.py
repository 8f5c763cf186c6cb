"""Warden's benchmark on the local real components (``make bench``; not part of ``make test``).

    .venv/bin/python -m bench.warden [--sizes 1,10,100,1000] [--accounts 4x150] [--shards 2x50] [--samples 20] ...

Starts its own control plane, Postgres and paper exchange (rate limits lifted, 1 Hz calm price walk on every
symbol), runs the scenarios of docs/PERFORMANCE.md and writes ``bench/results/<date>.json`` and the results
section of ``docs/PERFORMANCE.md``. Sizes run in ascending order, each adding Positions to the last, on one
account up to ``--per-account`` and spread evenly over as many accounts as a larger size needs (one controller).
``--accounts 0`` / ``--shards 0`` skip those runs.

``--venues`` (default both): ``binanceusdm`` runs all of the above on Binance accounts; ``bybit`` runs the
venue-dependent scenarios again on a Bybit account, in an environment of its own, at ``--bybit-sizes``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.warden import report, scenarios
from bench.warden.env import BYBIT, BYBIT_CONDITIONAL_CAP, Env, environment, wait_for
from controller.exchange.binanceusdm import CAPABILITIES as BINANCE_CAPABILITIES
from paper.models import VenueName

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("bench")
Save = Callable[[], None]
# Bybit rests at most 10 conditional orders per symbol per account, and Warden enters only with room for a stop and
# its replacement: at most 9 protected Positions on the one background symbol (a real Bybit account's limit too).
BYBIT_MAX_N = BYBIT_CONDITIONAL_CAP - 1
assert BINANCE_CAPABILITIES.conditional_cap is not None
BINANCE_CONDITIONAL_CAP = BINANCE_CAPABILITIES.conditional_cap.limit
"""Open algo orders per Binance account; Warden enters only with room for a stop and its replacement, so about
this many protected Positions fit one account, less the probes a stage adds (see ``--per-account``)."""


def _pair(text: str) -> tuple[int, int]:
    if text in ("0", ""):
        return (0, 0)
    count, size = text.lower().split("x")
    return int(count), int(size)


def _venues(text: str) -> list[VenueName]:
    try:
        return [VenueName(name) for name in text.split(",") if name]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error}; venues: {', '.join(v.value for v in VenueName)}") from None


def _bybit_sizes(text: str) -> list[int]:
    sizes = sorted(int(s) for s in text.split(",") if s)
    if not sizes or sizes[0] < 1 or sizes[-1] > BYBIT_MAX_N:
        raise argparse.ArgumentTypeError(f"Bybit sizes must be 1 to {BYBIT_MAX_N} (10 conditional orders per symbol)")
    return sizes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.warden", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,10,100,1000", help="open Positions on one account, ascending")
    p.add_argument("--primary", type=int, default=100, help="the size the *_n100 keys and scenario 2 use")
    p.add_argument(
        "--per-account",
        type=int,
        default=150,
        help=f"background Positions per Binance account before a size spreads over more (cap {BINANCE_CONDITIONAL_CAP}"
        " algo orders per account, less room for the probes: at the primary size 20 market and 3x20 limit probes)",
    )
    p.add_argument("--accounts", default="4x150", help="accounts x Positions each, one controller (0: skip)")
    p.add_argument("--shards", default="2x50", help="namespace shards x Positions each, one controller each")
    p.add_argument(
        "--venues",
        type=_venues,
        default=[VenueName.BINANCE_USDM, VenueName.BYBIT],
        help="binanceusdm: every run above; bybit: the venue-dependent scenarios on a Bybit account (default both)",
    )
    p.add_argument(
        "--bybit-sizes",
        type=_bybit_sizes,
        default=[1, 8],
        help=f"open Positions on the Bybit account, ascending; the largest is its primary (at most {BYBIT_MAX_N})",
    )
    p.add_argument("--samples", type=int, default=20, help="probes per latency scenario and size")
    p.add_argument("--steady-seconds", type=float, default=60.0, help="steady-state window per size")
    p.add_argument("--lifecycles", type=int, default=5, help="Position lifecycles for the API request count")
    p.add_argument("--floor-samples", type=int, default=50)
    p.add_argument("--audit-seconds", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=120.0, help="per probe wait, seconds")
    p.add_argument("--ramp-timeout", type=float, default=1800.0, help="to bring a size's Positions to Protected")
    p.add_argument("--out", type=Path, help="results JSON (default bench/results/<date>.json)")
    p.add_argument("--docs", type=Path, default=ROOT / "docs" / "PERFORMANCE.md", help="'-' to skip")
    p.add_argument("--workdir", type=Path, help="keep the environments' files here (default: a temp dir)")
    return p


def probe_room_problem(primary: int, per_account: int, samples: int) -> str | None:
    """Why the primary size's probes would not fit on its first account, or None. That account holds its share of
    the background Positions and every probe of scenarios 1 and 2 (market probes go round the accounts; the three
    limit runs use the first), which stay open until the stage ends. Past Binance's cap on open conditional orders
    Warden refuses them (``ConditionalOrderCap``) and the scenarios count them as missed."""
    accounts = math.ceil(primary / per_account)
    # A stop each; room for one replacement and the drift probe's stop and its replacement on top.
    need = math.ceil(primary / accounts) + math.ceil(samples / accounts) + 3 * samples + 4
    if need <= BINANCE_CONDITIONAL_CAP:
        return None
    return (
        f"--samples {samples} at --primary {primary} needs {need} open conditional orders on the first account, over"
        f" Binance's {BINANCE_CONDITIONAL_CAP}: lower --samples or --per-account"
    )


def _wait_ready(env: Env, name: str) -> None:
    port = (env.controllers[name].env or {})["WARDEN_HEALTH_PORT"]

    def ready() -> bool:
        env.alive(name)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_for(f"{name} ready", ready, 120, 0.5)


def _latency(stage: dict[str, Any], key: str, values: list[float], floor_ms: float | None) -> None:
    stage[key] = scenarios.summary(values, floor_ms)


def spread(n: int, namespaces: list[str]) -> dict[str, int]:
    """``n`` background Positions over ``namespaces`` as evenly as they go, the first ones taking the remainder."""
    share, extra = divmod(n, len(namespaces))
    return {ns: share + (i < extra) for i, ns in enumerate(namespaces)}


def run_stage(
    env: Env,
    args: argparse.Namespace,
    accounts: dict[str, str],
    n: int,
    floor_ms: float | None,
    *,
    primary: bool,
    smallest: bool = False,
) -> dict[str, Any]:
    """One size, its ``n`` background Positions spread over ``accounts`` (namespace: API key). Market probes go
    round the accounts; the other probes use the first. The primary size also runs without the stream (limit fills,
    drift) and with it forced on; the smallest also measures its request cost without the stream."""
    keys = {api_key: namespace for namespace, api_key in accounts.items()}
    namespace, api_key = next(iter(accounts.items()))
    stage: dict[str, Any] = {"n": n, "accounts": len(accounts)}
    log.info("N=%d: ramp over %d account(s)", n, len(accounts))
    stage["ramp"] = scenarios.ramp(env, spread(n, list(accounts)), args.ramp_timeout)
    log.info("N=%d: steady state (%s)", n, stage["ramp"])
    stage["steady"] = scenarios.steady(env, args.steady_seconds, keys)
    probes = scenarios.Probes(env, args.timeout * 3)
    log.info("N=%d: market probes", n)
    market = scenarios.market_probes(env, probes, list(accounts.items()), args.samples, str(n), args.timeout)
    _latency(stage, "fill_to_protect", market["latencies_ms"], floor_ms)
    stage["fill_to_protect"]["missed"] = market["missed"]
    log.info("N=%d: drift probes", n)
    drift = scenarios.drift_probes(env, probes, namespace, api_key, args.samples, str(n), args.timeout)
    _latency(stage, "drift_stop_cancelled", drift["stop_cancelled_ms"], floor_ms)
    _latency(stage, "drift_position_closed", drift["position_closed_ms"], floor_ms)
    stage["drift_missed"] = drift["missed"]
    if primary or smallest:
        stage["limit_fill_to_protect"] = {}
        for mode, extra in (("default", None), ("rest", "false"), ("stream", "true")):
            if extra is not None:
                log.info("N=%d: restart with WARDEN_USER_STREAM=%s", n, extra)
                env.restart_controller("warden", kill=False, env={"WARDEN_USER_STREAM": extra})
                _wait_ready(env, "warden")
            if mode == "rest" and smallest:  # what the reads cost when no stream stands in for them
                log.info("N=%d: steady state without the stream", n)
                stage["steady_rest"] = scenarios.steady(env, args.steady_seconds, keys)
            if not primary:
                continue
            log.info("N=%d: limit probes (%s)", n, mode)
            limit = scenarios.limit_probes(env, probes, namespace, api_key, args.samples, f"{n}-{mode}", args.timeout)
            stage["limit_fill_to_protect"][mode] = scenarios.summary(limit["latencies_ms"], floor_ms)
            stage["limit_fill_to_protect"][mode]["missed"] = limit["missed"]
            if mode == "rest":
                log.info("N=%d: drift probes without the stream", n)
                rest = scenarios.drift_probes(env, probes, namespace, api_key, args.samples, f"{n}-rest", args.timeout)
                stage["drift_rest"] = {
                    "stop_cancelled": scenarios.summary(rest["stop_cancelled_ms"], floor_ms),
                    "position_closed": scenarios.summary(rest["position_closed_ms"], floor_ms),
                    "missed": rest["missed"],
                }
        env.restart_controller("warden", kill=False, env={})  # back to the default
        _wait_ready(env, "warden")
    log.info("N=%d: removing probes", n)
    probes.clear(args.timeout * 3)
    log.info("N=%d: SIGKILL and recovery", n)
    stage["recovery"] = scenarios.recovery(env, accounts, max(120.0, n * 0.5))
    stage["duplicates"] = scenarios.duplicates(env, accounts)
    log.info("N=%d done: %s", n, json.dumps({k: v for k, v in stage.items() if k != "steady"}, default=str)[:800])
    return stage


def run_main(args: argparse.Namespace, workdir: Path, sizes: list[int], out: dict[str, Any], save: Save) -> None:
    with environment(workdir / "main") as env:
        log.info("floor")
        out["floor"] = scenarios.floor(env, args.floor_samples)
        log.info("audit store throughput")
        out["audit"] = scenarios.audit_throughput(env, args.audit_seconds)
        env.start_controller("warden")
        _wait_ready(env, "warden")
        log.info("lifecycles (Kubernetes API requests)")
        out["lifecycle"] = scenarios.lifecycles(env, "bench-life", args.lifecycles, idle_s=20.0)
        save()
        floor_ms = out["floor"]["fill_to_protect_ms"]["p50_ms"]
        accounts = {"bench": env.account("bench").api_key}
        out["stages"] = []
        for n in sizes:
            while len(accounts) * args.per_account < n:
                namespace = f"bench-{len(accounts) + 1}"
                accounts[namespace] = env.account(namespace).api_key
            out["stages"].append(
                run_stage(env, args, dict(accounts), n, floor_ms, primary=n == args.primary, smallest=n == min(sizes))
            )
            save()


def run_bybit(args: argparse.Namespace, workdir: Path, out: dict[str, Any], save: Save) -> None:
    """The venue-dependent scenarios on a Bybit account: the floor, then each of ``--bybit-sizes`` as a stage (the
    largest as the primary). An environment of its own, so the Binance figures are measured as without it."""
    sizes: list[int] = args.bybit_sizes
    with environment(workdir / "bybit", BYBIT) as env:
        log.info("bybit: floor")
        out["floor"] = scenarios.floor(env, args.floor_samples)
        env.start_controller("warden")
        _wait_ready(env, "warden")
        floor_ms = out["floor"]["fill_to_protect_ms"]["p50_ms"]
        accounts = {"bench": env.account("bench").api_key}
        out["stages"] = []
        for n in sizes:
            log.info("bybit: N=%d", n)
            stage = run_stage(env, args, accounts, n, floor_ms, primary=n == sizes[-1], smallest=n == sizes[0])
            out["stages"].append(stage)
            save()


def run_accounts(
    args: argparse.Namespace, workdir: Path, count: int, size: int, floor_ms: float | None
) -> dict[str, Any]:
    with environment(workdir / "accounts") as env:
        namespaces = {f"acct-{i}": env.account(f"acct-{i}").api_key for i in range(count)}
        keys = {key: ns for ns, key in namespaces.items()}
        env.start_controller("warden")
        _wait_ready(env, "warden")
        log.info("%d accounts x %d: ramp", count, size)
        result: dict[str, Any] = {"accounts": count, "per_account": size}
        result["ramp"] = scenarios.ramp(env, dict.fromkeys(namespaces, size), args.ramp_timeout)
        result["steady"] = scenarios.steady(env, args.steady_seconds, keys)
        probes = scenarios.Probes(env, args.timeout * 3)
        market = scenarios.market_probes(env, probes, list(namespaces.items()), args.samples, "acct", args.timeout)
        result["fill_to_protect"] = scenarios.summary(market["latencies_ms"], floor_ms) | {"missed": market["missed"]}
        probes.clear(args.timeout * 3)
        result["recovery"] = scenarios.recovery(env, namespaces, max(120.0, count * size * 0.5))
        result["duplicates"] = scenarios.duplicates(env, namespaces)
    return result


def run_shards(
    args: argparse.Namespace, workdir: Path, count: int, size: int, floor_ms: float | None
) -> dict[str, Any]:
    """One controller per namespace (WARDEN_NAMESPACE), each with its own lease (WARDEN_LEASE_NAME)."""
    with environment(workdir / "shards") as env:
        namespaces = {f"shard-{i}": env.account(f"shard-{i}").api_key for i in range(count)}
        keys = {key: ns for ns, key in namespaces.items()}
        for namespace in namespaces:
            env.start_controller(namespace, WARDEN_NAMESPACE=namespace, WARDEN_LEASE_NAME=f"warden-{namespace}")
        for namespace in namespaces:
            _wait_ready(env, namespace)
        result: dict[str, Any] = {"shards": count, "per_shard": size}
        result["ramp"] = scenarios.ramp(env, dict.fromkeys(namespaces, size), args.ramp_timeout)
        result["steady"] = scenarios.steady(env, args.steady_seconds, keys)
        probes = scenarios.Probes(env, args.timeout * 3)
        result["fill_to_protect"] = {}
        for namespace, api_key in namespaces.items():
            market = scenarios.market_probes(env, probes, [(namespace, api_key)], args.samples, namespace, args.timeout)
            result["fill_to_protect"][namespace] = scenarios.summary(market["latencies_ms"], floor_ms) | {
                "missed": market["missed"]
            }
        probes.clear(args.timeout * 3)
        by_replica = result["steady"]["requests_by_replica_and_account"]
        result["cross_shard_requests"] = sum(
            n for replica, counts in by_replica.items() for ns, n in counts.items() if ns != replica
        )
        result["duplicates"] = scenarios.duplicates(env, namespaces)
    return result


def machine() -> dict[str, Any]:
    with open("/proc/meminfo") as meminfo:
        total_kib = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1])
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    return {
        "cores": os.cpu_count(),
        "memory_mib": total_kib // 1024,
        "cpu_model": model,
        "load_average_at_start": list(os.getloadavg()),
        "python": sys.version.split()[0],
    }


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    args = parser().parse_args(argv)
    problem = probe_room_problem(args.primary, args.per_account, args.samples)
    if VenueName.BINANCE_USDM in args.venues and problem is not None:
        parser().error(problem)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    started = time.time()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git_commit": git_commit(),
        "arguments": vars(args) | {"out": str(args.out), "docs": str(args.docs), "workdir": str(args.workdir)},
    }
    out = args.out or ROOT / "bench" / "results" / f"{datetime.now(UTC).date().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        """Written after every part, so a run stopped half-way still leaves what it measured."""
        results["minutes"] = round((time.time() - started) / 60, 1)
        out.write_text(json.dumps(report.headline(results, args.primary) | results, indent=2, default=str) + "\n")

    with tempfile.TemporaryDirectory(prefix="warden-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        if VenueName.BINANCE_USDM in args.venues:
            run_main(args, workdir, sizes, results, save)
        if VenueName.BYBIT in args.venues:
            results["bybit"] = {}
            run_bybit(args, workdir, results["bybit"], save)
            save()
        if VenueName.BINANCE_USDM in args.venues:
            floor_ms = results["floor"]["fill_to_protect_ms"]["p50_ms"]
            accounts, per_account = _pair(args.accounts)
            if accounts:
                results["accounts"] = run_accounts(args, workdir, accounts, per_account, floor_ms)
                save()
            shards, per_shard = _pair(args.shards)
            if shards:
                results["shards"] = run_shards(args, workdir, shards, per_shard, floor_ms)
    save()
    print(f"results: {out}")
    if str(args.docs) != "-":
        report.write_docs(args.docs, report.headline(results, args.primary) | results, out)
        print(f"table: {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
