"""Who a Position's trades belong to, for the audit ``fills`` table (each venue adapter reads its own trades)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FillOwner:
    account: str
    position_uid: str
    namespace: str
    name: str
    client_ids: dict[str, str]
    """Exchange order id → Warden's client order id, for the orders known by id."""
