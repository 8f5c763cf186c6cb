"""Throughput of the paper exchange with 1,000 resting orders on one account (a benchmark, not a test).

Starts ``python -m paper`` on loopback (rate limits lifted, prices on a random walk unless --no-walk),
rests 800 far-away LIMIT orders (200 per symbol, Binance's MAX_NUM_ORDERS) and 200 far-away conditional orders (the
algo-order cap) on one account, then runs N concurrent ccxt clients on that account for --seconds, each looping over
Warden's mix: open orders, positions, mark price, and replacing one of its own resting orders (cancel + create, so
the book stays at 1,000). Prints one JSON line: requests/s, p50/p99 latency in ms, errors.

By default the clients call ccxt's implicit API (signed requests, JSON decoded, no unified parsing) so the number is
the server's; --unified makes them call the unified methods (ccxt's parsing of 200-order lists then dominates).

    .venv/bin/python bench/paper_throughput.py [--clients 8] [--seconds 20] [--unified] [--no-walk]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.exchange.client import make_exchange  # noqa: E402
from paper.markets import load_markets  # noqa: E402

API_KEY, SECRET = "bench-key", "bench-secret"
LIMITS_PER_SYMBOL = 200  # MAX_NUM_ORDERS of every shipped symbol
ALGO_ORDERS = 200  # Binance's cap on open conditional orders per account


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def paper_exchange(walk: bool) -> AsyncIterator[str]:
    port = _free_port()
    args = [sys.executable, "-m", "paper", "--port", str(port), "--log-level", "WARNING"]
    args += ["--weight-limit", "1000000000", "--orders-per-10s", "1000000000", "--orders-per-minute", "1000000000"]
    if walk:
        args.append("--walk")
    proc = await asyncio.create_subprocess_exec(*args, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/fapi/v1/ping") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("paper exchange did not start")
            async with http.post(
                f"{base}/_paper/accounts", json={"apiKey": API_KEY, "secret": SECRET, "balance": "100000000"}
            ) as resp:
                assert resp.status in (200, 201), await resp.text()
        yield base
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)


def _far_limit(symbol: str, mark: Decimal, tick: Decimal, step: Decimal, min_notional: Decimal) -> dict[str, str]:
    """A LIMIT buy at about half the mark (never fills under a random walk), just above the minimum notional."""
    price = (mark / 2 / tick).to_integral_value() * tick
    qty = ((min_notional * 2 / price / step).to_integral_value() + 1) * step
    return {
        "symbol": symbol,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "price": f"{price:f}",
        "quantity": f"{qty:f}",
    }


async def seed(client: Any) -> dict[str, list[dict[str, str]]]:
    """Rest the 1,000 orders; returns, per symbol, the parameters of its limit orders (for the replace loop)."""
    markets = load_markets()
    book: dict[str, list[dict[str, str]]] = {}
    ids = itertools.count(1)
    for symbol, spec in markets.items():
        template = _far_limit(symbol, spec.initial_mark_price, spec.tick_size, spec.step_size, spec.min_notional)
        book[symbol] = []
        for _ in range(LIMITS_PER_SYMBOL):
            order = {**template, "newClientOrderId": f"rest-{next(ids)}"}
            await client.fapiPrivatePostOrder(order)
            book[symbol].append(order)
    specs = list(markets.values())
    for n in range(ALGO_ORDERS):
        spec = specs[n % len(specs)]
        trigger = (spec.initial_mark_price * 2 / spec.tick_size).to_integral_value() * spec.tick_size
        qty = ((spec.min_notional / trigger / spec.step_size).to_integral_value() + 1) * spec.step_size
        await client.fapiPrivatePostAlgoOrder(
            {
                "algoType": "CONDITIONAL",
                "symbol": spec.symbol,
                "side": "BUY",
                "type": "STOP_MARKET",
                "quantity": f"{qty:f}",
                "triggerPrice": f"{trigger:f}",
                "workingType": "MARK_PRICE",
                "clientAlgoId": f"algo-{n}",
            }
        )
    return book


class Worker:
    """One client looping over the mix; owns a slice of the resting limit orders, which it replaces in turn."""

    def __init__(self, client: Any, unified: bool, owned: list[dict[str, str]], seed_: int) -> None:
        self.client = client
        self.unified = unified
        self.owned = owned
        self.rng = random.Random(seed_)
        self.latencies: list[float] = []
        self.errors = 0
        self.generation = itertools.count(1)

    async def _timed(self, call: Callable[[], Awaitable[Any]]) -> None:
        start = time.perf_counter()
        try:
            await call()
        except ccxt.BaseError:
            self.errors += 1
        self.latencies.append(time.perf_counter() - start)

    async def step(self) -> None:
        c = self.client
        symbol = self.rng.choice(["BTCUSDT", "ETHUSDT", "SOLUSDT", "SEIUSDT"])
        unified_symbol = f"{symbol.removesuffix('USDT')}/USDT:USDT"
        kind = self.rng.randrange(4)
        if kind == 0:
            if self.unified:
                await self._timed(lambda: c.fetch_open_orders(unified_symbol))
            else:
                await self._timed(lambda: c.fapiPrivateGetOpenOrders({"symbol": symbol}))
        elif kind == 1:
            if self.unified:
                await self._timed(lambda: c.fetch_positions([unified_symbol]))
            else:
                await self._timed(lambda: c.fapiPrivateV3GetPositionRisk({"symbol": symbol}))
        elif kind == 2:
            if self.unified:
                await self._timed(lambda: c.fetch_mark_price(unified_symbol))
            else:
                await self._timed(lambda: c.fapiPublicGetPremiumIndex({"symbol": symbol}))
        else:  # replace one of its resting orders: cancel it, create it again under a new client id
            order = self.owned[self.rng.randrange(len(self.owned))]
            old_id = order["newClientOrderId"]
            order["newClientOrderId"] = f"{old_id.split('.')[0]}.{next(self.generation)}"
            cancel = {"symbol": order["symbol"], "origClientOrderId": old_id}
            await self._timed(lambda: c.fapiPrivateDeleteOrder(cancel))
            await self._timed(lambda: c.fapiPrivatePostOrder(order))

    async def run(self, until: float) -> None:
        while time.perf_counter() < until:
            await self.step()


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[round(q * 1000) - 1] if len(values) > 1 else values[0]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--unified", action="store_true", help="call ccxt's unified methods (parsing included)")
    parser.add_argument("--no-walk", action="store_true", help="keep prices still (no matching work on price ticks)")
    args = parser.parse_args()
    async with paper_exchange(walk=not args.no_walk) as base:
        clients = [make_exchange("binanceusdm", API_KEY, SECRET, base_url=base) for _ in range(args.clients)]
        try:
            for client in clients:
                client.enableRateLimit = False
                await client.load_markets()
            book = await seed(clients[0])
            open_orders = await clients[0].fapiPrivateGetOpenOrders()
            algos = await clients[0].fapiPrivateGetOpenAlgoOrders()
            resting = len(open_orders) + len(algos)
            orders = [o for symbol in sorted(book) for o in book[symbol]]
            workers = [
                Worker(client, args.unified, orders[i :: args.clients], seed_=i) for i, client in enumerate(clients)
            ]
            await asyncio.gather(*(w.run(time.perf_counter() + 2) for w in workers))  # warm-up
            for w in workers:
                w.latencies.clear()
                w.errors = 0
            start = time.perf_counter()
            await asyncio.gather(*(w.run(start + args.seconds) for w in workers))
            elapsed = time.perf_counter() - start
        finally:
            for client in clients:
                await client.close()
    latencies = [lat for w in workers for lat in w.latencies]
    print(
        json.dumps(
            {
                "requests_per_s": round(len(latencies) / elapsed, 1),
                "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
                "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
                "requests": len(latencies),
                "errors": sum(w.errors for w in workers),
                "seconds": round(elapsed, 1),
                "clients": args.clients,
                "resting_orders": resting,
                "calls": "unified" if args.unified else "implicit",
                "walk": not args.no_walk,
                "ccxt": ccxt.__version__,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
