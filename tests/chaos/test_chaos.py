"""Seeded chaos schedules on real components (two replicas, kube-apiserver + etcd, Postgres, the paper
exchange with Positions on its Binance and its Bybit front), checked by the invariant checker. The short schedule
runs in ``make test``; the full one (``make chaos``, docs/RELIABILITY.md) is ``slow``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devtools.chaos.checker import check
from devtools.chaos.runner import Chaos
from devtools.chaos.schedule import make_plan
from paper.models import VenueName

SHORT_SEED = 11


def run_and_check(tmp_path: Path, seed: int, positions: int, kills: int, duration: float | None) -> dict[str, Any]:
    plan = make_plan(seed, positions, kills, duration=duration)
    evidence, summary = Chaos(plan, tmp_path, say=lambda _: None).run()
    evidence.save(tmp_path / "evidence.json")  # kept for `python -m devtools.chaos check --evidence ...`
    report = check(evidence)
    print(report.text())
    assert report.violations == [], f"{summary}\n{report.text()}"
    # The run must have done what it claims, on each venue, or passing means nothing.
    assert sum(summary["kills"].values()) >= kills, summary
    assert set(summary["venues"]) == {v.value for v in VenueName}, summary
    for venue, tally in summary["venues"].items():
        assert tally["positions"] >= positions // 3 and tally["venue_faults_fired"], (venue, tally)
    traded = {(t.api_key, t.symbol) for t in evidence.trades}
    assert len(traded) >= positions // 3, f"only {len(traded)} Positions ever held anything: {summary}"
    held_on = {p.venue for p in evidence.positions if (p.api_key, p.symbol) in traded}
    assert held_on == set(VenueName), f"Positions held something only on {held_on}: {summary}"
    assert report.checks[1] > len(traded) and all(report.checks[n] > 0 for n in range(2, 8)), report.checks
    return summary


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_a_short_seeded_schedule_breaks_no_invariant(tmp_path: Path) -> None:
    run_and_check(tmp_path, SHORT_SEED, positions=8, kills=8, duration=80)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_full_schedule_breaks_no_invariant(tmp_path: Path) -> None:
    summary = run_and_check(tmp_path, 1, positions=50, kills=200, duration=None)
    assert summary["positions"] == 50
