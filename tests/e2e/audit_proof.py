"""Checks over everything a whole end-to-end session did, run when it ends: the audit store against the
paper exchange's own request log and the Position resources.

- Every order or cancel a Warden replica sent (by client id, from the exchange's log) is in the audit store:
  its intent row is committed (or buffered in status and flushed) before the call, so a path that touches the
  exchange without an audit row fails here.
- Every Position's PhaseChanged rows form one unbroken chain from Pending, and for a Position that still
  exists the chain ends in the phase its status shows: a phase change without its row fails here.
- Every event type written is in the catalogue (docs/audit-events.md).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import asyncpg

from controller.audit.catalogue import CATALOGUE
from controller.reconcile.model import is_warden_order

PLACE_ROUTES = frozenset({("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder"), ("POST", "/v5/order/create")})
"""(method, path) of an order placement, regular or conditional, on either venue (Bybit: one endpoint for both)."""
CANCEL_ROUTES = frozenset(
    {("DELETE", "/fapi/v1/order"), ("DELETE", "/fapi/v1/algoOrder"), ("POST", "/v5/order/cancel")}
)
"""(method, path) of a cancel by client id on either venue."""


async def audit_rows(url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT position_uid, type, phase_before, phase_after, client_order_id, detail, occurred_at, seq "
            "FROM events ORDER BY occurred_at, seq"
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


def uncatalogued(rows: list[dict[str, Any]]) -> set[str]:
    return {r["type"] for r in rows} - set(CATALOGUE)


def unaudited_exchange_calls(requests: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """Client ids a Warden replica sent an order or a cancel for, with no audit row naming them."""
    audited = {r["client_order_id"] for r in rows if r["client_order_id"]}
    audited |= {json.loads(r["detail"]).get("clientOrderId") for r in rows if r["detail"]}
    sent = {
        r["clientOrderId"]
        for r in requests
        if (r["method"], r["path"]) in PLACE_ROUTES | CANCEL_ROUTES
        and r.get("replica")  # sent by Warden (tests' own orders carry no replica header)
        and r.get("clientOrderId")
        and is_warden_order(r["clientOrderId"])
    }
    return sorted(sent - audited)


def broken_phase_chains(rows: list[dict[str, Any]], phases: dict[str, str]) -> list[str]:
    """Positions whose PhaseChanged rows skip a phase change, or end elsewhere than their status says."""
    chains: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        if row["type"] == "PhaseChanged" and row["position_uid"] is not None:
            chains[str(row["position_uid"])].append((row["phase_before"], row["phase_after"]))
    problems = []
    for uid, chain in chains.items():
        at = "Pending"
        for before, after in chain:
            if before != at:
                problems.append(f"{uid}: a change {before}->{after} follows {at}: {chain}")
                break
            at = after
        else:
            if uid in phases and phases[uid] != at:
                problems.append(f"{uid}: status says {phases[uid]}, the audit chain ends at {at}: {chain}")
    for uid, phase in phases.items():
        if uid not in chains and phase not in ("Pending", ""):
            problems.append(f"{uid}: status says {phase}, the audit store has no phase change")
    return problems
