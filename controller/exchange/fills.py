"""A Position's trades on the exchange, as rows for the audit ``fills`` table."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from controller.audit.store import Fill


@dataclass(frozen=True)
class FillOwner:
    account: str
    position_uid: str
    namespace: str
    name: str
    client_ids: dict[str, str]
    """Exchange order id → Warden's client order id, for the orders known by id."""


async def read_fills(client: Any, symbol: str, order_ids: Collection[str], owner: FillOwner) -> list[Fill]:
    """Trades of the given orders; values come from the raw strings the exchange sent, never from floats."""
    if not order_ids:
        return []
    trades = await client.fetch_my_trades(symbol)
    return [
        Fill(
            account=owner.account,
            symbol=symbol,
            trade_id=str(info["id"]),
            position_uid=owner.position_uid,
            namespace=owner.namespace,
            name=owner.name,
            client_order_id=owner.client_ids.get(str(info["orderId"])),
            exchange_order_id=str(info["orderId"]),
            side=str(info["side"]).lower(),
            amount=Decimal(info["qty"]),
            price=Decimal(info["price"]),
            fee=Decimal(info.get("commission") or "0"),
            fee_asset=info.get("commissionAsset"),
            realized_pnl=Decimal(info.get("realizedPnl") or "0"),
            maker=info.get("maker"),
            traded_at=datetime.fromtimestamp(int(info["time"]) / 1000, UTC),
        )
        for info in (t["info"] for t in trades)
        if str(info["orderId"]) in order_ids
    ]
