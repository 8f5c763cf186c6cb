"""The chaos invariant checker on hand-built evidence: a clean lifecycle passes, and each broken invariant is
flagged with the Position, the time and the evidence."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from controller.reconcile.model import Purpose, client_id_prefix, client_order_id
from devtools.chaos.checker import Config, Report, check, held_by_venue, uncovered
from devtools.chaos.evidence import (
    AuditEventRow,
    AuditFillRow,
    Evidence,
    ExchangeOrder,
    ExchangeRequest,
    ExchangeTrade,
    FaultRecord,
    PositionRecord,
)
from paper.bybit.front import execution_id
from paper.models import VenueName

UID = "0b6b1d2c-1111-4c4c-8888-000000000001"
KEY = "paper-key"
ENTRY = client_order_id(UID, Purpose.ENTRY)
STOP = client_order_id(UID, Purpose.STOP, 1)
T0 = 1_000_000


def order(client_id: str, kind: str, side: str, type_: str, created: int, updated: int, **kw: object) -> ExchangeOrder:
    values: dict[str, object] = {
        "api_key": KEY,
        "symbol": "BTCUSDT",
        "kind": kind,
        "client_order_id": client_id,
        "side": side,
        "type": type_,
        "quantity": Decimal("0.010"),
        "executed": Decimal(0),
        "reduce_only": kind == "algo",
        "close_position": False,
        "status": "FINISHED" if kind == "algo" else "FILLED",
        "created": created,
        "updated": updated,
        "source": "api",
    } | kw
    return ExchangeOrder(**values)  # type: ignore[arg-type]


def trade(trade_id: str, client_id: str, side: str, time: int, pnl: str = "0", fee: str = "0.325") -> ExchangeTrade:
    return ExchangeTrade(
        KEY, "BTCUSDT", trade_id, f"o{trade_id}", client_id, side, Decimal("0.010"), Decimal("65000"), Decimal(pnl),
        Decimal(fee), time, "api", False,
    )  # fmt: skip


def request(seq: int, time: int, method: str = "GET", epoch: int | None = 1, **kw: object) -> ExchangeRequest:
    values: dict[str, object] = {
        "seq": seq,
        "time": time,
        "method": method,
        "path": "/fapi/v1/order" if method != "GET" else "/fapi/v3/positionRisk",
        "api_key": KEY,
        "replica": "replica-a",
        "epoch": epoch,
        "client_order_id": None,
        "status": 200,
        "dropped": False,
        "fault": None,
    } | kw
    return ExchangeRequest(**values)  # type: ignore[arg-type]


def event(
    seq: int, type_: str, at: int, before: str | None = None, after: str | None = None, **kw: object
) -> AuditEventRow:
    values: dict[str, object] = {
        "seq": seq,
        "position_uid": UID,
        "type": type_,
        "phase_before": before,
        "phase_after": after,
        "client_order_id": None,
        "occurred_at": at,
        "epoch": 1,
        "replica": "replica-a",
        "detail": {},
    } | kw
    return AuditEventRow(**values)  # type: ignore[arg-type]


def fill(trade_id: str, client_id: str, at: int, pnl: str = "0") -> AuditFillRow:
    return AuditFillRow(UID, "BTCUSDT", trade_id, client_id, Decimal("0.010"), Decimal("65000"), Decimal("0.325"),
                        Decimal(pnl), at)  # fmt: skip


def lifecycle() -> Evidence:
    """Enter at T0, stop rests 150 ms later, the stop triggers at T0+5 s; net PnL -20 - 2 * 0.325."""
    net = "-20.650"
    return Evidence(
        positions=[
            PositionRecord(
                "ns",
                "btc",
                UID,
                KEY,
                "BTCUSDT",
                "long",
                Decimal("0.010"),
                status={"phase": "Closed", "realizedPnl": net},
            )
        ],
        orders=[
            order(ENTRY, "order", "BUY", "MARKET", T0, T0, executed=Decimal("0.010")),
            order(STOP, "algo", "SELL", "STOP_MARKET", T0 + 150, T0 + 5000),
            order(STOP, "order", "SELL", "MARKET", T0 + 5000, T0 + 5000, source="trigger", reduce_only=True),
        ],
        trades=[trade("1", ENTRY, "BUY", T0), trade("2", STOP, "SELL", T0 + 5000, pnl="-20")],
        requests=[
            request(1, T0 - 10, "POST", client_order_id=ENTRY),
            request(2, T0 + 100),
            request(3, T0 + 140, "POST", client_order_id=STOP, path="/fapi/v1/algoOrder"),
            request(4, T0 + 6000),
        ],
        events=[
            event(1, "PositionCreated", T0 - 100),
            event(2, "EntryIntent", T0 - 50, client_order_id=ENTRY),
            event(3, "PhaseChanged", T0 - 50, "Pending", "EntryPlaced"),
            event(4, "StopIntent", T0 + 120, client_order_id=STOP),
            event(5, "PhaseChanged", T0 + 200, "EntryPlaced", "Protected"),
            event(6, "PhaseChanged", T0 + 5100, "Protected", "Closing"),
            event(7, "PhaseChanged", T0 + 5200, "Closing", "Closed", detail={"realizedPnl": net}),
        ],
        fills=[fill("1", ENTRY, T0), fill("2", STOP, T0 + 5000, pnl="-20")],
        faults=[],
        end=T0 + 10_000,
    )


def flagged(evidence: Evidence, config: Config | None = None) -> list[tuple[int, str]]:
    report = check(evidence, config)
    return [(v.invariant, v.message) for v in report.violations]


def test_a_clean_lifecycle_passes_every_invariant() -> None:
    report = check(lifecycle())
    assert report.violations == [], report.text()
    assert all(report.checks[n] > 0 for n in range(8)), report.checks
    assert report.exposure_ms == [150]


def test_a_stop_placed_late_is_a_protection_violation_with_its_evidence() -> None:
    evidence = lifecycle()
    evidence.orders[1] = replace(evidence.orders[1], created=T0 + 2600)
    report = check(evidence)
    [violation] = report.violations
    assert (violation.invariant, violation.position, violation.time) == (1, "ns/btc", T0)
    assert "0.010 of the BTCUSDT position without a covering stop for 2600 ms" in violation.message
    assert f"uncovered {T0}..{T0 + 2600}" in violation.evidence
    assert check(evidence, Config(protection_bound_ms=3000)).violations == []


def test_a_stop_too_small_for_the_fill_leaves_the_rest_uncovered() -> None:
    evidence = lifecycle()
    evidence.orders[1] = replace(evidence.orders[1], quantity=Decimal("0.004"))
    [(number, message)] = flagged(evidence)
    assert (number, message) == (1, "0.010 of the BTCUSDT position without a covering stop for 5000 ms")


def test_the_time_the_acting_replica_was_down_is_excused_but_not_a_standby() -> None:
    evidence = lifecycle()
    evidence.orders[1] = replace(evidence.orders[1], created=T0 + 9000)
    evidence.requests[1:] = [
        request(3, T0 + 8000, epoch=2, replica="replica-b"),
        request(4, T0 + 8500, epoch=2, replica="replica-b"),
    ]
    evidence.trades[1] = replace(evidence.trades[1], time=T0 + 9500)
    evidence.orders[1] = replace(evidence.orders[1], updated=T0 + 9500)
    evidence.faults = [FaultRecord("kill", T0 + 20, T0 + 20, "replica-b")]  # the standby
    assert [n for n, _ in flagged(evidence)] == [1]
    evidence.faults = [FaultRecord("kill", T0 + 20, T0 + 20, "replica-a")]  # the leader: down until 8000
    assert [n for n, _ in flagged(evidence)] == [], flagged(evidence)
    # A request the killed leader sent just before it died, logged just after: its term is over all the same.
    evidence.requests.insert(1, request(2, T0 + 21, epoch=1))
    assert [n for n, _ in flagged(evidence)] == [], flagged(evidence)


def test_after_a_failover_an_answer_from_the_other_venue_does_not_end_the_wait_for_the_new_leader() -> None:
    # The new leader's first answer is Bybit's (another account's markets load); on Binance it first acts at +8 s.
    evidence = lifecycle()
    evidence.orders[1] = replace(evidence.orders[1], created=T0 + 9000, updated=T0 + 9500)
    evidence.trades[1] = replace(evidence.trades[1], time=T0 + 9500)
    bybit_markets = request(3, T0 + 100, epoch=2, replica="replica-b", api_key=None, ret_code=0)
    evidence.requests[1:] = [
        replace(bybit_markets, path="/v5/market/instruments-info"),
        request(4, T0 + 8000, epoch=2, replica="replica-b"),
    ]
    evidence.faults = [FaultRecord("kill", T0 + 20, T0 + 20, "replica-a")]
    assert flagged(evidence) == []
    evidence.requests[1] = replace(evidence.requests[1], path="/fapi/v1/exchangeInfo", ret_code=None)  # Binance's
    assert [n for n, _ in flagged(evidence)] == [1]


def stop_attempt(seq: int, time: int, status: int | None = 200, fault: str | None = None) -> ExchangeRequest:
    return request(seq, time, "POST", client_order_id=STOP, path="/fapi/v1/algoOrder", status=status, fault=fault)


def stop_rests_at(evidence: Evidence, moment: int, attempts: list[ExchangeRequest]) -> Evidence:
    """The lifecycle with the stop resting only from ``moment``, after these placement attempts."""
    evidence.orders[1] = replace(evidence.orders[1], created=moment)
    evidence.requests[1:] = [*attempts, request(99, T0 + 6000)]
    return evidence


def test_a_refused_stop_excuses_the_time_until_warden_tries_again_at_its_retry_cadence() -> None:
    # Refused three times, each retried 1 s later (PROTECTION_RETRY): 3,150 ms uncovered, 150 ms of it Warden's.
    attempts = [stop_attempt(2, T0 + 100, 500, "http_error"), stop_attempt(3, T0 + 1100, 503, "maintenance")]
    attempts += [stop_attempt(4, T0 + 2100, None, "drop"), stop_attempt(5, T0 + 3100)]
    evidence = stop_rests_at(lifecycle(), T0 + 3150, attempts)
    assert held_by_venue(evidence.requests, client_id_prefix(UID), 1000) == [(T0 + 100, T0 + 3100)]
    report = check(evidence)
    assert report.violations == [] and report.unexcused_ms == [150], report.text()


def test_a_retry_slower_than_the_cadence_counts_against_warden() -> None:
    # Refused at +100 ms, tried again only at +3,500 ms: the venue excuses one second; 2.5 s count against Warden.
    attempts = [stop_attempt(2, T0 + 100, 500, "http_error"), stop_attempt(3, T0 + 3500)]
    evidence = stop_rests_at(lifecycle(), T0 + 3500, attempts)
    [(number, message)] = flagged(evidence)
    assert (number, message) == (1, "0.010 of the BTCUSDT position without a covering stop for 2500 ms")
    assert check(evidence, Config(retry_ms=2000)).violations == []  # a slower promise would have covered it


def test_refusals_the_position_did_not_need_excuse_nothing() -> None:
    # While its stop waited: the entry's own unknown outcome (Warden looks it up, it need not wait), another
    # Position's stop, a take profit and a sweep's cancel were refused; none of them kept this stop off the venue.
    other = client_order_id("0b6b1d2c-1111-4c4c-8888-000000000002", Purpose.STOP, 1)
    refused = {"status": 500, "fault": "http_error"}
    attempts = [
        request(2, T0 + 10, "POST", client_order_id=ENTRY, **refused),
        request(3, T0 + 500, "POST", client_order_id=other, path="/fapi/v1/algoOrder", **refused),
        request(4, T0 + 1000, "POST", client_order_id=client_order_id(UID, Purpose.TAKE_PROFIT, 1), **refused),
        request(5, T0 + 1500, "DELETE", client_order_id=other, path="/fapi/v1/algoOrder", **refused),
        request(6, T0 + 2000, "GET", path="/fapi/v3/account", **refused),
        stop_attempt(7, T0 + 2500),
    ]
    evidence = stop_rests_at(lifecycle(), T0 + 2500, attempts)
    [(number, message)] = flagged(evidence)
    assert (number, message) == (1, "0.010 of the BTCUSDT position without a covering stop for 2500 ms")


def test_a_refused_read_of_the_account_excuses_until_it_is_read_again() -> None:
    # The snapshot read was refused at +100 ms and read again at +600 ms: half a second is the venue's.
    attempts = [request(2, T0 + 100, status=503, fault="maintenance"), request(3, T0 + 600), stop_attempt(4, T0 + 2300)]
    evidence = stop_rests_at(lifecycle(), T0 + 2300, attempts)
    assert held_by_venue(evidence.requests, client_id_prefix(UID), 1000) == [(T0 + 100, T0 + 600)]
    assert check(evidence).unexcused_ms == [1800]


def test_a_late_answer_is_the_venues_time_and_a_retry_is_due_a_cadence_after_the_answer() -> None:
    # Markets asked for at +100 ms were answered at +1,600 ms (a latency fault); the stop sent at +1,650 ms was
    # refused with an answer at +2,000 ms and sent again 1 s after that answer: 150 ms are Warden's.
    attempts = [
        request(2, T0 + 100, path="/fapi/v1/exchangeInfo", answered=T0 + 1600),
        replace(stop_attempt(3, T0 + 1650, 503, "maintenance"), answered=T0 + 2000),
        stop_attempt(4, T0 + 3000),
    ]
    evidence = stop_rests_at(lifecycle(), T0 + 3000, attempts)
    assert held_by_venue(evidence.requests, client_id_prefix(UID), 1000) == [
        (T0 + 100, T0 + 1600),
        (T0 + 1650, T0 + 3000),
    ]
    assert check(evidence).unexcused_ms == [150]
    evidence.requests[2] = replace(evidence.requests[2], answered=None)  # an answer at once: the retry came 350 ms late
    assert check(evidence).unexcused_ms == [500]
    # The markets load is public, without the account's key (as ccxt sends it): held by the venue all the same.
    evidence.requests[1] = replace(evidence.requests[1], api_key=None)
    evidence.requests[2] = replace(evidence.requests[2], answered=T0 + 2000)
    assert check(evidence).unexcused_ms == [150]


def test_uncovered_follows_partial_fills_and_closing_stops() -> None:
    fills = [trade("1", ENTRY, "BUY", 10), trade("2", ENTRY, "BUY", 20)]
    fills[0] = replace(fills[0], qty=Decimal("0.004"))
    stops = [
        order(STOP, "algo", "SELL", "STOP_MARKET", 15, 30, quantity=Decimal("0.004"), status="CANCELED"),
        order("x", "algo", "SELL", "STOP_MARKET", 25, 100, quantity=Decimal(0), close_position=True, status="NEW"),
    ]
    assert uncovered(stops, fills, 100) == [((10, 15), Decimal("0.004")), ((20, 25), Decimal("0.010"))]


def test_a_client_id_used_twice_and_a_second_entry_are_flagged() -> None:
    evidence = lifecycle()
    evidence.orders.append(order(ENTRY, "order", "BUY", "MARKET", T0 + 50, T0 + 50, executed=Decimal("0.010")))
    found = flagged(evidence)
    assert (2, f"client order id {ENTRY} used 2 times") in found
    assert (2, "entries filled 0.020, more than the amount 0.010") in found
    evidence = lifecycle()
    second = client_order_id(UID, Purpose.ENTRY, 2)
    evidence.orders.append(order(second, "order", "BUY", "MARKET", T0 + 50, T0 + 50))
    evidence.events.append(event(9, "EntryIntent", T0 + 40, client_order_id=second))
    assert [n for n, m in flagged(evidence) if m == "more than one entry order"] == [2]


def test_an_order_resting_for_a_closed_or_deleted_position_and_a_leftover_position_are_flagged() -> None:
    evidence = lifecycle()
    evidence.orders[1] = replace(evidence.orders[1], status="NEW", updated=T0 + 150)
    found = flagged(evidence)
    assert (3, f"order {STOP} rests although the Position is Closed") in found
    evidence = lifecycle()
    evidence.trades.pop()
    evidence.fills.pop()
    evidence.positions[0] = replace(evidence.positions[0], deleted=True)
    found = flagged(evidence)
    assert (3, "0.010 BTCUSDT still held although the Position is deleted") in found


def test_a_trade_missing_from_the_audit_fills_or_recorded_twice_is_flagged() -> None:
    evidence = lifecycle()
    evidence.fills.pop()
    [(number, message)] = flagged(evidence)
    assert number == 4 and message.startswith("trade 2 (SELL 0.010 @ 65000, order") and message.endswith("0 times")
    evidence = lifecycle()
    evidence.fills.append(replace(evidence.fills[0], trade_id="99"))
    assert flagged(evidence) == [(4, "audit fill 99 has no trade on the exchange")]


def test_a_missing_phase_change_an_order_without_intent_and_a_waiting_backlog_are_flagged() -> None:
    evidence = lifecycle()
    del evidence.events[4]  # EntryPlaced -> Protected
    assert flagged(evidence) == [(4, "phase change Protected -> Closing follows EntryPlaced")]
    evidence = lifecycle()
    del evidence.events[3]  # the stop's intent
    assert flagged(evidence) == [(4, f"order {STOP} is on the exchange with no audit event")]
    evidence = lifecycle()
    status = evidence.positions[0].status | {"auditBacklog": [{"id": "x"}], "auditBacklogOverflow": 2}
    evidence.positions[0] = replace(evidence.positions[0], status=status)
    assert flagged(evidence) == [(4, "1 audit records still wait in status, 2 overflowed")]


def test_a_phase_change_whose_status_write_was_lost_may_be_followed_from_where_it_started() -> None:
    evidence = lifecycle()
    evidence.events[5] = replace(evidence.events[5], phase_before="EntryPlaced")  # Protected was never written
    assert flagged(evidence) == []


def test_a_phase_change_outside_the_planners_table_is_flagged() -> None:
    evidence = lifecycle()
    evidence.events[4] = replace(evidence.events[4], phase_after="Pending")  # EntryPlaced -> Pending
    assert (4, "phase change EntryPlaced -> Pending is not in the planner's table") in flagged(evidence)


def test_a_deleted_position_must_have_closed_in_the_audit() -> None:
    evidence = lifecycle()
    evidence.positions[0] = replace(evidence.positions[0], deleted=True, status={})
    assert flagged(evidence) == []
    del evidence.events[3:]
    assert (4, "the audit's last phase is EntryPlaced, the Position's is Closed") in flagged(evidence)


@pytest.mark.parametrize("where", ["status", "event"])
def test_realized_pnl_must_equal_the_trades_exactly(where: str) -> None:
    evidence = lifecycle()
    if where == "status":
        evidence.positions[0] = replace(evidence.positions[0], status={"phase": "Closed", "realizedPnl": "-20.649"})
        expected = "status says realized PnL -20.649, the exchange's trades -20.650"
    else:
        evidence.events[-1] = replace(evidence.events[-1], detail={"realizedPnl": "-20.65000001"})
        expected = "Closed event says realized PnL -20.65000001, the exchange's trades -20.650"
    assert flagged(evidence) == [(5, expected)]


def test_an_order_after_closed_and_a_reopening_are_flagged() -> None:
    evidence = lifecycle()
    late = client_order_id(UID, Purpose.CLOSE)
    evidence.requests.append(request(9, T0 + 5300, "POST", client_order_id=late, status=400))
    assert flagged(evidence) == [(6, f"order {late} sent after the Position closed at {T0 + 5200}")]
    evidence = lifecycle()
    evidence.events.append(event(8, "PhaseChanged", T0 + 5300, "Closed", "Protected"))
    evidence.positions[0] = replace(evidence.positions[0], status={"phase": "Protected"})
    found = flagged(evidence)
    assert (6, "reopened: Closed -> Protected") in found
    assert (6, f"closed at {T0 + 5200} but now Protected") in found


def test_terms_are_one_replica_each_and_never_interleave() -> None:
    evidence = lifecycle()
    evidence.requests[1:] = [
        request(2, T0 + 100, "POST", epoch=2, replica="replica-b"),
        request(3, T0 + 140, "POST", epoch=1, client_order_id=STOP),  # the old leader, after the new one acted
    ]
    found = flagged(evidence)
    assert (7, f"replica-a sent POST /fapi/v1/order {STOP} in term 1 after replica-b had acted in term 2") in found
    evidence = lifecycle()
    evidence.events[0] = replace(evidence.events[0], replica="replica-b")
    assert (7, "term 1 acted from 2 replicas: ['replica-a', 'replica-b']") in flagged(evidence)
    evidence = lifecycle()
    evidence.requests[0] = replace(evidence.requests[0], epoch=None)
    assert [n for n, _ in flagged(evidence)] == [7]


def test_evidence_round_trips_through_json(tmp_path: object) -> None:
    evidence = lifecycle()
    evidence.faults.append(FaultRecord("pause", 1, 2, "replica-a", "2.0s"))
    again = Evidence.from_json(evidence.to_json())
    assert again == evidence
    assert isinstance(check(again), Report)


def test_two_positions_on_one_account_and_symbol_make_the_evidence_ambiguous() -> None:
    evidence = lifecycle()
    evidence.positions.append(replace(evidence.positions[0], name="other", uid="0b6b1d2c-1111-4c4c-8888-000000000002"))
    assert (0, "shares BTCUSDT on one account with ns/btc: checks are ambiguous") in flagged(evidence)


# --- Bybit: one endpoint for every order, a retCode in every answer (HTTP 200 when refused), execIds ------------

BYBIT_PATHS = {
    "/fapi/v1/order": "/v5/order/create",
    "/fapi/v1/algoOrder": "/v5/order/create",
    "/fapi/v3/positionRisk": "/v5/position/list",
}


def on_bybit(evidence: Evidence) -> Evidence:
    """The lifecycle on a Bybit account, as the paper's Bybit front logs it and Warden's audit records it."""
    ids = {t.trade_id: execution_id(int(t.trade_id)) for t in evidence.trades}
    evidence.positions = [replace(p, venue=VenueName.BYBIT) for p in evidence.positions]
    evidence.requests = [replace(r, path=BYBIT_PATHS[r.path], ret_code=0) for r in evidence.requests]
    evidence.trades = [replace(t, trade_id=ids[t.trade_id]) for t in evidence.trades]
    evidence.fills = [replace(f, trade_id=ids[f.trade_id]) for f in evidence.fills]
    return evidence


def bybit_stop_attempt(seq: int, time: int, ret_code: int = 0, **kw: object) -> ExchangeRequest:
    return request(seq, time, "POST", client_order_id=STOP, path="/v5/order/create", ret_code=ret_code, **kw)


def test_a_clean_lifecycle_on_bybit_passes_every_invariant() -> None:
    report = check(on_bybit(lifecycle()))
    assert report.violations == [], report.text()
    assert all(report.checks[n] > 0 for n in range(8)), report.checks
    assert report.exposure_ms == [150]
    assert report.positions_by_venue == {"bybit": 1}
    assert "  bybit: 1 Positions, 0 violations" in report.text()


def test_a_bybit_refusal_is_its_ret_code_under_http_200() -> None:
    # The front's own limits refused the stop twice with HTTP 200 (no injected fault): 10006, then 10016; each retry
    # came 1 s later; 150 ms are Warden's.
    attempts = [bybit_stop_attempt(2, T0 + 100, 10006), bybit_stop_attempt(3, T0 + 1100, 10016)]
    attempts.append(bybit_stop_attempt(4, T0 + 2100))
    evidence = stop_rests_at(on_bybit(lifecycle()), T0 + 2150, attempts)
    assert not attempts[0].ok and attempts[2].ok
    assert held_by_venue(evidence.requests, client_id_prefix(UID), 1000) == [(T0 + 100, T0 + 2100)]
    report = check(evidence)
    assert report.violations == [] and report.unexcused_ms == [150], report.text()
    # An answer that is no refusal (110017: a reduce-only order with nothing to reduce) excuses nothing.
    evidence.requests[1:3] = [replace(r, ret_code=110017) for r in evidence.requests[1:3]]
    report = check(evidence)
    assert [(v.invariant, v.message) for v in report.violations] == [
        (1, "0.010 of the BTCUSDT position without a covering stop for 2150 ms")
    ]
    assert report.violations_by_venue == {"bybit": 1}


def test_a_refused_bybit_cancel_is_no_placement_and_excuses_nothing() -> None:
    # Bybit cancels with a POST too, under the stop's orderLinkId: refusing it did not keep a stop off the venue.
    cancel = request(2, T0 + 100, "POST", client_order_id=STOP, path="/v5/order/cancel", ret_code=10016)
    evidence = stop_rests_at(on_bybit(lifecycle()), T0 + 2500, [cancel, bybit_stop_attempt(3, T0 + 2500)])
    [(number, message)] = flagged(evidence)
    assert (number, message) == (1, "0.010 of the BTCUSDT position without a covering stop for 2500 ms")
    evidence.requests.append(request(9, T0 + 5300, "POST", client_order_id=STOP, path="/v5/order/cancel"))
    evidence.requests.append(bybit_stop_attempt(10, T0 + 5400))
    assert (6, f"order {STOP} sent after the Position closed at {T0 + 5200}") in flagged(evidence)
    assert len([n for n, _ in flagged(evidence) if n == 6]) == 1  # the placement, not the cancel


def test_the_stop_bybit_attached_to_the_entry_protects_until_wardens_rests() -> None:
    evidence = on_bybit(lifecycle())
    evidence.orders[1] = replace(evidence.orders[1], created=T0 + 2600)
    assert [n for n, _ in flagged(evidence)] == [1]
    # Bybit placed it as the entry filled (the venue's, with no client id) and cancelled it once Warden's rested.
    evidence.orders.append(order("", "algo", "SELL", "STOP_MARKET", T0, T0 + 2700, source="venue", status="CANCELED"))
    report = check(evidence)
    assert report.violations == [] and report.exposure_ms == [], report.text()
