"""The chaos schedule is a pure function of its seed and counts, and covers every fault kind it promises."""

from __future__ import annotations

from controller.failpoints import parse
from devtools.chaos.schedule import EXCHANGE_FAULTS, EXITS, FAILPOINTS, make_plan


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert make_plan(7, 12, 20) == make_plan(7, 12, 20)
    assert make_plan(7, 12, 20) != make_plan(8, 12, 20)


def test_the_full_schedule_has_its_counts_and_every_fault_kind() -> None:
    plan = make_plan(1, 50, 200)
    counts = plan.counts()
    assert len(plan.positions) == 50 and counts["kill"] == 200
    assert sum(len(a.args["names"]) for a in plan.actions if a.kind == "create") == 50
    assert {p.exit for p in plan.positions} == set(EXITS)
    modes = {
        (a.args["rule"]["mode"], a.args["rule"].get("executed")) for a in plan.actions if a.kind == "exchange_fault"
    }
    assert modes == {(rule["mode"], rule.get("executed")) for rule in EXCHANGE_FAULTS}
    for kind in ("pause", "postgres", "apiserver", "gap", "external_close", "cancel_stop", "delete", "close"):
        assert counts[kind] >= 1, kind
    assert any(len(a.args["names"]) > 1 for a in plan.actions if a.kind in ("create", "delete"))
    assert [a.at for a in plan.actions] == sorted(a.at for a in plan.actions)
    assert plan.actions[-1].at < plan.duration


def test_every_position_has_its_own_account_and_symbol() -> None:
    plan = make_plan(3, 50, 10)
    slots = [(p.account, p.symbol) for p in plan.positions]
    assert len(set(slots)) == len(slots)


def test_failpoint_specs_name_the_hit_that_fires() -> None:
    assert parse("") == {}
    assert parse("entry:after-send, status:before-write@3") == {"entry:after-send": 1, "status:before-write": 3}
    assert len(set(FAILPOINTS)) == len(FAILPOINTS) == 12
