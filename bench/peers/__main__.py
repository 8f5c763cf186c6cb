"""Warden side by side with freqtrade and nautilus_trader on one paper exchange (``make bench-peers``; issue 18).

    .venv/bin/python -m bench.peers [--samples 20] [--idle-seconds 60] [--systems warden,freqtrade,nautilus,...]

Starts one local stack (bench.warden.env: control plane, Postgres, paper exchange with the limits lifted and a
calm 1 Hz price walk), gives each system its own paper account, and runs the same scenarios for each, one system
at a time, measured only from the paper exchange's records. The peers run from their cached venvs
(scripts/peers-venv.sh). Writes ``bench/results/peers-<date>.json``, the raw samples beside it, the table in
docs/PERFORMANCE.md and a PNG of the latency distributions (drawn with the freqtrade venv's matplotlib).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.peers import drivers, report
from bench.peers import scenarios as peer
from bench.warden import scenarios as warden
from bench.warden.__main__ import _wait_ready, git_commit, machine
from bench.warden.env import Env, environment, percentile

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("bench.peers")
SYSTEMS = ("warden", "freqtrade", "freqtrade_1s", "nautilus")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=20, help="samples per latency scenario and system")
    p.add_argument("--idle-seconds", type=float, default=60.0, help="scenario 4's quiet window")
    p.add_argument("--timeout", type=float, default=60.0, help="per probe wait, seconds")
    p.add_argument("--close-wait", type=float, default=30.0, help="scenario 3b's bounded wait, seconds")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--out", type=Path, help="results JSON (default bench/results/peers-<date>.json)")
    p.add_argument("--docs", type=Path, default=ROOT / "docs" / "PERFORMANCE.md", help="'-' to skip")
    p.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    return p


def p50(values: list[float]) -> float | None:
    return percentile(values, 0.50)


def p99(values: list[float]) -> float | None:
    return percentile(values, 0.99)


def system_result(
    market: list[float],
    limit: list[float],
    replaced: list[float],
    cleanup: list[float | None],
    recovery_s: float | None,
    weight: float,
    dupes: dict[str, int],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the issue's keys, the raw samples)"""
    cleaned = [v for v in cleanup if v is not None]
    result = {
        "fill_to_protect_p50_ms": p50(market),
        "fill_to_protect_p99_ms": p99(market),
        "limit_fill_to_protect_p99_ms": p99(limit),
        "stop_cancelled_to_replaced_p99_ms": p99(replaced),
        "external_close_to_cleanup_p99_ms": p99(cleaned) if cleaned and len(cleaned) == len(cleanup) else None,
        "recovery_s": recovery_s,
        "weight_per_min_idle": weight,
        "duplicate_orders": dupes["repeated_client_ids"] + dupes["extra_resting_stops"],
        "samples": {
            "fill_to_protect": len(market),
            "limit_fill_to_protect": len(limit),
            "stop_cancelled_to_replaced": len(replaced),
            "external_close_to_cleanup": len(cleanup),
        },
    }
    raw = {"fill_to_protect": market, "limit_fill_to_protect": limit, "stop_cancelled_to_replaced": replaced}
    return result, raw | {"external_close_to_cleanup": cleanup}


def run_warden(env: Env, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    namespace = "peers-warden"
    account = env.account(namespace)
    env.start_controller("warden")
    _wait_ready(env, "warden")
    keys = {account.api_key: namespace}
    warden.ramp(env, {namespace: 1}, 300)  # the one quiet open Position of scenario 4 (and 5)
    steady = warden.steady(env, args.idle_seconds, keys)
    probes = warden.Probes(env, args.timeout * 3)
    market = warden.market_probes(env, probes, [(namespace, account.api_key)], args.samples, "peers", args.timeout)
    limit = warden.limit_probes(env, probes, namespace, account.api_key, args.samples, "peers", args.timeout)
    drift = warden.drift_probes(env, probes, namespace, account.api_key, args.samples, "peers", args.timeout)
    probes.clear(args.timeout * 3)
    recovery = warden.recovery(env, {namespace: account.api_key}, 120)
    time.sleep(5)
    dupes = warden.duplicates(env, {namespace: account.api_key})
    env.controllers["warden"].stop()
    closed: list[float | None] = list(drift["position_closed_ms"])
    closed += [None] * (len(drift["stop_cancelled_ms"]) - len(closed))
    result, raw = system_result(
        market["latencies_ms"],
        limit["latencies_ms"],
        drift["stop_cancelled_ms"],
        closed,
        recovery["recovery_s"],
        steady["weight_per_min_by_account"][namespace],
        {"repeated_client_ids": dupes["repeated_client_ids"], "extra_resting_stops": dupes["extra_resting_stops"]},
    )
    return result, raw, {"steady": steady, "recovery": recovery, "duplicates": dupes}


def run_peer(
    env: Env, args: argparse.Namespace, p: drivers.Peer
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    p.start()
    try:
        log.info("%s: (1) market", p.name)
        market = peer.market_probes(env, p, args.samples, args.timeout)
        log.info("%s: (2) limit", p.name)
        limit = peer.limit_probes(env, p, args.samples, args.timeout)
        log.info("%s: (3) drift", p.name)
        replaced, cleanup = peer.drift_probes(env, p, args.samples, args.timeout, args.close_wait)
        log.info("%s: (4) idle weight", p.name)
        idle = peer.idle_weight(env, p, args.idle_seconds, args.timeout)
        log.info("%s: (5) SIGKILL", p.name)
        recovery = peer.recovery(env, p, 120)
        time.sleep(15)  # let the restarted process settle before counting duplicates
        dupes = peer.duplicates(env, p)
    finally:
        p.stop()
    result, raw = system_result(market, limit, replaced, cleanup, recovery["recovery_s"], idle["weight_per_min"], dupes)
    return result, raw, {"idle": idle, "duplicates": dupes}


def make_peer(name: str, env: Env, workdir: Path) -> drivers.Peer:
    account = env.stack.create_paper_account(balance="100000000")
    url = env.stack.paper_url
    if name == "freqtrade":
        return drivers.Freqtrade(name, account, url, workdir / name, 18581, 5)
    if name == "freqtrade_1s":
        return drivers.Freqtrade(name, account, url, workdir / name, 18582, 1)
    return drivers.Nautilus(name, account, url, workdir / name)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    args = parser().parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    day = datetime.now(UTC).date().isoformat()
    out = args.out or ROOT / "bench" / "results" / f"peers-{day}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": machine(),
        "systems": {},
    }
    raw: dict[str, Any] = {"arguments": vars(args) | {"out": str(out), "docs": str(args.docs)}, "systems": {}}
    raw_path = out.with_name(out.stem + "-samples.json")

    def save() -> None:
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        raw_path.write_text(json.dumps(raw, indent=2, default=str) + "\n")

    runners: dict[str, Callable[[Env, Path], tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]] = {
        "warden": lambda env, _: run_warden(env, args),
    }
    with tempfile.TemporaryDirectory(prefix="warden-peers-") as tmp:
        workdir = args.workdir or Path(tmp)
        with environment(workdir / "stack") as env:
            for name in systems:
                log.info("=== %s", name)
                started = time.monotonic()
                try:
                    if name in runners:
                        result, samples, detail = runners[name](env, workdir)
                    else:
                        result, samples, detail = run_peer(env, args, make_peer(name, env, workdir))
                except Exception:
                    log.exception("%s failed", name)
                    raw["systems"][name] = {"error": "failed; see the log"}
                    save()
                    continue
                results["systems"][name] = result
                raw["systems"][name] = {"samples": samples, "detail": detail}
                raw["systems"][name]["minutes"] = round((time.monotonic() - started) / 60, 1)
                save()
                log.info("%s: %s", name, json.dumps(result))
    save()
    print(f"results: {out}")
    png = out.with_suffix(".png")
    plot = [str(drivers.FREQTRADE_VENV / "bin" / "python"), str(drivers.INPEER / "plot_latencies.py")]
    subprocess.run([*plot, str(raw_path), str(png)], check=False, timeout=120)
    if str(args.docs) != "-":
        report.write(args.docs, results, out, png)
        print(f"table: {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
