"""controller/handlers/fleet.py: the fleet's gauges, computed without holding the event loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY

from controller.handlers import fleet
from tests.fakes import FakeRuntime


def position(i: int, version: str) -> dict[str, Any]:
    spec = {
        "accountRef": {"name": "a"},
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "amount": "0.010",
        "stopLoss": {"price": "60000"},
    }
    return {
        "metadata": {"uid": f"uid-{i}", "namespace": "ns", "resourceVersion": version},
        "spec": spec,
        "status": {"phase": "Pending"},
    }


async def test_validating_many_changed_positions_lets_other_tasks_run_between_them() -> None:
    turns = 0

    async def other() -> None:  # a Position's pass, say, with a stop to send
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    try:
        first = await fleet._parsed([position(i, "1") for i in range(100)])
        started = turns
        again = await fleet._parsed([position(i, "1") for i in range(100)])  # unchanged: nothing validated again
        assert turns == started
        changed = await fleet._parsed([position(i, "2") for i in range(100)])
    finally:
        task.cancel()
    assert len(first) == len(again) == len(changed) == 100
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert started >= 100 // fleet._PARSED_PER_TURN and turns - started >= 100 // fleet._PARSED_PER_TURN


def _at(status: dict[str, Any], i: int, version: str = "1") -> dict[str, Any]:
    body = position(i, version)
    body["status"] = status
    return body


def _condition(type_: str, status: str, since: datetime) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": "R", "lastTransitionTime": since.isoformat()}


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_the_gauges_read_phase_protection_pnl_and_backlog_of_every_position() -> None:
    now = datetime.now(UTC)
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    backlog = [{"id": "e1", "type": "OrderPlaced", "occurredAt": hour_ago.isoformat(), "data": "{}"}]
    positions = [
        _at(
            {
                "phase": "Protected",
                "filled": "0.010",
                "unrealizedPnl": "2.5",
                "conditions": [_condition("Ready", "True", hour_ago), _condition("Protected", "True", hour_ago)],
                "auditBacklog": backlog,
            },
            0,
        ),
        _at(  # filled, its stop gone ten minutes ago
            {
                "phase": "Protected",
                "filled": "0.010",
                "unrealizedPnl": "-1",
                "conditions": [
                    _condition("Ready", "True", day_ago),
                    _condition("Protected", "False", now - timedelta(minutes=10)),
                ],
            },
            1,
        ),
        _at({"phase": "Closed", "closedAt": now.isoformat(), "realizedPnl": "-7"}, 2),  # today: counts
        _at({"phase": "Closed", "closedAt": day_ago.isoformat(), "realizedPnl": "100"}, 3),  # yesterday: does not
        _at({"phase": "Pending"}, 4),
    ]
    runtime = FakeRuntime(positions={p["metadata"]["uid"]: p for p in positions})
    runtime.kube.objects[("exchangeaccounts", "ns", "a")] = {
        "metadata": {"namespace": "ns", "name": "a"},
        "spec": {"exchange": "binanceusdm", "credentialsSecretRef": {"name": "k"}, "risk": {"dailyLossLimit": "5"}},
    }
    await fleet.refresh(runtime, None)  # type: ignore[arg-type]
    assert _gauge("warden_positions", account="ns/a", phase="Protected") == 2
    assert _gauge("warden_positions", account="ns/a", phase="Closed") == 2
    assert _gauge("warden_positions", account="ns/a", phase="Pending") == 1
    assert _gauge("warden_unprotected_positions", account="ns/a") == 1
    assert 599 <= (_gauge("warden_unprotected_seconds", account="ns/a") or 0) <= 660
    assert _gauge("warden_realized_pnl_today", account="ns/a") == -7
    assert _gauge("warden_unrealized_pnl", account="ns/a") == 1.5
    assert _gauge("warden_daily_loss_limit_reached", account="ns/a") == 1
    assert 86_399 <= (_gauge("warden_position_phase_age_max_seconds", phase="Protected") or 0) <= 86_460
    assert _gauge("warden_position_phase_age_max_seconds", phase="Pending") == 0
    assert _gauge("warden_audit_backlog") == 1
