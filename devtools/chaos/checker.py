"""The invariants of a chaos run, as pure functions over the collected evidence → violations.

1. Protection: filled quantity never rests without reduce-only stops covering it for longer than the bound,
   on the exchange's clock, leaving out the time nobody could have placed a stop: the acting replica was down
   (killed, paused, the API server stopped — until the next leader's first answered request) or the venue held
   up a request the Position's protection needed (a read of its account, a look-up of its order, a placement of
   its stop or close): until it answered, and when it refused (an injected fault, 5xx/429/418/408 or no answer),
   until Warden sent that request again, for at most Warden's retry cadence: a slower retry counts against Warden.
2. A client order id is used once per account; a Position has at most one entry order, never over its amount.
3. At the end, no Warden order rests without a live Position, and nothing is held for a finished one.
4. Every exchange trade of a Position's account and symbol is in the audit ``fills`` exactly once (and no fill
   row lacks its trade); the phase changes form one unbroken chain to the final phase; every order on the
   exchange has the audit event of its intent; no audit record waits in status or overflowed.
5. The realized PnL of a closed Position (status and its ``Closed`` event) equals its trades' realized PnL
   minus commissions, exactly.
6. Nothing leaves ``Closed``, and no order is sent for a Position after it closed.
7. One replica per leadership term, terms never interleave in what reaches the exchange, and every order
   request names its term.

A Position owns one (account, symbol) for its life — the chaos runner never shares or reuses one — so every
trade there is the Position's, including external closes and liquidations.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from controller.api.v1alpha1 import Phase
from controller.reconcile.model import CLIENT_ID_PREFIX_LENGTH, Purpose, client_id_prefix, is_warden_order, purpose_of
from controller.reconcile.phases import INITIAL, TERMINAL, allowed
from controller.reconcile.results import PROTECTION_RETRY
from devtools.chaos.evidence import (
    AuditEventRow,
    Evidence,
    ExchangeOrder,
    ExchangeRequest,
    ExchangeTrade,
    PositionRecord,
)
from paper.models import VenueName
from paper.requestlog import venue_of_path

STOP_TYPES = frozenset({"STOP_MARKET", "STOP", "TRAILING_STOP_MARKET"})
# Who placed a stop that protects: Warden, or the venue as Warden's entry asked (Bybit's stop attached to an entry).
STOP_SOURCES = frozenset({"api", "venue"})
# Exchange answers that mean the venue refused or could not say (Warden cannot act then); 403 is Bybit's IP limit.
REFUSED_STATUSES = frozenset({403, 408, 418, 429, 500, 502, 503, 504})
# Bybit refuses with HTTP 200 and a retCode: server timeout, too many visits, service restarting / internal error,
# the IP's rate limit, system frequency protection. Any other retCode is an answer (an order that does not exist,
# a reduce-only order with nothing to reduce), as Binance's HTTP 400 is.
REFUSED_RET_CODES = frozenset({10000, 10006, 10016, 10018, 10429})
# Process faults during which the acting replica cannot act; the API server's stops every replica.
PROCESS_FAULTS = frozenset({"kill", "failpoint", "pause"})
CONTROL_PLANE_FAULTS = frozenset({"apiserver"})
# Warden's promise: a refused stop or close is tried again within this (controller/reconcile/results.py).
RETRY_MS = int(PROTECTION_RETRY.total_seconds() * 1000)
# What Warden reads to see an account (a new client loads markets, and on Binance leverage brackets):
# BinanceUsdm.snapshot, and Bybit.snapshot (positions, then the one list of regular and conditional orders; marks
# from the tickers). A Bybit look-up of one order is a GET of /v5/order/realtime or /history with its orderLinkId.
ACCOUNT_READS = frozenset(
    {
        "/fapi/v1/exchangeInfo",
        "/fapi/v1/leverageBracket",
        "/fapi/v3/positionRisk",
        "/fapi/v1/openOrders",
        "/fapi/v1/openAlgoOrders",
        "/fapi/v1/premiumIndex",
        "/v5/market/instruments-info",
        "/v5/position/list",
        "/v5/order/realtime",
        "/v5/market/tickers",
    }
)
PROTECTIVE = frozenset({Purpose.STOP, Purpose.TRAILING, Purpose.CLOSE})
# Where an order is placed (POST): Binance's regular and algo orders, Bybit's one endpoint for both (where a cancel
# is a POST too, to /v5/order/cancel: not a placement).
PLACEMENTS = frozenset({"/fapi/v1/order", "/fapi/v1/algoOrder", "/v5/order/create"})
INVARIANTS = {
    0: "evidence",
    1: "protection",
    2: "unique ids and entries",
    3: "nothing left open",
    4: "audit completeness",
    5: "realized PnL",
    6: "closed stays closed",
    7: "one replica per term",
}

Window = tuple[int, int]
CONTROLLER = "controller"  # what a violation of no one Position or account (a leadership term's) is filed under


@dataclass(frozen=True)
class Violation:
    invariant: int
    position: str
    time: int
    message: str
    evidence: str = ""

    def line(self) -> str:
        return f"[{self.invariant} {INVARIANTS[self.invariant]}] {self.position} at {self.time}: {self.message}" + (
            f" — {self.evidence}" if self.evidence else ""
        )


@dataclass(frozen=True)
class Config:
    protection_bound_ms: int = 2000
    retry_ms: int = RETRY_MS


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    checks: Counter[int] = field(default_factory=Counter)
    exposure_ms: list[int] = field(default_factory=list)
    """Per uncovered interval: how long it lasted in all (faults included)."""
    unexcused_ms: list[int] = field(default_factory=list)
    """Per uncovered interval: how long it lasted while a stop could have been placed."""
    positions_by_venue: Counter[str] = field(default_factory=Counter)
    violations_by_venue: Counter[str] = field(default_factory=Counter)
    """By the venue of the Position or account flagged; a violation of the controller's (a term's) under
    ``CONTROLLER``."""

    def flag(self, invariant: int, position: str, time: int, message: str, evidence: str = "") -> None:
        self.violations.append(Violation(invariant, position, time, message, evidence))

    def text(self) -> str:
        lines = [f"checks: {sum(self.checks.values())}"]
        for number, name in INVARIANTS.items():
            broken = sum(1 for v in self.violations if v.invariant == number)
            lines.append(f"  {number} {name}: {self.checks[number]} checks, {broken} violations")
        if self.exposure_ms:
            lines.append(
                f"exposure without a covering stop: {len(self.exposure_ms)} intervals, longest "
                f"{max(self.exposure_ms)} ms in all, {max(self.unexcused_ms)} ms while a stop could be placed"
            )
        for venue, count in sorted(self.positions_by_venue.items()):
            lines.append(f"  {venue}: {count} Positions, {self.violations_by_venue[venue]} violations")
        if self.violations_by_venue[CONTROLLER]:
            lines.append(f"  {CONTROLLER}: {self.violations_by_venue[CONTROLLER]} violations")
        lines += [v.line() for v in self.violations]
        lines.append(f"violations: {len(self.violations)}")
        return "\n".join(lines)


@dataclass
class Index:
    """The evidence, grouped the ways the checks read it."""

    evidence: Evidence
    by_prefix: dict[str, PositionRecord] = field(default_factory=dict)
    venues: dict[str, VenueName] = field(default_factory=dict)
    """The venue of each Position (by ref) and account (by api key)."""
    by_slot: dict[tuple[str, str], PositionRecord] = field(default_factory=dict)
    orders: dict[tuple[str, str], list[ExchangeOrder]] = field(default_factory=lambda: defaultdict(list))
    trades: dict[tuple[str, str], list[ExchangeTrade]] = field(default_factory=lambda: defaultdict(list))
    events: dict[str, list[AuditEventRow]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, evidence: Evidence, report: Report) -> Index:
        index = cls(evidence)
        for p in evidence.positions:
            index.by_prefix[client_id_prefix(p.uid)] = p
            index.venues[p.ref] = index.venues[p.api_key] = p.venue
            slot = (p.api_key, p.symbol)
            report.checks[0] += 1
            if slot in index.by_slot:
                other = index.by_slot[slot]
                report.flag(0, p.ref, 0, f"shares {slot[1]} on one account with {other.ref}: checks are ambiguous")
            index.by_slot[slot] = p
        for o in evidence.orders:
            index.orders[(o.api_key, o.symbol)].append(o)
        # The venue lists trades in the order it made them (a stable sort keeps that within a millisecond).
        for t in sorted(evidence.trades, key=lambda t: t.time):
            index.trades[(t.api_key, t.symbol)].append(t)
        for e in sorted(evidence.events, key=lambda e: (e.occurred_at, e.seq)):
            if e.position_uid is not None:
                index.events[e.position_uid].append(e)
        return index

    def venue_of(self, where: str) -> str:
        """The venue of a violation's subject: a Position's ref, an account's key, or ``key/SYMBOL``."""
        venue = self.venues.get(where) or self.venues.get(where.split("/")[0])
        return CONTROLLER if venue is None else venue.value

    def owner(self, client_id: str) -> PositionRecord | None:
        if not is_warden_order(client_id):
            return None
        return self.by_prefix.get(client_id[:CLIENT_ID_PREFIX_LENGTH])


def check(evidence: Evidence, config: Config | None = None) -> Report:
    config = config or Config()
    report = Report()
    index = Index.of(evidence, report)
    check_protection(index, config, report)
    check_ids_and_entries(index, report)
    check_nothing_left_open(index, report)
    check_audit(index, report)
    check_pnl(index, report)
    check_closed_stays_closed(index, report)
    check_terms(evidence, report)
    report.positions_by_venue.update(p.venue.value for p in evidence.positions)
    report.violations_by_venue.update(index.venue_of(v.position) for v in report.violations)
    return report


# --- 1. protection ------------------------------------------------------------------------------


def merge(windows: Iterable[Window]) -> list[Window]:
    merged: list[Window] = []
    for start, end in sorted(w for w in windows if w[1] > w[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def overlap(interval: Window, windows: list[Window]) -> int:
    """How much of ``interval`` the (merged) windows cover."""
    return sum(max(0, min(interval[1], e) - max(interval[0], s)) for s, e in windows)


def _first_answer_after(requests: list[ExchangeRequest], moment: int, end: int, *, unless_epoch: int | None) -> int:
    """When the first answered request after ``moment`` came from another term, or after the fault ended."""
    for r in requests:
        if r.time > moment and r.ok and r.epoch is not None and (r.epoch != unless_epoch or r.time >= end):
            return r.time
    return end


def controller_down(evidence: Evidence, venue: VenueName) -> list[Window]:
    """Windows in which no replica could act on ``venue``: the acting replica was killed or paused (until the next
    term's first answered request there), or the API server was stopped (until the first answered request there
    after it). An answer from the other venue does not end them: a leader talking to Bybit may not yet have built
    a Binance client, and a Binance Position is judged as it would be with no Bybit account beside it."""
    requests = sorted(evidence.requests, key=lambda r: r.seq)
    answers = [r for r in requests if venue_of_path(r.path) is venue]
    everyone: list[Window] = []
    for fault in evidence.faults:
        if fault.kind in PROCESS_FAULTS:
            before = [r for r in requests if r.time <= fault.start and r.epoch is not None]
            acting = before[-1] if before else None
            if acting is None or acting.replica != fault.target:
                continue  # a standby's fault stops nobody
            # A paused replica may go on in its own term once it wakes (until its lease lapses); a killed one never
            # does, and a request of its term logged just after the kill was already on its way.
            resumes = fault.end if fault.kind == "pause" else evidence.end
            until = _first_answer_after(answers, fault.start, resumes, unless_epoch=acting.epoch)
            everyone.append((fault.start, max(until, fault.end)))
        elif fault.kind in CONTROL_PLANE_FAULTS:
            until = _first_answer_after(answers, fault.end, evidence.end, unless_epoch=None)
            everyone.append((fault.start, until))
    return merge(everyone)


def refused(request: ExchangeRequest) -> bool:
    """The venue refused or did not answer (a late answer is still an answer)."""
    injected = request.fault is not None and request.fault != "latency"
    answer = request.status in REFUSED_STATUSES or request.ret_code in REFUSED_RET_CODES
    return injected or request.dropped or request.status is None or answer


def protection_request(request: ExchangeRequest, prefix: str) -> tuple[str, str, str | None] | None:
    """What kind of request Warden needs to protect the Position with this client-id prefix (None: not needed):
    a read of its account's state, a look-up of one of its orders, or a placement of its stop or close."""
    client_id = request.client_order_id
    if client_id is None:
        if request.method == "GET" and request.path in ACCOUNT_READS:
            return (request.method, request.path, None)
        return None
    if not client_id.startswith(prefix) or not is_warden_order(client_id):
        return None
    placement = request.method == "POST" and request.path in PLACEMENTS
    if request.method == "GET" or (placement and purpose_of(client_id) in PROTECTIVE):
        return (request.method, request.path, client_id)
    return None


def held_by_venue(requests: list[ExchangeRequest], prefix: str, retry_ms: int) -> list[Window]:
    """Windows in which the venue kept this Position from being protected: while it held a request the protection
    needed (from its arrival to its answer: a late answer is the venue's time), and after refusing one, until Warden
    sent that request again, but for no longer than Warden's own retry cadence (``retry_ms``) after the answer."""
    by_kind: dict[tuple[str, str, str | None], list[ExchangeRequest]] = defaultdict(list)
    for r in requests:
        kind = protection_request(r, prefix)
        if kind is not None:
            by_kind[kind].append(r)
    windows: list[Window] = []
    for sent in by_kind.values():
        for r, again in zip(sent, [*sent[1:], None], strict=True):
            answered = r.time if r.answered is None else r.answered
            until = answered
            if refused(r):
                until = answered + retry_ms if again is None else min(again.time, answered + retry_ms)
            windows.append((r.time, max(until, answered)))
    return merge(windows)


def uncovered(orders: list[ExchangeOrder], trades: list[ExchangeTrade], end: int) -> list[tuple[Window, Decimal]]:
    """Intervals in which the position on one account and symbol exceeded its resting reduce-only stops,
    with the largest uncovered size seen in each."""
    stops = [
        o
        for o in orders
        if o.kind == "algo"
        and o.type in STOP_TYPES
        and (o.reduce_only or o.close_position)
        and o.source in STOP_SOURCES
    ]
    moments = sorted({t.time for t in trades} | {s.created for s in stops} | {s.updated for s in stops} | {end})
    intervals: list[tuple[Window, Decimal]] = []
    size = Decimal(0)
    pending = iter(trades)
    upcoming = next(pending, None)
    current: tuple[int, Decimal] | None = None
    for i, moment in enumerate(moments):
        while upcoming is not None and upcoming.time <= moment:
            size += upcoming.signed_qty
            upcoming = next(pending, None)
        closing_side = "SELL" if size > 0 else "BUY"
        resting = [
            s for s in stops if s.side == closing_side and s.created <= moment and (s.open or s.updated > moment)
        ]
        covered = size == 0 or any(s.close_position for s in resting) or sum(s.quantity for s in resting) >= abs(size)
        short = abs(size) - sum((s.quantity for s in resting), Decimal(0))
        if not covered and current is None:
            current = (moment, short)
        elif not covered and current is not None:
            current = (current[0], max(current[1], short))
        if current is not None and (covered or i == len(moments) - 1):
            intervals.append(((current[0], moment), current[1]))
            current = None
    return intervals


def check_protection(index: Index, config: Config, report: Report) -> None:
    everyone = {venue: controller_down(index.evidence, venue) for venue in VenueName}
    by_key: dict[str, list[ExchangeRequest]] = defaultdict(list)
    # Public market data (the markets load, marks) carries no key: it may have served any account of its venue, so
    # the venue's hold of it counts for every Position there (the checker cannot tell which client it was for).
    public: dict[VenueName, list[ExchangeRequest]] = defaultdict(list)
    for r in sorted(index.evidence.requests, key=lambda r: r.seq):
        if r.api_key is not None:
            by_key[r.api_key].append(r)
        elif r.replica is not None:
            public[venue_of_path(r.path)].append(r)
    for slot, trades in index.trades.items():
        position = index.by_slot.get(slot)
        where = position.ref if position else f"{slot[0]}/{slot[1]}"
        prefix = client_id_prefix(position.uid) if position else None
        venue = index.venues.get(slot[0], VenueName.BINANCE_USDM)
        requests = sorted([*by_key.get(slot[0], []), *public[venue]], key=lambda r: r.seq)
        held = held_by_venue(requests, prefix, config.retry_ms) if prefix else []
        report.checks[1] += 1
        for interval, short in uncovered(index.orders.get(slot, []), trades, index.evidence.end):
            excused = overlap(interval, merge([*everyone[venue], *held]))
            exposed = interval[1] - interval[0] - excused
            report.checks[1] += 1
            report.exposure_ms.append(interval[1] - interval[0])
            report.unexcused_ms.append(exposed)
            if exposed > config.protection_bound_ms:
                report.flag(
                    1,
                    where,
                    interval[0],
                    f"{short} of the {slot[1]} position without a covering stop for {exposed} ms",
                    f"uncovered {interval[0]}..{interval[1]} on the exchange clock, {excused} ms of it excused",
                )


# --- 2. ids and entries ---------------------------------------------------------------------------


def _placed(index: Index) -> list[ExchangeOrder]:
    """Orders a client sent (a triggered stop's market order reuses the stop's id and is not one)."""
    return [o for o in index.evidence.orders if o.source == "api"]


def check_ids_and_entries(index: Index, report: Report) -> None:
    used = Counter((o.api_key, o.client_order_id) for o in _placed(index))
    for (api_key, client_id), times in used.items():
        report.checks[2] += 1
        if times > 1:
            owner = index.owner(client_id)
            report.flag(2, owner.ref if owner else api_key, 0, f"client order id {client_id} used {times} times")
    entries: dict[str, list[ExchangeOrder]] = defaultdict(list)
    for o in _placed(index):
        owner = index.owner(o.client_order_id)
        if owner is not None and not (o.reduce_only or o.close_position) and o.kind == "order":
            entries[owner.uid].append(o)
    for p in index.evidence.positions:
        report.checks[2] += 2
        mine = entries.get(p.uid, [])
        if len({o.client_order_id for o in mine}) > 1:
            report.flag(
                2, p.ref, mine[1].created, "more than one entry order", ", ".join(o.client_order_id for o in mine)
            )
        filled = sum((o.executed for o in mine), Decimal(0))
        if filled > p.amount:
            report.flag(2, p.ref, mine[-1].created, f"entries filled {filled}, more than the amount {p.amount}")


# --- 3. nothing left open -------------------------------------------------------------------------


def check_nothing_left_open(index: Index, report: Report) -> None:
    for o in index.evidence.orders:
        if not is_warden_order(o.client_order_id) or o.source != "api":
            continue
        report.checks[3] += 1
        if not o.open:
            continue
        owner = index.owner(o.client_order_id)
        if owner is None:
            report.flag(3, o.api_key, o.created, f"order {o.client_order_id} rests with no Position known")
        elif owner.deleted or owner.status.get("phase") in TERMINAL:
            state = "deleted" if owner.deleted else owner.status.get("phase")
            report.flag(3, owner.ref, o.created, f"order {o.client_order_id} rests although the Position is {state}")
    for slot, trades in index.trades.items():
        position = index.by_slot.get(slot)
        report.checks[3] += 1
        held = sum((t.signed_qty for t in trades), Decimal(0))
        if position is not None and held != 0 and (position.deleted or position.status.get("phase") in TERMINAL):
            state = "deleted" if position.deleted else position.status.get("phase")
            report.flag(
                3, position.ref, trades[-1].time, f"{held} {slot[1]} still held although the Position is {state}"
            )


# --- 4. audit completeness ------------------------------------------------------------------------


def check_audit(index: Index, report: Report) -> None:
    fills_by_uid: dict[str, Counter[str]] = defaultdict(Counter)
    for f in index.evidence.fills:
        if f.position_uid is not None:
            fills_by_uid[f.position_uid][f.trade_id] += 1
    for slot, position in index.by_slot.items():
        recorded = fills_by_uid.get(position.uid, Counter())
        traded = {t.trade_id: t for t in index.trades.get(slot, [])}
        for trade_id, trade in traded.items():
            report.checks[4] += 1
            if recorded[trade_id] != 1:
                report.flag(
                    4,
                    position.ref,
                    trade.time,
                    f"trade {trade_id} ({trade.side} {trade.qty} @ {trade.price}, order "
                    f"{trade.client_order_id or trade.order_id}) is in the audit fills {recorded[trade_id]} times",
                )
        for trade_id in recorded.keys() - traded.keys():
            report.checks[4] += 1
            report.flag(4, position.ref, 0, f"audit fill {trade_id} has no trade on the exchange")
        check_phase_chain(position, index.events.get(position.uid, []), report)
    intents: dict[str, set[str]] = defaultdict(set)
    for e in index.evidence.events:
        if e.client_order_id and e.position_uid:
            intents[e.position_uid].add(e.client_order_id)
    for o in _placed(index):
        owner = index.owner(o.client_order_id)
        if owner is None:
            continue
        report.checks[4] += 1
        if o.client_order_id not in intents.get(owner.uid, set()):
            report.flag(4, owner.ref, o.created, f"order {o.client_order_id} is on the exchange with no audit event")
    for p in index.evidence.positions:
        if p.deleted:
            continue
        report.checks[4] += 1
        backlog, overflow = len(p.status.get("auditBacklog") or []), int(p.status.get("auditBacklogOverflow") or 0)
        if backlog or overflow:
            report.flag(4, p.ref, 0, f"{backlog} audit records still wait in status, {overflow} overflowed")


def check_phase_chain(position: PositionRecord, events: list[AuditEventRow], report: Report) -> None:
    """Each change starts where the last one ended, or where the last one started: events are written before
    the status, so a change whose status write was lost (a crash, the API server down) is in the audit although
    the Position stayed put, and the next change starts from there. A lost event breaks the chain either way.
    Each change must also be one the planner's transition table allows."""
    phase, previous = INITIAL.value, INITIAL.value
    when = 0
    for e in events:
        if e.type != "PhaseChanged":
            continue
        report.checks[4] += 1
        if e.phase_before not in (phase, previous):
            report.flag(
                4, position.ref, e.occurred_at, f"phase change {e.phase_before} -> {e.phase_after} follows {phase}"
            )
        if not _allowed(e.phase_before, e.phase_after):
            forbidden = f"phase change {e.phase_before} -> {e.phase_after} is not in the planner's table"
            report.flag(4, position.ref, e.occurred_at, forbidden)
        previous, phase, when = e.phase_before or phase, e.phase_after or phase, e.occurred_at
    report.checks[4] += 1
    final = "Closed" if position.deleted else position.status.get("phase", "Pending")
    if position.deleted and phase == "Failed":
        final = "Failed"
    if phase != final:
        report.flag(4, position.ref, when, f"the audit's last phase is {phase}, the Position's is {final}")


def _allowed(before: str | None, after: str | None) -> bool:
    phases = {p.value: p for p in Phase}
    return before in phases and after in phases and allowed(phases[before], phases[after])


# --- 5. realized PnL ------------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def check_pnl(index: Index, report: Report) -> None:
    for slot, position in index.by_slot.items():
        trades = index.trades.get(slot, [])
        expected = sum((t.realized_pnl - t.commission for t in trades), Decimal(0))
        claims: list[tuple[str, Decimal | None, int]] = []
        if position.status.get("phase") == "Closed":
            claims.append(("status", _decimal(position.status.get("realizedPnl")), 0))
        for e in index.events.get(position.uid, []):
            if e.type == "PhaseChanged" and e.phase_after == "Closed":
                claims.append(("Closed event", _decimal(e.detail.get("realizedPnl")), e.occurred_at))
        for source, claimed, when in claims:
            report.checks[5] += 1
            if (claimed if claimed is not None else Decimal(0)) != expected:
                report.flag(
                    5, position.ref, when, f"{source} says realized PnL {claimed}, the exchange's trades {expected}"
                )


# --- 6. closed stays closed -----------------------------------------------------------------------


def check_closed_stays_closed(index: Index, report: Report) -> None:
    sent: dict[str, list[ExchangeRequest]] = defaultdict(list)
    for r in index.evidence.requests:
        if r.method == "POST" and r.path in PLACEMENTS and r.client_order_id:
            owner = index.owner(r.client_order_id)
            if owner is not None:
                sent[owner.uid].append(r)
    for p in index.evidence.positions:
        events = index.events.get(p.uid, [])
        closed = next((e.occurred_at for e in events if e.type == "PhaseChanged" and e.phase_after == "Closed"), None)
        report.checks[6] += 1
        if closed is None:
            continue
        for e in events:
            if e.type == "PhaseChanged" and e.occurred_at >= closed and e.phase_before == "Closed":
                report.flag(6, p.ref, e.occurred_at, f"reopened: {e.phase_before} -> {e.phase_after}")
        for r in sent.get(p.uid, []):
            report.checks[6] += 1
            if r.time > closed:
                report.flag(6, p.ref, r.time, f"order {r.client_order_id} sent after the Position closed at {closed}")
        if not p.deleted and p.status.get("phase") != "Closed":
            report.flag(6, p.ref, closed, f"closed at {closed} but now {p.status.get('phase')}")


# --- 7. one replica per term ----------------------------------------------------------------------


def check_terms(evidence: Evidence, report: Report) -> None:
    holders: dict[int, set[str]] = defaultdict(set)
    for r in evidence.requests:
        if r.epoch is not None and r.replica is not None:
            holders[r.epoch].add(r.replica)
    for e in evidence.events:
        if e.epoch is not None and e.replica is not None:
            holders[e.epoch].add(e.replica)
    for epoch, replicas in sorted(holders.items()):
        report.checks[7] += 1
        if len(replicas) > 1:
            report.flag(7, CONTROLLER, 0, f"term {epoch} acted from {len(replicas)} replicas: {sorted(replicas)}")
    latest: ExchangeRequest | None = None
    for r in sorted(evidence.requests, key=lambda r: r.seq):
        if r.method == "GET":
            continue
        report.checks[7] += 1
        if r.epoch is None:
            if evidence.leader_election:
                report.flag(7, CONTROLLER, r.time, f"{r.method} {r.path} ({r.replica}) names no term")
            continue
        if latest is not None and latest.epoch is not None and r.epoch < latest.epoch:
            report.flag(
                7,
                CONTROLLER,
                r.time,
                f"{r.replica} sent {r.method} {r.path} {r.client_order_id or ''} in term {r.epoch} "
                f"after {latest.replica} had acted in term {latest.epoch}",
                f"request #{r.seq} after #{latest.seq}",
            )
        if latest is None or (r.epoch or 0) >= (latest.epoch or 0):
            latest = r
