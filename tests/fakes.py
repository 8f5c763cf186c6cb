"""Stand-ins for the shell's collaborators (``controller/handlers/ports.py``), shared by the unit tests.

Every fake appends what it was asked to one ``Journal``, so a test reads the order of status writes, audit
writes and sends across all of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt

from controller.api.v1alpha1 import ExchangeAccountSpec, OrderState, PositionSpec, PositionStatus, Side
from controller.audit.store import AuditEvent, AuditUnavailable, Fill
from controller.exchange import binanceusdm
from controller.exchange.errors import classify
from controller.exchange.fills import FillOwner
from controller.exchange.gateway import cancelled_unfilled
from controller.exchange.port import PushedOrder, PushedPosition, RequestBudget, UserStream
from controller.handlers.observer import Watcher
from controller.reconcile.model import (
    Action,
    MarketRules,
    Observation,
    ObservedOrder,
    OpenOrder,
    Outcome,
    Reads,
    Snapshot,
    Trade,
)
from controller.reconcile.venue import Capabilities
from controller.settings import ObservationSettings


@dataclass
class Journal:
    """What happened, in order: ("status", status dict) / ("audit", event types) / ("fills", n) / ("send", action)."""

    entries: list[tuple[str, Any]] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.entries]

    def of(self, kind: str) -> list[Any]:
        return [what for k, what in self.entries if k == kind]


@dataclass
class FakeKube:
    """The API server: objects by (plural, namespace, name), each read and status write journalled."""

    journal: Journal = field(default_factory=Journal)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)
    version: int = 10

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(name)
        return self.objects.get((plural, namespace, name))

    async def list(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        return [o for (p, ns, _), o in self.objects.items() if p == plural and namespace in (None, ns)]

    async def create(self, plural: str, namespace: str, body: dict[str, Any]) -> bool:
        key = (plural, namespace, body["metadata"]["name"])
        if key in self.objects:
            return False
        self.objects[key] = body
        return True

    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> str:
        self.journal.entries.append(("status", status))
        self.version += 1
        return str(self.version)

    async def secret(self, namespace: str, name: str) -> Any:
        raise LookupError(f"no Secret {namespace}/{name} in the fake")


@dataclass
class FakeAudit:
    """The audit store; ``down`` refuses every write at once, as the real one does during a known outage."""

    journal: Journal = field(default_factory=Journal)
    down: bool = False
    events: list[AuditEvent] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    @property
    def available_soon(self) -> bool:
        return not self.down

    async def record(self, events: list[AuditEvent]) -> None:
        if self.down:
            raise AuditUnavailable("the fake store is down")
        self.journal.entries.append(("audit", [e.type for e in events]))
        self.events.extend(events)

    async def record_fills(self, fills: list[Fill]) -> None:
        if self.down:
            raise AuditUnavailable("the fake store is down")
        self.journal.entries.append(("fills", len(fills)))
        self.fills.extend(fills)

    async def close(self) -> None:
        pass


@dataclass
class FakeGateway:
    """An account's exchange. To the observer: ``snapshots`` in turn (the last one again and again), taken now on
    ``clock`` if one is given, ``resting`` orders to a peek and ``found`` ones to a look-up. To a pass:
    ``observation``, and every order taken (or ``error`` raised)."""

    journal: Journal = field(default_factory=Journal)
    snapshots: list[Snapshot] = field(default_factory=list)
    clock: Callable[[], float] | None = None
    fail: bool = False
    resting: dict[str, OpenOrder] = field(default_factory=dict)
    reads: int = 0
    peeks: int = 0
    peek_error: Exception | None = None
    """Raised by a peek."""
    found: dict[str, ObservedOrder] = field(default_factory=dict)
    """What a look-up by client id finds (``lookups``: the ids looked up)."""
    lookups: list[str] = field(default_factory=list)
    symbols_asked: list[frozenset[str]] = field(default_factory=list)
    every_position: list[bool] = field(default_factory=list)
    orders: list[bool] = field(default_factory=list)
    regular_asked: list[frozenset[str] | None] = field(default_factory=list)
    read: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by the first read that succeeds."""
    observation: Observation | None = None
    error: Exception | None = None
    rules_of: MarketRules = field(
        default_factory=lambda: MarketRules(Decimal("0.001"), Decimal("0.001"), Decimal("100"), Decimal("0.1"))
    )
    client: Any = None
    positions_pushed: list[PushedPosition] = field(default_factory=list)
    stream_gaps: int = 0

    capabilities: Capabilities = field(default_factory=Capabilities)
    budget: RequestBudget = binanceusdm.BUDGET
    stream: UserStream = binanceusdm.BinanceUsdm.stream

    def ended(self, client_id: str) -> ObservedOrder | None:
        return None

    def snapshot_reads(
        self, symbols: frozenset[str], regular: frozenset[str], positioned: frozenset[str], orders: bool = True
    ) -> Reads:
        return binanceusdm.snapshot_reads(symbols, regular, positioned, orders)

    # The unified shapes ccxt.pro pushes, the costs and the error classes of Binance's adapter.
    def pushed_order(self, push: dict[str, Any]) -> PushedOrder:
        return binanceusdm.pushed_order(push)

    def pushed_position(self, push: dict[str, Any]) -> PushedPosition:
        return binanceusdm.pushed_position(push)

    def pushed_size(self, position: PushedPosition) -> None:
        self.positions_pushed.append(position)

    def flat_since(self, symbol: str, side: Side, taken_at: float) -> bool:
        return False  # its passes are told their observation (``observation``), pushes included

    def pushed_trades(self, pushes: list[dict[str, Any]]) -> None:
        raise NotImplementedError("Binance's order pushes carry their trades")

    def stream_gap(self) -> None:
        self.stream_gaps += 1

    def pushed(self, push: dict[str, Any]) -> ObservedOrder | None:
        return binanceusdm.pushed_end(push)

    def pushed_cancel(self, push: dict[str, Any]) -> bool:
        order = binanceusdm.pushed_end(push) or binanceusdm.pushed_regular(push)
        return order is not None and cancelled_unfilled(order)

    def pushed_fill(self, push: dict[str, Any]) -> ObservedOrder | None:
        order = binanceusdm.pushed_regular(push)
        return order if order is not None and order.state is OrderState.FILLED else None

    def action_cost(self, action: Action) -> int:
        return binanceusdm.request_weight(action)

    def classify(self, error: Exception) -> Outcome:
        return classify(error)

    async def close(self) -> None:
        pass

    async def account_view(self) -> Snapshot:
        return await self.snapshot(frozenset())

    async def find_order(self, symbol: str, client_id: str, conditional: bool) -> ObservedOrder | None:
        self.lookups.append(client_id)
        return self.found.get(client_id)

    async def looked_up_fill(self, symbol: str, client_id: str) -> ObservedOrder | None:
        order = await self.find_order(symbol, client_id, conditional=False)
        return order if order is not None and order.state is OrderState.FILLED else None

    async def trades(self, symbol: str, since: datetime | None) -> tuple[Trade, ...]:
        return ()

    async def fills(
        self, symbol: str, order_ids: Collection[str], owner: FillOwner, since: datetime | None
    ) -> list[Fill]:
        return []

    async def resting_orders(self, symbols: list[str]) -> dict[str, OpenOrder]:
        self.peeks += 1
        if self.peek_error is not None:
            raise self.peek_error
        return self.resting

    async def snapshot(
        self,
        symbols: frozenset[str],
        every_position: bool = True,
        orders: bool = True,
        regular: frozenset[str] | None = None,
    ) -> Snapshot:
        started = None if self.clock is None else self.clock()
        self.reads += 1
        self.symbols_asked.append(symbols)
        self.every_position.append(every_position)
        self.orders.append(orders)
        self.regular_asked.append(regular)
        await asyncio.sleep(0.01)
        if self.fail:
            raise ccxt.NetworkError("connection refused")
        shown = self.snapshots or [Snapshot(0.0, {}, {}, {}, {})]
        taken = shown[min(self.reads, len(shown)) - 1]
        self.read.set()
        return taken if started is None else dataclasses.replace(taken, taken_at=started)

    async def rules(self, symbol: str) -> MarketRules:
        return self.rules_of

    async def observe(
        self, spec: PositionSpec, status: PositionStatus, snapshot: Snapshot, unsent: frozenset[str] = frozenset()
    ) -> Observation:
        assert self.observation is not None, "set the observation the pass should see"
        return self.observation

    async def execute(self, symbol: str, action: Action) -> str | None:
        self.journal.entries.append(("send", action))
        if self.error is not None:
            raise self.error
        return f"x{len(self.journal.of('send'))}"


@dataclass
class FakeObserver:
    journal: Journal = field(default_factory=Journal)
    acted_for: list[str] = field(default_factory=list)
    sending_for: list[tuple[str, bool]] = field(default_factory=list)
    regular_for: list[tuple[str, int]] = field(default_factory=list)
    """Positions announced to send a regular order, each with how many sends the journal held by then."""
    weight: int = 0

    def watch(self, uid: str, watcher: Watcher) -> None:
        pass

    def interval(self) -> float:
        return 1.0

    async def snapshot(
        self,
        symbol: str,
        newer_than: float,
        acted_at: float = -math.inf,
        answered: bool = False,
        regular: bool = False,
    ) -> Snapshot:
        return Snapshot(max(newer_than, acted_at), {}, {}, {}, {})

    def placing_regular(self, uid: str) -> None:
        self.regular_for.append((uid, len(self.journal.of("send"))))

    def revaluing(self, uid: str) -> bool:
        return False

    def acted(self, uid: str) -> None:
        self.acted_for.append(uid)

    def sending(self, client_id: str, placing: bool) -> None:
        self.sending_for.append((client_id, placing))

    def spent(self, weight: int) -> None:
        self.weight += weight


@dataclass
class FakeAccount:
    spec: ExchangeAccountSpec
    gateway: FakeGateway
    observer: FakeObserver


@dataclass
class FakeClock:
    """Stands still unless a test moves it."""

    wall: datetime = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    mono: float = 100.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


@dataclass
class FakeRuntime:
    """The runtime as one pass sees it (``ports.Shell``), with every collaborator fake and one journal."""

    journal: Journal = field(default_factory=Journal)
    leader: bool = True
    replica: str = "replica-0"
    epoch: int | None = 1
    acted_at: dict[str, float] = field(default_factory=dict)
    filled_at: dict[str, float] = field(default_factory=dict)
    unsent_stops: dict[str, tuple[int | None, set[str]]] = field(default_factory=dict)
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    known_version: dict[str, str] = field(default_factory=dict)
    observed_at: dict[str, float] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    wakes: dict[str, asyncio.Event] = field(default_factory=dict)
    observation: ObservationSettings = field(default_factory=ObservationSettings)
    kube: FakeKube = field(init=False)
    audit: FakeAudit = field(init=False)
    account_of: FakeAccount = field(init=False)

    def __post_init__(self) -> None:
        self.kube = FakeKube(self.journal)
        self.audit = FakeAudit(self.journal)
        spec = ExchangeAccountSpec.model_validate({"exchange": "binanceusdm", "credentialsSecretRef": {"name": "s"}})
        self.account_of = FakeAccount(spec, FakeGateway(self.journal), FakeObserver(self.journal))

    def may_act(self) -> bool:
        return self.leader

    def positions_in(self, namespace: str | None) -> list[dict[str, Any]]:
        return [p for p in self.positions.values() if namespace is None or p["metadata"]["namespace"] == namespace]

    async def account(self, namespace: str, account_name: str, *, fresh: bool = False) -> FakeAccount:
        return self.account_of

    def account_lock(self, namespace: str, account_name: str) -> asyncio.Lock:
        return self.locks.setdefault(f"account/{namespace}/{account_name}", asyncio.Lock())

    def wake(self, uid: str) -> asyncio.Event:
        return self.wakes.setdefault(uid, asyncio.Event())
