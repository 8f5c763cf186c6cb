"""Price paths and the clock: a seeded walk is reproducible, a scripted crash gaps through a stop."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from paper.clock import Clock
from paper.prices import PriceDriver, RandomWalk, ScriptedPath, WalkConfig, read_script
from paper.venue import Venue
from tests.paper.conftest import PaperServer

BTC = "BTC/USDT:USDT"
VOLATILE = WalkConfig(tick_ms=1000, jump_chance=0.05, crash_chance=0.02, regime_switch=0.1)


def _walk(seed: int, steps: list[int], config: WalkConfig = VOLATILE) -> list[dict[str, Decimal]]:
    """The marks after each clock step of a fresh venue walking from ``seed``."""
    clock = Clock(lambda: 1_000_000)
    clock.set_mode("manual")
    venue = Venue(clock=clock)
    driver = PriceDriver(venue)
    driver.add(RandomWalk(seed, venue.now(), venue.markets, config))
    marks = []
    for step in steps:
        clock.advance(step)
        driver.advance()
        marks.append(dict(venue.marks))
    return marks


def test_same_seed_same_path_however_the_clock_is_stepped() -> None:
    one_go = _walk(42, [600_000])[-1]
    in_steps = _walk(42, [1_500, 98_500, 250_000, 250_000])[-1]
    assert one_go == in_steps
    assert one_go != _walk(43, [600_000])[-1]
    assert one_go["BTCUSDT"] != Decimal(65000)


def test_prices_stay_on_tick_and_positive() -> None:
    config = WalkConfig(volatile_volatility=0.05, calm_volatility=0.05, crash_chance=0.2, crash_depth=0.5)
    venue = Venue()
    for marks in _walk(1, [10_000] * 30, config):
        for symbol, mark in marks.items():
            tick = venue.markets[symbol].tick_size
            assert mark > 0 and mark % tick == 0


def test_a_flash_crash_drops_by_its_depth_in_one_tick_and_recovers() -> None:
    config = WalkConfig(
        calm_volatility=0,
        volatile_volatility=0,
        regime_switch=0,
        crash_chance=1,
        crash_depth=0.1,
        crash_recovery_ticks=2,
        symbols=("BTCUSDT",),
    )
    marks = [m["BTCUSDT"] for m in _walk(5, [1000, 1000, 1000], config)]
    assert marks == [Decimal("58500"), Decimal("61664.4"), Decimal("65000")]  # 65000 x 0.9, then two equal steps


def test_read_script_accepts_a_header_and_refuses_bad_rows() -> None:
    markets = Venue().markets
    assert read_script("offset_ms,symbol,price\n0,btcusdt,65000\n# note\n500,ETHUSDT,3000.5\n", markets) == [
        (0, "BTCUSDT", Decimal(65000)),
        (500, "ETHUSDT", Decimal("3000.5")),
    ]
    for bad in ("0,NOPE,1\n", "0,BTCUSDT,-1\n", "x,BTCUSDT,1\n1,BTCUSDT,abc\n", "1,BTCUSDT\n"):
        with pytest.raises(ValueError):
            read_script(bad, markets)


def test_script_and_walk_interleave_in_time_order() -> None:
    clock = Clock(lambda: 0)
    clock.set_mode("manual")
    venue = Venue(clock=clock)
    driver = PriceDriver(venue)
    flat = WalkConfig(calm_volatility=0, volatile_volatility=0, regime_switch=0, crash_chance=0, jump_chance=0)
    driver.add(RandomWalk(0, 0, venue.markets, flat))
    driver.add(ScriptedPath(0, [(1500, "BTCUSDT", Decimal(60000)), (2500, "BTCUSDT", Decimal(61000))]))
    clock.advance(2000)
    assert driver.advance() == len(venue.markets) * 2 + 1
    assert venue.marks["BTCUSDT"] == Decimal(60000)


async def _stop_below(exchange: Any, price: float) -> None:
    await exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "pp-e"})
    params = {"stopLossPrice": price, "reduceOnly": True, "workingType": "MARK_PRICE", "clientOrderId": "pp-sl"}
    await exchange.create_order(BTC, "market", "sell", 0.01, None, params)


async def test_a_scripted_flash_crash_through_a_stop_on_the_manual_clock(exchange: Any, paper: PaperServer) -> None:
    await _stop_below(exchange, 64000)
    status, clock = await paper.admin("POST", "clock", {"mode": "manual"})
    assert status == 200 and clock["mode"] == "manual"
    script = "offset_ms,symbol,price\n1000,BTCUSDT,64500\n2000,BTCUSDT,58000\n3000,BTCUSDT,64800\n"
    status, paths = await paper.admin("POST", "price-path", {"script": script})
    assert status == 201 and paths[0]["kind"] == "script"
    status, clock = await paper.admin("POST", "clock", {"advance_ms": 1000})
    assert clock["priceMoves"] == 1 and paper.venue.marks["BTCUSDT"] == Decimal(64500)
    status, clock = await paper.admin("POST", "clock", {"advance_ms": 5000})
    assert clock["priceMoves"] == 2 and paper.venue.marks["BTCUSDT"] == Decimal(64800)
    await exchange.load_time_difference()
    [_, exit_trade] = await exchange.fetch_my_trades(BTC)
    assert exit_trade["price"] == 58000.0  # filled at the bottom of the gap, far below the stop
    assert await exchange.fetch_positions([BTC]) == []
    status, clock = await paper.admin("POST", "clock", {"mode": "wall"})
    assert clock["mode"] == "wall" and clock["now"] >= paper.venue.now() - 1000


async def test_the_walk_runs_on_wall_time_too(paper: PaperServer) -> None:
    status, _ = await paper.admin("POST", "price-path", {"walk": {"seed": 3, "tickMs": 1, "symbols": ["BTCUSDT"]}})
    assert status == 201
    status, clock = await paper.admin("POST", "clock", {"advance_ms": 50})
    assert clock["priceMoves"] >= 50
    assert paper.venue.marks["BTCUSDT"] != Decimal(65000)
    status, body = await paper.admin("DELETE", "price-path")
    assert (status, body) == (200, [])
    status, body = await paper.admin("POST", "price-path", {"walk": {"tickMs": 0}})
    assert status == 400


def test_clock_modes() -> None:
    wall = [1000]
    clock = Clock(lambda: wall[0])
    clock.set_mode("manual")
    wall[0] = 5000
    assert clock.now() == 1000
    assert clock.advance(250) == 1250
    clock.set_mode("wall")  # continues from where it was frozen, never jumps back
    assert clock.now() == 5000
    clock.advance(100)
    assert clock.now() == 5100
    with pytest.raises(ValueError):
        clock.advance(-1)
