"""Bybit's public linear stream (``tickers.<SYMBOL>``) driven by the real ccxt.pro ``bybit`` on 127.0.0.1: the
marks Warden follows on Bybit without reads."""

from __future__ import annotations

import asyncio
from typing import Any

from controller.exchange.bybit import Bybit
from controller.exchange.client import make_exchange
from tests.paper.bybit_client import bybit_client
from tests.paper.conftest import PaperServer, bybit_account

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


async def test_watch_tickers_follows_the_mark(paper: PaperServer) -> None:
    """A snapshot of the whole ticker first, then a delta of what moved, which ccxt merges into the ticker."""
    client: Any = bybit_client(paper.base_url, *(await bybit_account(paper)), mode="pro")
    try:
        await client.load_markets()
        first = await asyncio.wait_for(client.watch_tickers([BTC, ETH]), 10)
        assert set(first) <= {BTC, ETH} and first
        while BTC not in first:
            first = await asyncio.wait_for(client.watch_tickers([BTC, ETH]), 10)
        assert first[BTC]["info"]["markPrice"] == "65000.00" and first[BTC]["info"]["lastPrice"] == "65000.00"
        await paper.set_price("BTCUSDT", "65100.5")
        moved = first
        while moved.get(BTC, {}).get("info", {}).get("markPrice") != "65100.50":
            moved = await asyncio.wait_for(client.watch_tickers([BTC, ETH]), 10)
        info = moved[BTC]["info"]
        assert info["symbol"] == "BTCUSDT" and info["highPrice24h"]  # the delta merged into the snapshot
    finally:
        await client.close()


async def test_warden_follows_marks_through_the_stream_its_bybit_adapter_declares(paper: PaperServer) -> None:
    """Warden's own client (``make_exchange``, the websocket hosts as the adapter points them) and the adapter's
    declared mark stream (``Bybit.stream``), as the observer calls them."""
    api_key, secret = await bybit_account(paper)
    client: Any = make_exchange("bybit", api_key, secret, base_url=paper.base_url, pro=True)
    stream = Bybit.stream
    assert stream.marks is not None and stream.mark_field is not None
    try:
        await client.load_markets()
        await paper.set_price("BTCUSDT", "64321.5")
        pushed: dict[str, Any] = {}
        while pushed.get(BTC, {}).get("info", {}).get(stream.mark_field) != "64321.50":
            pushed = await asyncio.wait_for(getattr(client, stream.marks)([BTC]), 10)
    finally:
        await client.close()


async def test_the_public_stream_refuses_what_it_does_not_serve(paper: PaperServer) -> None:
    url = paper.base_url.replace("http://", "ws://") + "/v5/public/linear"
    async with paper.http.ws_connect(url) as ws:
        await ws.send_json({"op": "subscribe", "args": ["tickers.NOSUCHUSDT"], "req_id": "1"})
        refused = await ws.receive_json(timeout=5)
        assert (refused["success"], refused["ret_msg"]) == (False, "error:handler not found,topic:tickers.NOSUCHUSDT")
        await ws.send_json({"op": "ping", "req_id": "2"})
        assert (await ws.receive_json(timeout=5))["ret_msg"] == "pong"
        await ws.send_json({"op": "subscribe", "args": ["tickers.BTCUSDT"], "req_id": "3"})
        accepted = await ws.receive_json(timeout=5)
        assert (accepted["success"], accepted["req_id"]) == (True, "3")
        pushed = await ws.receive_json(timeout=5)
        assert (pushed["topic"], pushed["type"], pushed["data"]["symbol"]) == ("tickers.BTCUSDT", "snapshot", "BTCUSDT")
