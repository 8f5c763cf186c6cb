"""controller/handlers/fleet.py: the fleet's gauges are computed without holding the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from controller.handlers import fleet


def position(i: int, version: str) -> dict[str, Any]:
    spec = {
        "accountRef": {"name": "a"},
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "amount": "0.010",
        "stopLoss": {"price": "60000"},
    }
    return {"metadata": {"uid": f"uid-{i}", "resourceVersion": version}, "spec": spec, "status": {"phase": "Pending"}}


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
    assert all(a[1] is b[1] for a, b in zip(first, again, strict=True))
    assert started >= 100 // fleet._PARSED_PER_TURN and turns - started >= 100 // fleet._PARSED_PER_TURN
