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
from typing import Any, NamedTuple

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


class _Gauged(NamedTuple):
    """What the gauges read of one Position: plain values. The cache below held the validated spec and status, 45
    more objects per Position for the garbage collector to walk in every full pass, and a pass at N = 1,000 held the
    event loop 350 - 610 ms (a census and a trace, docs/PERFORMANCE.md)."""

    account: str
    phase: Phase
    backlog: int
    unrealized: Decimal
    closed_at: datetime | None
    realized: Decimal | None
    ready_since: datetime | None
    unprotected: bool
    unprotected_since: datetime | None


def _gauged(obj: dict[str, Any]) -> _Gauged:
    spec = PositionSpec.model_validate(obj["spec"])
    status = PositionStatus.model_validate(obj.get("status") or {})
    ready = _condition(status, ConditionType.READY)
    entered = ready.lastTransitionTime if ready is not None else None
    protected = _condition(status, ConditionType.PROTECTED)
    unprotected = bool(status.filled) and (protected is None or protected.status is not ConditionStatus.TRUE)
    return _Gauged(
        account=f"{obj['metadata']['namespace']}/{spec.accountRef.name}",
        phase=status.phase,
        backlog=len(status.auditBacklog),
        unrealized=status.unrealizedPnl or Decimal(0),
        closed_at=status.closedAt,
        realized=status.realizedPnl,
        ready_since=entered,
        unprotected=unprotected,
        unprotected_since=(protected.lastTransitionTime if protected is not None else entered) if unprotected else None,
    )


_PARSED: dict[str, tuple[str, _Gauged]] = {}
"""uid -> (resourceVersion, what the gauges read) as last validated: a thousand unchanged Positions are not
validated again every refresh."""


_PARSED_PER_TURN = 20
"""Positions validated between two turns of the event loop: every status write (a valuation too) makes one new,
and validating all of them in one go held the event loop, and every stop waiting on it, 54 ms at N = 100 (a
trace, docs/PERFORMANCE.md)."""


async def _parsed(positions: list[dict[str, Any]]) -> list[_Gauged]:
    kept: dict[str, tuple[str, _Gauged]] = {}
    validated = 0
    for obj in positions:
        uid, version = obj["metadata"]["uid"], obj["metadata"].get("resourceVersion", "")
        cached = _PARSED.get(uid)
        if cached is None or cached[0] != version:
            cached = (version, _gauged(obj))
            validated += 1
            if validated % _PARSED_PER_TURN == 0:
                await asyncio.sleep(0)
        kept[uid] = cached
    _PARSED.clear()  # deleted Positions drop out
    _PARSED.update(kept)
    return [kept[obj["metadata"]["uid"]][1] for obj in positions]


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
    for position in await _parsed(positions):
        account, phase_name = position.account, position.phase.value
        by_phase[(account, phase_name)] = by_phase.get((account, phase_name), 0) + 1
        backlog += position.backlog
        pnl.setdefault(account, Decimal(0))
        unrealized[account] = unrealized.get(account, Decimal(0)) + position.unrealized
        if position.phase in TERMINAL:
            closed = position.closed_at
            if closed is not None and closed.date() == now.date() and position.realized:
                pnl[account] += position.realized
            continue
        phase_age[phase_name] = max(phase_age.get(phase_name, 0.0), _since(position.ready_since, now))
        if position.unprotected:
            unprotected.setdefault(account, []).append(_since(position.unprotected_since, now))
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
