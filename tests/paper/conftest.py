"""Fixtures: the paper exchange served in-process on a free loopback port, and real ccxt clients against it."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from controller.exchange.client import make_exchange
from paper.app import SERVICES, create_app
from paper.services import PaperOptions, Services
from paper.venue import Venue
from tests.paper.bybit_client import bybit_client

_account_numbers = itertools.count(1)


@dataclass
class PaperServer:
    base_url: str
    venue: Venue
    services: Services
    http: aiohttp.ClientSession

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.base_url}/_paper/{path}", json=body) as resp:
            return resp.status, await resp.json()

    async def set_price(self, symbol: str, price: str) -> None:
        status, body = await self.admin("POST", "price", {"symbol": symbol, "price": price})
        assert status == 200, body

    async def create_account(self, api_key: str, secret: str, balance: str = "10000") -> None:
        status, body = await self.admin("POST", "accounts", {"apiKey": api_key, "secret": secret, "balance": balance})
        assert status in (200, 201), body


@contextlib.asynccontextmanager
async def serve(venue: Venue | None = None, options: PaperOptions | None = None) -> AsyncIterator[PaperServer]:
    """The paper exchange on a free loopback port until the block ends (then shut down as on SIGTERM)."""
    venue = venue or Venue()
    app = create_app(venue, options)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as http:
            yield PaperServer(f"http://{host}:{port}", venue, app[SERVICES], http)
    finally:
        await runner.cleanup()


@pytest.fixture
async def paper() -> AsyncIterator[PaperServer]:
    async with serve() as server:
        yield server


ExchangeFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def make_client(paper: PaperServer) -> AsyncIterator[ExchangeFactory]:
    """Build ccxt clients on a (new or given) paper account; all are closed at teardown."""
    clients: list[Any] = []

    async def factory(
        api_key: str | None = None,
        secret: str | None = None,
        *,
        balance: str = "10000",
        headers: dict[str, str] | None = None,
        register: bool = True,
        pro: bool = False,
    ) -> Any:
        n = next(_account_numbers)
        api_key = api_key or f"paper-key-{n}"
        secret = secret or f"paper-secret-{n}"
        if register:
            await paper.create_account(api_key, secret, balance)
        client = make_exchange("binanceusdm", api_key, secret, base_url=paper.base_url, headers=headers, pro=pro)
        client.enableRateLimit = False  # a local server: no production throttling needed in tests
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


_bybit_numbers = itertools.count(1)


async def bybit_account(paper: PaperServer, balance: str = "10000") -> tuple[str, str]:
    """A new Bybit account on the paper exchange: its API key and secret."""
    n = next(_bybit_numbers)
    api_key, secret = f"bybit-key-{n}", f"bybit-secret-{n}"
    body = {"apiKey": api_key, "secret": secret, "balance": balance, "venue": "bybit"}
    status, answer = await paper.admin("POST", "accounts", body)
    assert status == 201, answer
    return api_key, secret


@pytest.fixture
async def bybit(paper: PaperServer) -> AsyncIterator[Any]:
    """An async ccxt bybit client on a fresh Bybit account holding 10000 USDT, markets loaded."""
    api_key, secret = await bybit_account(paper)
    client = bybit_client(paper.base_url, api_key, secret)
    await client.load_markets()
    yield client
    await client.close()


@pytest.fixture
async def exchange(make_client: ExchangeFactory) -> Any:
    """A ccxt binanceusdm client on a fresh account holding 10000 USDT, markets loaded."""
    client = await make_client()
    await client.load_markets()
    return client
