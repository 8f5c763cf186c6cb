"""The reconciler's steps against fakes (``tests/fakes.py``): the planner's real steps, applied by the shell, with
every status write, audit write and send in one journal.

The promises: an entry waits for its committed intent (no store, no entry); a stop's, a close's or a cancel's
records ride in the status write that records its intent, whether the store is up or not; intent is written
before every send; one status write per action.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, cast

import ccxt
import kopf
import pytest

from controller.api.v1alpha1 import OrderState, Phase, PositionStatus
from controller.api.vocabulary import EventType
from controller.exchange import binanceusdm
from controller.handlers import reconciler as reconciler_module
from controller.handlers.positions import reconcile, wake_side
from controller.handlers.reconciler import Reconciler, Target
from controller.handlers.runtime import Runtime
from controller.reconcile.model import (
    Action,
    CancelOrder,
    Note,
    Observation,
    ObservedOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    Purpose,
    Step,
    client_order_id,
)
from controller.reconcile.results import record_success
from tests.fakes import FakeAudit, FakeClock, FakeGateway, FakeKube, FakeRuntime
from tests.unit.test_planner import CLOSE, ENTRY, STOP1, UID, obs, run, seen, spec


@pytest.fixture(autouse=True)
def posted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Kubernetes events, which kopf posts only inside its operator."""
    notes: list[str] = []
    monkeypatch.setattr(kopf, "info", lambda body, reason, message: notes.append(reason))
    monkeypatch.setattr(kopf, "warn", lambda body, reason, message: notes.append(reason))
    yield notes


def reconciler(runtime: FakeRuntime) -> Reconciler:
    """One pass's reconciler, past its observation (which gives it the account's gateway and observer)."""
    made = Reconciler(runtime, Target("ns", "p", UID, 1, spec(), body={}), FakeClock())
    made.gateway, made.observer = runtime.account_of.gateway, runtime.account_of.observer
    return made


@dataclass(frozen=True)
class Case:
    name: str
    before: PositionStatus
    step: Step


FILLED = seen(ENTRY, OrderState.FILLED, average_price=Decimal("65000"))
RESTING = obs(size="0.010", orders={ENTRY: FILLED, STOP1: seen(STOP1, OrderState.OPEN, filled="0", exchange_id="2")})


def sent(step: Step, order_id: str) -> PositionStatus:
    assert step.action is not None
    return record_success(step.status, step.action, order_id)


def cases() -> list[Case]:
    """The lifecycle's actions, each as the planner asks for it: entry, stop, close, cancel of the stop."""
    entry = run(spec(), PositionStatus(), obs())
    stop = run(spec(), sent(entry, "1"), obs(size="0.010", orders={ENTRY: FILLED}))
    protected = run(spec(), sent(stop, "2"), RESTING).status
    closing = run(spec(), run(spec(), protected, RESTING, deleting=True).status, RESTING, deleting=True)
    flat: Observation = obs(orders={**RESTING.orders, CLOSE: seen(CLOSE, OrderState.FILLED, exchange_id="3")})
    cancel = run(spec(), sent(closing, "3"), flat, deleting=True)
    found = [
        Case("entry", PositionStatus(), entry),
        Case("stop", sent(entry, "1"), stop),
        Case("close", run(spec(), protected, RESTING, deleting=True).status, closing),
        Case("cancel", sent(closing, "3"), cancel),
    ]
    kinds = [type(c.step.action) for c in found]
    assert kinds == [PlaceMarketOrder, PlaceStopOrder, PlaceMarketOrder, CancelOrder], kinds
    return found


CASES = cases()
REDUCING = [c for c in CASES if c.name not in ("entry", "stop")]
"""Risk-reducing steps that record their intent themselves (the stop a market entry calls for is recorded with
the entry: see test_the_stop_of_a_market_entry_is_recorded_with_it_and_goes_out_first)."""
CANCEL = next(c for c in CASES if c.name == "cancel")


def ids(case: Case) -> str:
    return case.name


def intents(status: dict[str, object]) -> list[str]:
    backlog = status.get("auditBacklog") or []
    assert isinstance(backlog, list)
    return [b["type"] for b in backlog]


async def test_an_entry_is_refused_without_the_store(posted: list[str]) -> None:
    runtime = FakeRuntime()
    runtime.audit.down = True
    case = CASES[0]
    status, go_on = await reconciler(runtime).apply(case.before, case.step, FakeClock().now())
    assert not go_on and runtime.journal.kinds() == ["status"]  # no send
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert (ready.status.value, ready.reason) == ("False", "AuditUnavailable")
    assert [b.type for b in status.auditBacklog] == ["AuditUnavailable"] and "AuditUnavailable" in posted
    assert status.entryOrder is None  # the intent was not recorded either


async def test_an_entry_commits_its_intent_to_the_store_before_the_send() -> None:
    runtime = FakeRuntime()
    case = CASES[0]
    await reconciler(runtime).apply(case.before, case.step, FakeClock().now())
    assert runtime.journal.kinds() == ["audit", "status", "send"]
    assert "EntryIntent" in runtime.journal.of("audit")[0]


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_a_regular_order_is_announced_to_the_observer_before_its_send(case: Case) -> None:
    """From the announcement on, every read lists the symbol's regular orders: none begun after the send can leave
    the entry or the close out as if it had ended. Stops and cancels are read (or known) whatever."""
    runtime = FakeRuntime()
    await reconciler(runtime).apply(case.before, case.step, FakeClock().now())
    assert len(runtime.journal.of("send")) == 1
    assert runtime.account_of.observer.regular_for == ([(UID, 0)] if case.name in ("entry", "close") else [])


async def test_a_cancel_is_audited_before_the_send_and_its_status_written_after() -> None:
    """A cancel leaves no order to find by its id: with the store up, its row is the durable intent, and the
    step's status goes out with the cancel's result (one write, after the send)."""
    runtime = FakeRuntime()
    made = reconciler(runtime)
    status, _ = await made.apply(CANCEL.before, CANCEL.step, FakeClock().now())
    assert runtime.journal.kinds() == ["audit", "send"]
    assert {n.type for n in CANCEL.step.notes} <= set(runtime.journal.of("audit")[0])
    await made.audit.commit(CANCEL.before, status, [])  # the next step's write, from the status last written
    assert runtime.journal.kinds() == ["audit", "send", "audit", "status"]
    assert runtime.journal.of("audit")[1] == ["OrderCanceled"]  # the result, with the status write
    assert not runtime.journal.of("status")[0].get("auditBacklog")


@pytest.mark.parametrize(
    ("case", "down"),
    # A cancel with the store up: test_a_cancel_is_audited_before_the_send_and_its_status_written_after.
    [
        pytest.param(c, down, id=f"{c.name}-{label}")
        for c in REDUCING
        for down, label in ((False, "store-up"), (True, "store-down"))
        if c is not CANCEL or down
    ],
)
async def test_a_risk_reducing_steps_records_ride_in_its_status_write(case: Case, down: bool) -> None:
    runtime = FakeRuntime()
    runtime.audit.down = down
    made = reconciler(runtime)
    status, _ = await made.apply(case.before, case.step, FakeClock().now())
    # The store is not asked before the send: the records are in the status write that records the intent.
    assert runtime.journal.kinds() == ["status", "send"]
    carried = intents(runtime.journal.of("status")[0])
    assert {n.type for n in case.step.notes} <= set(carried)
    # The pass's end writes them with the send's own record, and takes them out of the backlog once stored.
    runtime.audit.down = False
    after = await made.audit.commit(status, status, [])
    assert runtime.journal.kinds() == ["status", "send", "audit", "status"]
    assert runtime.journal.of("audit")[0][: len(carried)] == carried and not after.auditBacklog


async def test_the_stop_of_a_market_entry_is_recorded_with_it_and_goes_out_first() -> None:
    """Invariant 2 without a write between the fill and its stop: the stop's id is in the entry's intent."""
    entry, stop = CASES[0], CASES[1]
    assert entry.step.status.stopOrder is not None and entry.step.status.stopOrder.clientOrderId == STOP1
    assert entry.step.status.stopOrder.state is OrderState.INTENDED
    runtime = FakeRuntime()
    made = reconciler(runtime)
    status, go_on = await made.apply(stop.before, stop.step, FakeClock().now())
    assert runtime.journal.kinds() == ["send"] and go_on
    assert status.stopOrder is not None and status.stopOrder.state is OrderState.OPEN
    # The fill's step, the stop's intent and its placement are written together, after the send.
    await made.audit.commit(stop.before, status, [])
    assert runtime.journal.kinds() == ["send", "audit", "status"]
    audited = runtime.journal.of("audit")[0]
    assert all(t in audited for t in ("EntryFilled", "StopIntent", "OrderPlaced")), audited


# A cancel's intent is its audit row: test_a_cancel_is_audited_before_the_send_and_its_status_written_after.
@pytest.mark.parametrize("case", [c for c in CASES if c.name not in ("stop", "cancel")], ids=ids)
async def test_intent_is_written_before_every_send_and_once_per_action(case: Case) -> None:
    runtime = FakeRuntime()
    made = reconciler(runtime)
    status, go_on = await made.apply(case.before, case.step, FakeClock().now())
    kinds = runtime.journal.kinds()
    assert kinds.count("send") == 1 and kinds.count("status") == 1
    assert kinds.index("status") < kinds.index("send")
    written = runtime.journal.of("status")[0]
    action = case.step.action
    assert isinstance(action, PlaceMarketOrder | PlaceStopOrder | CancelOrder)
    assert action.client_order_id in str(written)  # the intent names the order the send then carries
    # The send's result is not a second write of its own: it waits for the next step's (here the pass's end).
    assert go_on and made.audit.pending
    await made.audit.commit(status, status, [])
    assert runtime.journal.kinds().count("status") == 2


async def test_a_resend_goes_out_before_any_write() -> None:
    """A retry of an order whose intent is already recorded: its step is saved with the send's result."""
    runtime = FakeRuntime()
    case = CASES[1]
    again = Step(case.step.status, case.step.action, (Note(EventType.STOP_INTENT, "again"),))
    await reconciler(runtime).apply(case.step.status, again, FakeClock().now())
    assert runtime.journal.kinds() == ["send"]


async def test_a_failed_send_is_one_write_with_its_error(posted: list[str]) -> None:
    runtime = FakeRuntime()
    runtime.account_of.gateway.error = ccxt.InvalidOrder("-2021 would immediately trigger")
    case = CASES[1]
    status, _ = await reconciler(runtime).apply(case.before, case.step, FakeClock().now())
    assert runtime.journal.kinds() == ["send", "audit", "status"]
    assert "ExchangeError" in runtime.journal.of("audit")[0] and "ExchangeError" in posted
    assert any(c.type == "Synced" and c.reason == "ExchangeRejected" for c in status.conditions)


@pytest.mark.parametrize("down", [False, True], ids=["store-up", "store-down"])
async def test_a_whole_pass_sends_its_entry_only_after_the_store_took_its_intent(down: bool) -> None:
    runtime = FakeRuntime()
    runtime.audit.down = down
    runtime.account_of.gateway.observation = obs()
    made = Reconciler(runtime, Target("ns", "p", UID, 1, spec(), body={}), FakeClock())
    status = await made.run(PositionStatus(), deleting=False)
    if down:
        assert runtime.journal.kinds() == ["status"] and status.entryOrder is None
    else:
        # The send's own record rides in the next write (here the pass's end, as the entry is not yet seen).
        assert runtime.journal.kinds() == ["audit", "status", "send", "audit", "status"]
        assert runtime.journal.of("audit") == [["PositionCreated", "EntryIntent"], ["OrderPlaced", "PhaseChanged"]]


class DeletedAtTheFirstSend(FakeGateway):
    """The exchange of a pass that the Position's deletion overtakes: right after the pass's first send, the watch
    shows the Position marked for deletion. An order sent rests, one cancelled is gone."""

    def __init__(self, runtime: FakeRuntime) -> None:
        super().__init__(runtime.journal, capabilities=binanceusdm.CAPABILITIES, observation=self.seeing({}))
        self.runtime = runtime

    @staticmethod
    def seeing(orders: dict[str, ObservedOrder | None]) -> Observation:
        return replace(obs(orders=orders), venue=binanceusdm.CAPABILITIES)

    async def execute(self, symbol: str, action: Action) -> str | None:
        sent = await super().execute(symbol, action)
        if len(self.journal.of("send")) == 1:
            self.runtime.positions[UID] = {"metadata": {"uid": UID, "deletionTimestamp": "2026-11-22T12:00:00Z"}}
        assert self.observation is not None
        cid = getattr(action, "client_order_id", "")
        state = OrderState.CANCELED if isinstance(action, CancelOrder) else OrderState.OPEN
        orders = {**self.observation.orders, cid: seen(cid, state, filled="0", exchange_id=cid)}
        self.observation = self.seeing(orders)
        return sent


async def test_a_deletion_the_watch_shows_mid_pass_stops_the_entry_after_the_pre_armed_stop() -> None:
    """The daemon's pass sends the pre-armed stop; the Position is deleted meanwhile: the pass's next step is the
    deletion's (cancel that stop, close before the entry), not the entry of a Position already deleted."""
    runtime = FakeRuntime()
    runtime.account_of.gateway = DeletedAtTheFirstSend(runtime)
    pre_armed = spec(stopLoss={"price": "60000", "preArm": True})
    made = Reconciler(runtime, Target("ns", "p", UID, 1, pre_armed, body={}), FakeClock())
    status = await made.run(PositionStatus(), deleting=False)
    sends = runtime.journal.of("send")
    assert [type(a) for a in sends] == [PlaceStopOrder, CancelOrder], sends
    assert sends[0].client_order_id == sends[1].client_order_id == client_order_id(UID, Purpose.PRE_ARMED)
    assert status.phase is Phase.CLOSED and status.entryOrder is None
    audited = [t for batch in runtime.journal.of("audit") for t in batch]
    assert audited.index("OrderCanceled") < audited.index("PositionClosed"), audited


async def test_a_position_the_daemon_closed_before_its_entry_is_not_closed_again_by_the_deletion_handler() -> None:
    """The daemon's pass, woken by the deletion, closes a Position that sent nothing; the deletion handler, next
    under the lock, finds it Closed and records nothing more (no second PositionClosed, closedAt kept)."""
    kube, audit = FakeKube(), FakeAudit()
    runtime = Runtime(kube=kube, audit=cast(Any, audit))
    deleted = {"uid": UID, "name": "p", "resourceVersion": "10", "deletionTimestamp": "2026-11-22T12:00:00Z"}
    kube.objects["positions", "ns", "p"] = {"metadata": deleted, "spec": spec().model_dump(mode="json")}
    daemon = await reconcile(runtime, "ns", "p", {"metadata": deleted}, deleting=False)
    assert daemon is not None and daemon.status.phase is Phase.CLOSED
    kube.objects["positions", "ns", "p"]["status"] = daemon.status.model_dump(mode="json", exclude_none=True)
    runtime.known_version.clear()  # the handler reads what the daemon wrote
    handler = await reconcile(runtime, "ns", "p", {"metadata": deleted}, deleting=True)
    assert handler is not None and handler.status.closedAt == daemon.status.closedAt
    assert [t for batch in audit.journal.of("audit") for t in batch].count("PositionClosed") == 1


def watched(uid: str, *, side: str = "long", account: str = "paper", namespace: str = "ns", **status: object) -> dict:  # type: ignore[type-arg]
    spec_ = {"accountRef": {"name": account}, "symbol": "BTC/USDT:USDT", "side": side}
    return {"metadata": {"uid": uid, "namespace": namespace}, "spec": spec_, "status": status}


@pytest.mark.parametrize(
    ("others", "alone", "elsewhere", "pre_armed"),
    [
        ([], True, False, False),
        (
            [watched("short", side="short"), watched("acct", account="other"), watched("ns", namespace="x")],
            True,
            False,
            False,
        ),
        ([watched("done", phase="Closed"), watched("failed", phase="Failed")], True, False, False),
        ([watched("new")], False, False, False),  # a newcomer counts from its creation, before any status
        ([watched("set", phase="Protected", venueTrailing={"state": "Set", "distance": "650"})], False, True, False),
        (
            [watched("refused", phase="Protected", venueTrailing={"state": "Rejected", "distance": "650"})],
            False,
            False,
            False,
        ),
        ([watched("armed", preArmedStop={"state": "Open"})], False, False, True),
        ([watched("arming", preArmedStop={"state": "Intended"})], False, False, True),
        ([watched("disarmed", phase="Protected", preArmedStop={"state": "Canceled"})], False, False, False),
        ([watched("gone", phase="Closed", preArmedStop={"state": "Open"})], True, False, False),
    ],
)
def test_the_shell_tells_whether_a_position_is_alone_on_its_side_from_the_watched_fleet(
    others: list[dict],  # type: ignore[type-arg]
    alone: bool,
    elsewhere: bool,
    pre_armed: bool,
) -> None:
    runtime = FakeRuntime()
    runtime.positions = {o["metadata"]["uid"]: o for o in [watched(UID), *others]}
    assert reconciler(runtime).side_sharers() == (alone, elsewhere, pre_armed)


def test_a_newcomer_wakes_the_positions_of_its_side_only() -> None:
    positions = {u: watched(u, side=s) for u, s in (("a", "long"), ("b", "short"))}
    wakes = {u: asyncio.Event() for u in positions}
    wake_side(positions, wakes, watched("new"))
    assert (wakes["a"].is_set(), wakes["b"].is_set()) == (True, False)


LIMIT = spec(entry={"type": "limit", "price": "64000"})


async def test_the_stop_of_a_resting_limit_is_recorded_with_it_and_goes_out_on_the_fill_first() -> None:
    """The pushed fill of a resting limit sends the stop recorded with the entry, with no write ahead of it; this
    process recorded it, so it is not looked up first."""
    entry = run(LIMIT, PositionStatus(), obs())
    assert entry.status.stopOrder is not None and entry.status.stopOrder.state is OrderState.INTENDED
    runtime = FakeRuntime()
    await reconciler(runtime).apply(PositionStatus(), entry, FakeClock().now())
    resting = sent(entry, "1")
    fill_pass = Reconciler(runtime, Target("ns", "p", UID, 1, LIMIT, body={}), FakeClock())
    fill_pass.gateway, fill_pass.observer = runtime.account_of.gateway, runtime.account_of.observer
    fill_pass.inherited = reconciler_module._intended(resting)  # what a pass that begins with it inherits
    assert STOP1 in fill_pass.unsent(resting)
    stop = run(LIMIT, resting, obs(size="0.010", orders={ENTRY: FILLED}))
    assert isinstance(stop.action, PlaceStopOrder) and stop.action.client_order_id == STOP1
    runtime.journal.entries.clear()
    status, _ = await fill_pass.apply(resting, stop, FakeClock().now())
    assert runtime.journal.kinds() == ["send"]
    assert status.stopOrder is not None and status.stopOrder.state is OrderState.OPEN
    assert STOP1 not in fill_pass.unsent(resting)  # sent: from here on it is looked up


async def test_a_stop_recorded_by_a_process_that_died_is_looked_up() -> None:
    """After a restart nothing says the recorded stop was not sent: the pass looks it up by its id."""
    resting = sent(run(LIMIT, PositionStatus(), obs()), "1")
    made = reconciler(FakeRuntime())
    made.inherited = reconciler_module._intended(resting)
    assert made.unsent(resting) == frozenset()


async def test_a_next_stop_made_in_this_pass_is_not_looked_up() -> None:
    """Placing a replacement stop makes the next one's id: it cannot be on the venue, only the one before it was
    sent."""
    made = reconciler(FakeRuntime())
    before = sent(CASES[1].step, "2")  # protected: stop 1 rests, stop 2 recorded as its replacement
    assert before.nextStopOrderId == client_order_id(UID, Purpose.STOP, 2)
    third = client_order_id(UID, Purpose.STOP, 3)
    after = before.model_copy(update={"nextStopOrderId": third})  # stop 2 went out in this pass
    made.inherited = reconciler_module._intended(before)
    assert third in made.unsent(after) and before.nextStopOrderId not in made.unsent(before)
    made.inherited = reconciler_module._intended(after)  # a later pass, in a process that did not record it
    assert third not in made.unsent(after)


async def test_what_a_term_knew_unsent_is_looked_up_in_the_next() -> None:
    """A leader in between may have sent the recorded stop: a replica that leads again looks it up."""
    entry = run(LIMIT, PositionStatus(), obs())
    runtime = FakeRuntime()
    await reconciler(runtime).apply(PositionStatus(), entry, FakeClock().now())
    resting = sent(entry, "1")
    later = reconciler(runtime)
    later.inherited = reconciler_module._intended(resting)
    assert STOP1 in later.unsent(resting)
    runtime.epoch = 2  # the lease went elsewhere and came back
    assert STOP1 not in later.unsent(resting)
