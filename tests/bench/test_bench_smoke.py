"""`make bench` runs end to end at a tiny size on both venues and writes every key. No figure is judged here: speed
goals are measured by the benchmark itself, never asserted by tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = (
    "fill_to_protect_p50_ms_n100",
    "fill_to_protect_p99_ms_n100",
    "fill_to_protect_floor_ratio_n100",
    "limit_fill_to_protect_p99_ms_rest",
    "limit_fill_to_protect_p99_ms_stream",
    "drift_detect_p99_ms",
    "stop_cancelled_to_replaced_p99_ms",
    "external_close_to_cleanup_p99_ms",
    "drift_detect_p99_ms_rest",
    "floor_rtt_ms",
    "fill_to_protect_floor_ratio",
    "weight_per_min_n1_rest",
    "weight_per_min_n1",
    "weight_per_min_n100",
    "weight_per_min_n1000",
    "recovery_s_n1000",
    "duplicate_orders",
    "rss_mib_n1000",
    "cpu_cores_n1000",
    "audit_events_per_s",
    "k8s_requests_per_lifecycle",
)
# The venue-dependent keys again from the Bybit account, its request cost in requests (Bybit's budget unit).
BYBIT_KEYS = tuple(
    f"{key.replace('weight_', 'requests_')}_bybit"
    for key in KEYS
    if key not in ("audit_events_per_s", "k8s_requests_per_lifecycle")
)


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(1200)
def test_bench_runs_at_n2_and_3_and_writes_every_key(tmp_path: Path) -> None:
    out, docs = tmp_path / "results.json", tmp_path / "PERFORMANCE.md"
    docs.write_text("# Performance\n\nhand-written text stays\n")
    # At two Positions per account, the largest size spreads over two accounts, as N = 1,000 does over Binance's
    # cap of 200 algo orders per account.
    tiny = ["--sizes", "2,3", "--primary", "2", "--per-account", "2", "--samples", "2"]
    tiny += ["--accounts", "2x2", "--shards", "2x2"]
    tiny += ["--steady-seconds", "3", "--lifecycles", "1", "--floor-samples", "5", "--audit-seconds", "1"]
    tiny += ["--venues", "binanceusdm,bybit", "--bybit-sizes", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.warden", *tiny, "--out", str(out), "--docs", str(docs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text())
    for key in KEYS + BYBIT_KEYS:
        assert isinstance(results[key], int | float) and not isinstance(results[key], bool), (key, results[key])
    assert results["duplicate_orders"] == 0 and results["duplicate_orders_bybit"] == 0
    assert results["primary_n_bybit"] == 2
    assert [(s["n"], s["accounts"], s["ramp"]["protected"]) for s in results["stages"]] == [(2, 1, 2), (3, 2, 3)]
    assert results["accounts_n1000"] == 2 and results["largest_n"] == 3
    assert results["weight_per_min_n1000_total"] >= results["weight_per_min_n1000"]
    assert results["machine"]["cores"] >= 1 and results["machine"]["memory_mib"] > 0
    assert len(results["git_commit"]) >= 40
    assert results["shards"]["cross_shard_requests"] == 0
    text = docs.read_text()
    assert "hand-written text stays" in text and "| 1 | market fill → stop resting, N=2 |" in text
    assert "| 3 (2 accounts) |" in text
    assert "| 1 | Bybit: market fill → stop resting, N=2 |" in text and "Per size (one Bybit account):" in text
