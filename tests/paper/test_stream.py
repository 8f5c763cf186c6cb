"""The user-data stream driven by the real ccxt.pro ``binanceusdm`` over a websocket on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp

from controller.api.v1alpha1 import OrderState
from controller.exchange.binanceusdm import pushed_end
from tests.paper.conftest import ExchangeFactory, PaperServer

BTC = "BTC/USDT:USDT"
T = TypeVar("T")


async def _soon(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, timeout=10)


async def _pro(make_client: ExchangeFactory) -> Any:
    exchange = await make_client(pro=True)
    await exchange.load_markets()
    return exchange


async def _orders_until(exchange: Any, done: Any) -> list[dict[str, Any]]:
    """Every order update ``watch_orders`` yields until one satisfies ``done``."""
    seen: list[dict[str, Any]] = []
    while not any(done(o) for o in seen):
        seen.extend(await _soon(exchange.watch_orders(BTC)))
    return seen


async def _stop_placed(exchange: Any, entry_id: str, stop_id: str) -> dict[str, Any]:
    """A market entry, then its reduce-only stop at 64000, as ``watch_orders`` reports the stop placed."""
    await exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": entry_id})
    placed = asyncio.create_task(_orders_until(exchange, lambda o: o["clientOrderId"] == stop_id))
    await asyncio.sleep(0.3)
    params = {"stopLossPrice": 64000, "reduceOnly": True, "clientOrderId": stop_id}
    await exchange.create_order(BTC, "market", "sell", 0.01, None, params)
    return [o for o in await placed if o["clientOrderId"] == stop_id][-1]


async def test_watch_orders_and_trades_see_a_market_fill(make_client: ExchangeFactory) -> None:
    exchange = await _pro(make_client)
    orders = asyncio.create_task(_orders_until(exchange, lambda o: o["status"] == "closed"))
    trades = asyncio.create_task(_soon(exchange.watch_my_trades(BTC)))
    await asyncio.sleep(0.3)  # let the stream connect before the order
    await exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "ws-1"})
    filled = [o for o in await orders if o["status"] == "closed"][-1]
    assert (filled["clientOrderId"], filled["filled"], filled["average"], filled["side"]) == (
        "ws-1",
        0.01,
        65000.0,
        "buy",
    )
    [trade] = await trades
    assert (trade["side"], trade["amount"], trade["price"], trade["fee"]["cost"]) == ("buy", 0.01, 65000.0, 0.325)


async def test_watch_orders_sees_a_stop_placed_and_triggered(make_client: ExchangeFactory, paper: PaperServer) -> None:
    exchange = await _pro(make_client)
    stop = await _stop_placed(exchange, "ws-e", "ws-sl")
    assert (stop["status"], stop["triggerPrice"], stop["reduceOnly"]) == ("open", 64000.0, True)
    triggered = asyncio.create_task(
        _orders_until(exchange, lambda o: o["side"] == "sell" and o["status"] == "closed" and o["filled"] == 0.01)
    )
    await asyncio.sleep(0.1)
    await paper.set_price("BTCUSDT", "63900")
    updates = await triggered
    assert any(o["id"] == stop["id"] and o["status"] == "closed" for o in updates)  # ALGO_UPDATE: triggered
    fill = [o for o in updates if o["filled"] == 0.01][-1]
    assert (fill["average"], fill["reduceOnly"]) == (63900.0, True)


async def test_a_stop_the_venue_cancelled_is_pushed_as_ended(make_client: ExchangeFactory, paper: PaperServer) -> None:
    """What the observer acts on without a read (``VenueGateway.pushed``): the ALGO_UPDATE of a cancelled stop, as
    ccxt.pro hands it over, parses as that stop, cancelled; its placement does not parse as an end."""
    exchange = await _pro(make_client)
    stop = await _stop_placed(exchange, "ws-e2", "ws-sl2")
    assert pushed_end(stop) is None  # open: not an end
    cancelled = asyncio.create_task(_orders_until(exchange, lambda o: o["status"] == "canceled"))
    await asyncio.sleep(0.1)
    status, body = await paper.admin(
        "POST", "cancel-algo", {"apiKey": exchange.apiKey, "symbol": "BTCUSDT", "clientAlgoId": "ws-sl2"}
    )
    assert status == 200, body
    [push] = [o for o in await cancelled if o["status"] == "canceled"]
    ended = pushed_end(push)
    assert ended is not None
    assert (ended.client_order_id, ended.exchange_order_id, ended.state, ended.amount, ended.trigger_price) == (
        "ws-sl2",
        stop["id"],
        OrderState.CANCELED,
        Decimal("0.01"),
        Decimal("64000"),
    )


async def test_watch_positions_sees_the_position_open_and_close(
    make_client: ExchangeFactory, paper: PaperServer
) -> None:
    exchange = await _pro(make_client)
    assert await _soon(exchange.watch_positions([BTC])) == []  # the REST snapshot: flat
    opened = asyncio.create_task(_soon(exchange.watch_positions([BTC])))
    await asyncio.sleep(0.2)
    await exchange.create_order(BTC, "market", "sell", 0.01)
    [position] = await opened
    assert (position["side"], position["contracts"], position["entryPrice"]) == ("short", 0.01, 65000.0)
    closed = asyncio.create_task(_soon(exchange.watch_positions([BTC])))
    await asyncio.sleep(0.2)
    await paper.admin("POST", "external-close", {"apiKey": exchange.apiKey, "symbol": "BTCUSDT"})
    [position] = await closed
    assert position["contracts"] == 0


async def test_listen_key_lifecycle(paper: PaperServer, make_client: ExchangeFactory) -> None:
    exchange = await make_client()
    headers = {"X-MBX-APIKEY": exchange.apiKey}
    url = f"{paper.base_url}/fapi/v1/listenKey"
    async with paper.http.post(url, headers=headers) as resp:
        key = (await resp.json())["listenKey"]
    async with paper.http.post(url, headers=headers) as resp:
        assert (await resp.json())["listenKey"] == key  # one live key per account
    async with paper.http.put(url, headers=headers) as resp:
        assert resp.status == 200
    async with paper.http.ws_connect(f"{paper.base_url}/private/ws?listenKey={key}") as ws:
        async with paper.http.delete(url, headers=headers) as resp:
            assert resp.status == 200 and await resp.json() == {}
        message = await asyncio.wait_for(ws.receive(), timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)  # closing the key ends the stream
    async with paper.http.put(url, headers=headers) as resp:
        assert (resp.status, (await resp.json())["code"]) == (400, -1125)
    async with paper.http.get(f"{paper.base_url}/ws/{key}") as resp:
        assert resp.status == 400
    async with paper.http.post(url, headers={"X-MBX-APIKEY": "nobody"}) as resp:
        assert (resp.status, (await resp.json())["code"]) == (401, -2015)


async def test_watch_mark_price_follows_the_mark_every_second(make_client: ExchangeFactory, paper: PaperServer) -> None:
    """The public mark-price stream (``<symbol>@markPrice@1s``) that keeps Warden's marks without reads."""
    exchange = await _pro(make_client)
    first = await _soon(exchange.watch_mark_price(BTC))
    assert (first["symbol"], first["markPrice"], first["info"]["e"]) == (BTC, 65000.0, "markPriceUpdate")
    await paper.set_price("BTCUSDT", "65100.5")
    moved = await _soon(exchange.watch_mark_price(BTC))
    assert moved["info"]["p"] == "65100.50" and moved["timestamp"] > first["timestamp"]
    both = await _soon(exchange.watch_mark_prices([BTC, "ETH/USDT:USDT"]))
    assert set(both) <= {BTC, "ETH/USDT:USDT"} and both


async def test_the_mark_stream_refuses_what_it_does_not_serve(paper: PaperServer) -> None:
    url = paper.base_url.replace("http://", "ws://") + "/market/ws/0"
    async with paper.http.ws_connect(url) as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["nosuchusdt@markPrice@1s"], "id": 1})
        assert (await ws.receive_json(timeout=5))["error"]["code"] == 2
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@markPrice@1s"], "id": 2})
        assert await ws.receive_json(timeout=5) == {"result": None, "id": 2}
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 3})
        assert await ws.receive_json(timeout=5) == {"result": ["BTCUSDT"], "id": 3}
        pushed = await ws.receive_json(timeout=5)
        assert (pushed["e"], pushed["s"]) == ("markPriceUpdate", "BTCUSDT")
