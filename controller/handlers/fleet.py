"""Fleet-wide gauges (every Position, by account and phase) and the health endpoints.

The gauges are recomputed from the API server every few seconds by the acting replica; a standby exports
nothing for them, so ``max()`` across replicas in the alerts is the leader's view.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from controller.api.v1alpha1 import ConditionStatus, ExchangeAccountSpec, Phase, PositionSpec, PositionStatus
from controller.api.vocabulary import ConditionType
from controller.handlers.runtime import Runtime
from controller.metrics import (
    AUDIT_BACKLOG,
    LOSS_LIMIT_REACHED,
    OBSERVATION_AGE,
    PHASE_AGE,
    PNL_TODAY,
    POSITIONS,
    UNPROTECTED,
    UNPROTECTED_SECONDS,
    UNREALIZED_PNL,
)
from controller.reconcile.phases import TERMINAL

REFRESH_S = 5.0
STALE_OBSERVATION_S = 60.0
log = logging.getLogger("warden.fleet")


def _since(moment: datetime | None, now: datetime) -> float:
    return 0.0 if moment is None else max((now - moment).total_seconds(), 0.0)


def _condition(status: PositionStatus, type_: ConditionType) -> Any:
    return next((c for c in status.conditions if c.type == type_), None)


_PARSED: dict[str, tuple[str, PositionSpec, PositionStatus]] = {}
"""uid -> (resourceVersion, spec, status) as last validated: a thousand unchanged Positions are not validated
again every refresh."""


_PARSED_PER_TURN = 20
"""Positions validated between two turns of the event loop: every status write (a valuation too) makes one new,
and validating all of them in one go held the event loop, and every stop waiting on it, 54 ms at N = 100 (a
trace, docs/PERFORMANCE.md)."""


async def _parsed(positions: list[dict[str, Any]]) -> list[tuple[dict[str, Any], PositionSpec, PositionStatus]]:
    kept: dict[str, tuple[str, PositionSpec, PositionStatus]] = {}
    validated = 0
    for obj in positions:
        uid, version = obj["metadata"]["uid"], obj["metadata"].get("resourceVersion", "")
        cached = _PARSED.get(uid)
        if cached is None or cached[0] != version:
            spec = PositionSpec.model_validate(obj["spec"])
            cached = (version, spec, PositionStatus.model_validate(obj.get("status") or {}))
            validated += 1
            if validated % _PARSED_PER_TURN == 0:
                await asyncio.sleep(0)
        kept[uid] = cached
    _PARSED.clear()  # deleted Positions drop out
    _PARSED.update(kept)
    return [(obj, *kept[obj["metadata"]["uid"]][1:]) for obj in positions]


async def refresh(runtime: Runtime, namespace: str | None) -> None:
    now = datetime.now(UTC)
    positions = runtime.positions_in(namespace)
    accounts = await runtime.kube.list("exchangeaccounts", namespace)
    by_phase: dict[tuple[str, str], int] = {}
    unprotected: dict[str, list[float]] = {}
    phase_age: dict[str, float] = {}
    pnl: dict[str, Decimal] = {}
    unrealized: dict[str, Decimal] = {}
    backlog = 0
    for obj, spec, status in await _parsed(positions):
        account = f"{obj['metadata']['namespace']}/{spec.accountRef.name}"
        by_phase[(account, status.phase.value)] = by_phase.get((account, status.phase.value), 0) + 1
        backlog += len(status.auditBacklog)
        pnl.setdefault(account, Decimal(0))
        unrealized[account] = unrealized.get(account, Decimal(0)) + (status.unrealizedPnl or Decimal(0))
        if status.phase in TERMINAL:
            if status.closedAt is not None and status.closedAt.date() == now.date() and status.realizedPnl:
                pnl[account] += status.realizedPnl
            continue
        ready = _condition(status, ConditionType.READY)
        entered = ready.lastTransitionTime if ready is not None else None
        phase_age[status.phase.value] = max(phase_age.get(status.phase.value, 0.0), _since(entered, now))
        protected = _condition(status, ConditionType.PROTECTED)
        if status.filled and (protected is None or protected.status is not ConditionStatus.TRUE):
            since = protected.lastTransitionTime if protected is not None else entered
            unprotected.setdefault(account, []).append(_since(since, now))
    POSITIONS.clear()
    for (account, phase), count in by_phase.items():
        POSITIONS.labels(account, phase).set(count)
    for gauge in (UNPROTECTED, UNPROTECTED_SECONDS, PNL_TODAY, UNREALIZED_PNL, LOSS_LIMIT_REACHED):
        gauge.clear()
    for account in pnl:
        UNPROTECTED.labels(account).set(len(unprotected.get(account, [])))
        UNPROTECTED_SECONDS.labels(account).set(max(unprotected.get(account, [0.0])))
        PNL_TODAY.labels(account).set(pnl[account])  # type: ignore[arg-type]  # exported as a float
        UNREALIZED_PNL.labels(account).set(unrealized[account])  # type: ignore[arg-type]
    for obj in accounts:
        limits = ExchangeAccountSpec.model_validate(obj["spec"]).risk
        account = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        limit = limits.dailyLossLimit if limits else None
        reached = limit is not None and -pnl.get(account, Decimal(0)) >= limit
        LOSS_LIMIT_REACHED.labels(account).set(1 if reached else 0)
    PHASE_AGE.clear()
    for phase in Phase:
        if phase not in TERMINAL:
            PHASE_AGE.labels(phase.value).set(phase_age.get(phase.value, 0.0))
    AUDIT_BACKLOG.set(backlog)
    for account, seen in runtime.observed_at.items():
        OBSERVATION_AGE.labels(account).set(time.monotonic() - seen)


async def keep_refreshing(runtime: Runtime, namespace: str | None) -> None:
    while True:
        if runtime.may_act():
            try:
                await refresh(runtime, namespace)
            except Exception as error:  # the gauges go stale; readyz and the alerts see that
                log.warning("fleet metrics not refreshed: %s", error)
        await asyncio.sleep(REFRESH_S)


def health_app(runtime: Runtime) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"alive": True})  # answering at all means the event loop runs

    async def readyz(_: web.Request) -> web.Response:
        now = time.monotonic()
        stale = sorted(a for a, seen in runtime.observed_at.items() if now - seen > STALE_OBSERVATION_S)
        leader = runtime.may_act()
        problems = [f"observation of {a} is stale" for a in stale] if leader else []
        if not runtime.audit.available_soon:
            problems.append("the audit store is unavailable (risk-reducing steps buffer their events)")
        body = {"leader": leader, "epoch": runtime.epoch, "problems": problems}
        # A standby is ready (it is needed for a rollout); an audit outage alone is not unreadiness.
        ready = not stale or not leader
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
