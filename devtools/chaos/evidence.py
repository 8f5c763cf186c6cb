"""What the invariant checker reads: the paper exchange's orders, trades and request log (admin API), the
Positions (Kubernetes), the audit store (Postgres) and the run's own fault log, as plain records.

Evidence is saved as JSON next to the run, so ``python -m devtools.chaos check --evidence FILE`` re-checks a
finished run without the environment. Times are milliseconds since the epoch; the exchange's own times are
its clock's (wall clock in the chaos runs), the audit store's are the controller's wall clock.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from controller.audit.store import JsonRecord
from paper.models import VenueName
from paper.requestlog import LoggedRequest

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED", "TRIGGERING"})


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class ExchangeOrder(JsonRecord):
    """A regular or algo (conditional) order as the venue recorded it."""

    api_key: str
    symbol: str  # the venue's symbol, e.g. BTCUSDT
    kind: str  # "order" | "algo"
    client_order_id: str
    side: str  # BUY | SELL
    type: str
    quantity: Decimal
    executed: Decimal
    reduce_only: bool
    close_position: bool
    status: str
    created: int
    updated: int  # the last status change: when a closed order stopped resting
    source: str  # api | trigger | admin | liquidation

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class ExchangeTrade(JsonRecord):
    api_key: str
    symbol: str
    trade_id: str  # as the account's venue names it (Bybit: the execId), as Warden's audit fills record it
    order_id: str
    client_order_id: str
    side: str
    qty: Decimal
    price: Decimal
    realized_pnl: Decimal
    commission: Decimal
    time: int
    source: str
    liquidation: bool

    @property
    def signed_qty(self) -> Decimal:
        return self.qty if self.side == "BUY" else -self.qty


@dataclass(frozen=True)
class ExchangeRequest(LoggedRequest, JsonRecord):
    """An exchange request as the venue logged it, saved with the evidence."""


@dataclass(frozen=True)
class PositionRecord(JsonRecord):
    """A Position the run created; ``status`` is its last status (the final one unless it was deleted)."""

    namespace: str
    name: str
    uid: str
    api_key: str
    symbol: str  # the venue's symbol
    side: str
    amount: Decimal
    status: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    venue: VenueName = VenueName.BINANCE_USDM  # of its account (evidence saved before Bybit ran: Binance)

    def __post_init__(self) -> None:
        object.__setattr__(self, "venue", VenueName(self.venue))  # read back from JSON as text

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class AuditEventRow(JsonRecord):
    seq: int
    position_uid: str | None
    type: str
    phase_before: str | None
    phase_after: str | None
    client_order_id: str | None
    occurred_at: int
    epoch: int | None
    replica: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditFillRow(JsonRecord):
    position_uid: str | None
    symbol: str
    trade_id: str
    client_order_id: str | None
    amount: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    traded_at: int


@dataclass(frozen=True)
class FaultRecord(JsonRecord):
    """One fault the run injected. ``target``: the replica for process faults, the api key for exchange ones."""

    kind: str
    start: int
    end: int
    target: str = ""
    detail: str = ""


@dataclass
class Evidence:
    positions: list[PositionRecord]
    orders: list[ExchangeOrder]
    trades: list[ExchangeTrade]
    requests: list[ExchangeRequest]
    events: list[AuditEventRow]
    fills: list[AuditFillRow]
    faults: list[FaultRecord]
    end: int
    leader_election: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "positions": [p.to_dict() for p in self.positions],
            "orders": [o.to_dict() for o in self.orders],
            "trades": [t.to_dict() for t in self.trades],
            "requests": [r.to_dict() for r in self.requests],
            "events": [e.to_dict() for e in self.events],
            "fills": [f.to_dict() for f in self.fills],
            "faults": [f.to_dict() for f in self.faults],
            "end": self.end,
            "leader_election": self.leader_election,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evidence:
        return cls(
            positions=[PositionRecord.from_dict(p) for p in data["positions"]],
            orders=[ExchangeOrder.from_dict(o) for o in data["orders"]],
            trades=[ExchangeTrade.from_dict(t) for t in data["trades"]],
            requests=[ExchangeRequest.from_dict(r) for r in data["requests"]],
            events=[AuditEventRow.from_dict(e) for e in data["events"]],
            fills=[AuditFillRow.from_dict(f) for f in data["fills"]],
            faults=[FaultRecord.from_dict(f) for f in data["faults"]],
            end=data["end"],
            leader_election=data.get("leader_election", True),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: Path) -> Evidence:
        return cls.from_json(json.loads(path.read_text()))


# --- collection ---------------------------------------------------------------------------------


def admin_get(paper_url: str, path: str) -> Any:
    with urllib.request.urlopen(f"{paper_url}/_paper/{path}", timeout=60) as response:
        return json.loads(response.read())


def exchange_orders(rows: list[dict[str, Any]]) -> list[ExchangeOrder]:
    return [
        ExchangeOrder(
            api_key=r["apiKey"],
            symbol=r["symbol"],
            kind=r["kind"],
            client_order_id=r["clientOrderId"] or "",
            side=r["side"],
            type=r["type"],
            quantity=Decimal(r["quantity"]),
            executed=Decimal(r.get("executedQty") or "0"),
            reduce_only=bool(r["reduceOnly"]),
            close_position=bool(r["closePosition"]),
            status=r["status"],
            created=int(r["time"]),
            updated=int(r["updateTime"]),
            source=r["source"],
        )
        for r in rows
    ]


def exchange_trades(rows: list[dict[str, Any]]) -> list[ExchangeTrade]:
    return [
        ExchangeTrade(
            api_key=r["apiKey"],
            symbol=r["symbol"],
            trade_id=str(r.get("venueTradeId", r["id"])),
            order_id=str(r["orderId"]),
            client_order_id=r.get("clientOrderId") or "",
            side=r["side"],
            qty=Decimal(r["qty"]),
            price=Decimal(r["price"]),
            realized_pnl=Decimal(r["realizedPnl"]),
            commission=Decimal(r["commission"]),
            time=int(r["time"]),
            source=r["source"],
            liquidation=bool(r["liquidation"]),
        )
        for r in rows
    ]


def exchange_requests(rows: list[dict[str, Any]]) -> list[ExchangeRequest]:
    return [ExchangeRequest.from_row(r) for r in rows]


async def audit_rows(database_url: str) -> tuple[list[AuditEventRow], list[AuditFillRow]]:
    conn = await asyncpg.connect(database_url)
    try:
        events = await conn.fetch(
            "SELECT seq, position_uid, type, phase_before, phase_after, client_order_id, occurred_at, epoch,"
            " replica, detail FROM events ORDER BY occurred_at, seq"
        )
        fills = await conn.fetch(
            "SELECT position_uid, symbol, trade_id, client_order_id, amount, price, fee, realized_pnl, traded_at"
            " FROM fills ORDER BY traded_at"
        )
    finally:
        await conn.close()
    return (
        [
            AuditEventRow(
                seq=r["seq"],
                position_uid=str(r["position_uid"]) if r["position_uid"] else None,
                type=r["type"],
                phase_before=r["phase_before"],
                phase_after=r["phase_after"],
                client_order_id=r["client_order_id"],
                occurred_at=_ms(r["occurred_at"]),
                epoch=r["epoch"],
                replica=r["replica"],
                detail=json.loads(r["detail"]) if isinstance(r["detail"], str) else dict(r["detail"]),
            )
            for r in events
        ],
        [
            AuditFillRow(
                position_uid=str(r["position_uid"]) if r["position_uid"] else None,
                symbol=r["symbol"],
                trade_id=r["trade_id"],
                client_order_id=r["client_order_id"],
                amount=r["amount"],
                price=r["price"],
                fee=r["fee"],
                realized_pnl=r["realized_pnl"],
                traded_at=_ms(r["traded_at"]),
            )
            for r in fills
        ],
    )


async def collect(
    paper_url: str, database_url: str, positions: list[PositionRecord], faults: list[FaultRecord], end: int
) -> Evidence:
    """Everything the checker needs, read once the run has settled."""
    events, fills = await audit_rows(database_url)
    return Evidence(
        positions=positions,
        orders=exchange_orders(admin_get(paper_url, "orders")),
        trades=exchange_trades(admin_get(paper_url, "trades")),
        requests=exchange_requests(admin_get(paper_url, "requests")),
        events=events,
        fills=fills,
        faults=faults,
        end=end,
    )
