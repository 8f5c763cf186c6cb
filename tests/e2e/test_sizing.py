"""Sizing by notional and by risk on real components: resolved at entry from the venue's price, shown by
`kubectl get pos`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from devtools.localenv.processes import Service
from tests.e2e.conftest import Trader, position_manifest


def sized(name: str, stop: str = "63000", **size: str) -> dict[str, Any]:
    manifest = position_manifest(name, stop=stop)
    del manifest["spec"]["amount"]
    manifest["spec"].update(size)
    return manifest


def printed_amount(trader: Trader, name: str) -> str:
    table = trader.stack.kubectl("get", "pos", name, "-n", trader.namespace).stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    return row[header.index("AMOUNT")]


async def test_a_notional_is_resolved_at_the_entry_price_and_rounded_down(trader: Trader, controller: Service) -> None:
    # 1000 USDT at 65000 is 0.01538... BTC: the lot step is 0.001, so 0.015 is bought.
    trader.apply(sized("by-notional", notional="1000"))
    status = trader.wait_phase("by-notional", "Protected", controller)
    assert (status["amount"], status["filled"], status["entryOrder"]["amount"]) == ("0.015", "0.015", "0.015")
    assert trader.exchange_position() == Decimal("0.015")
    assert status["stopOrder"]["amount"] == "0.015"
    assert printed_amount(trader, "by-notional") == "0.015"


async def test_a_risk_is_sized_by_the_distance_to_the_stop(trader: Trader, controller: Service) -> None:
    # Losing 30 USDT between 65000 and the stop at 63000 (2000 a BTC) is 0.015 BTC.
    trader.apply(sized("by-risk", risk="30"))
    status = trader.wait_phase("by-risk", "Protected", controller)
    assert (status["amount"], status["filled"]) == ("0.015", "0.015")
    assert trader.exchange_position() == Decimal("0.015")
    assert printed_amount(trader, "by-risk") == "0.015"
    # What the stop would lose is within the risk asked for.
    assert Decimal(status["filled"]) * (Decimal(status["averageEntryPrice"]) - 63000) <= 30


async def test_a_size_below_the_minimum_fails_before_any_order(trader: Trader, controller: Service) -> None:
    trader.apply(sized("too-small", notional="50"))
    status = trader.wait_phase("too-small", "Failed", controller)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "AmountBelowMinimum"
    assert "notional 50 at 65000.0 sizes 0.000769 BTC/USDT:USDT, below the minimum amount 0.001" in ready["message"]
    assert trader.orders() == []
