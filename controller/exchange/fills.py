"""Who a Position's trades belong to, for the audit ``fills`` table (each venue adapter reads its own trades)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from controller.audit.store import Fill


@dataclass(frozen=True)
class FillOwner:
    account: str
    position_uid: str
    namespace: str
    name: str
    client_ids: dict[str, str]
    """Exchange order id → Warden's client order id, for the orders known by id."""

    def fill(
        self,
        symbol: str,
        trade_id: str,
        order_id: str,
        side: str,
        amount: Decimal,
        price: Decimal,
        fee: Decimal,
        fee_asset: str | None,
        realized_pnl: Decimal,
        maker: bool | None,
        traded_ms: int,
    ) -> Fill:
        """One of the owner's trades as an audit row (``traded_ms``: the venue's epoch milliseconds)."""
        return Fill(
            account=self.account,
            symbol=symbol,
            trade_id=trade_id,
            position_uid=self.position_uid,
            namespace=self.namespace,
            name=self.name,
            client_order_id=self.client_ids.get(order_id),
            exchange_order_id=order_id,
            side=side.lower(),
            amount=amount,
            price=price,
            fee=fee,
            fee_asset=fee_asset,
            realized_pnl=realized_pnl,
            maker=maker,
            traded_at=datetime.fromtimestamp(traded_ms / 1000, UTC),
        )
