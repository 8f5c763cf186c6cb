"""The bench refuses, before it starts, a run whose probes would not fit under Binance's cap on open conditional
orders (a run that did so counted every refused probe as missed and left its keys empty)."""

from __future__ import annotations

from bench.warden.__main__ import probe_room_problem


def test_probes_that_would_pass_the_cap_on_the_first_account_are_refused_before_the_run() -> None:
    assert probe_room_problem(primary=100, per_account=150, samples=20) is None  # 100 + 20 + 60 + 4
    problem = probe_room_problem(primary=100, per_account=150, samples=40)  # 100 + 40 + 120 + 4
    assert problem is not None and "264" in problem and "--samples" in problem
    assert probe_room_problem(primary=100, per_account=25, samples=40) is None  # 25 + 10 + 120 + 4 on 4 accounts
