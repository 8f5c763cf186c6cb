"""The chaos schedule is a pure function of its seed and counts, and covers every fault kind it promises, on
each venue."""

from __future__ import annotations

from decimal import Decimal

from controller.failpoints import parse, parse_holds
from devtools.chaos.schedule import ENDPOINTS, EXCHANGE_FAULTS, EXITS, FAILPOINTS, VENUES, make_plan
from paper.models import VenueName


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert make_plan(7, 12, 20) == make_plan(7, 12, 20)
    assert make_plan(7, 12, 20) != make_plan(8, 12, 20)


def test_the_full_schedule_has_its_counts_and_every_fault_kind() -> None:
    plan = make_plan(1, 50, 200)
    counts = plan.counts()
    assert len(plan.positions) == 50 and counts["kill"] == 200
    assert sum(len(a.args["names"]) for a in plan.actions if a.kind == "create") == 50
    for venue in VENUES:
        assert {p.exit for p in plan.positions if p.venue is venue} == set(EXITS), venue
        rules = [a.args["rule"] for a in plan.actions if a.kind == "exchange_fault" and a.args["venue"] is venue]
        modes = {(rule["mode"], rule.get("executed")) for rule in rules}
        assert modes == {(fault["mode"], fault.get("executed")) for fault, _ in EXCHANGE_FAULTS}, venue
        paths = {endpoint["path"] for endpoint in ENDPOINTS[venue].values()}
        assert {rule["path"] for rule in rules} == paths, venue
        venue_named = {a.args["name"] for a in plan.actions if a.kind in ("cancel_stop", "external_close")}
        assert {plan.positions[int(n[1:])].venue for n in venue_named} == set(VENUES)
    for kind in ("pause", "postgres", "apiserver", "gap", "external_close", "cancel_stop", "delete", "close"):
        assert counts[kind] >= 1, kind
    assert any(len(a.args["names"]) > 1 for a in plan.actions if a.kind in ("create", "delete"))
    assert [a.at for a in plan.actions] == sorted(a.at for a in plan.actions)
    assert plan.actions[-1].at < plan.duration


def test_every_position_has_its_own_account_and_symbol() -> None:
    plan = make_plan(3, 50, 10)
    slots = [(p.account, p.symbol) for p in plan.positions]
    assert len(set(slots)) == len(slots)
    assert all(p.account.venue is p.venue for p in plan.positions)
    assert len({a.namespace for a in plan.accounts}) == len(plan.accounts)


def test_even_a_short_schedule_splits_its_positions_between_the_venues() -> None:
    plan = make_plan(11, 8, 8, duration=80)
    assert plan.venues == list(VENUES)
    assert {v: sum(1 for p in plan.positions if p.venue is v) for v in VENUES} == dict.fromkeys(VENUES, 4)
    assert {a.args["venue"] for a in plan.actions if a.kind == "exchange_fault"} == set(VENUES)
    cancelled = {a.args["name"] for a in plan.actions if a.kind == "cancel_stop"}
    assert {p.venue for p in plan.positions if p.name in cancelled} == set(VENUES)


def test_failpoint_specs_name_the_hit_that_fires() -> None:
    assert parse("") == {}
    assert parse("entry:after-send, status:before-write@3") == {"entry:after-send": 1, "status:before-write": 3}
    assert parse_holds("fleet:first-sight~1.5, entry:after-send") == {"fleet:first-sight": 1.5}
    assert parse("fleet:first-sight~1.5, entry:after-send") == {"entry:after-send": 1}  # a hold never kills
    assert len(set(FAILPOINTS)) == len(FAILPOINTS) == 14


def test_some_binance_positions_rest_a_limit_entry_that_a_dip_fills_before_they_end() -> None:
    plan = make_plan(1, 50, 200)
    limits = [p for p in plan.positions if p.limit]
    assert len({p.exit for p in limits}) >= 3 and "liquidation" not in {p.exit for p in limits}
    assert all(p.venue is VenueName.BINANCE_USDM for p in limits)
    assert not any(p.pre_arm for p in limits)  # the stop recorded with the entry, not one resting before it
    for p in limits:
        entry = p.manifest("a")["spec"]["entry"]
        price, stop = Decimal(entry["price"]), p.stop_price()
        assert entry["type"] == "limit" and (stop < price if p.side == "long" else stop > price)
        dips = [a for a in plan.actions if a.kind == "gap" and a.args["symbol"] == p.symbol]
        assert any(p.created_at < a.at < p.exit_at and a.args["side"] == p.side for a in dips), p.name
