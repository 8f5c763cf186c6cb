"""Bybit's public linear websocket (``/v5/public/linear``) for ccxt.pro: the ``tickers.<SYMBOL>`` topic, whose
``markPrice`` is the mark Warden follows without reads (``watch_tickers``; the reference brief §10).

Bybit answers ``{"op": "subscribe", "args": ["tickers.BTCUSDT"], "req_id": ...}`` with ``success`` and pushes one
``snapshot`` of the whole ticker, then a ``delta`` of only the fields that changed, every 100 ms at most (ccxt
merges a delta into the ticker it holds). A ``ping`` op is answered ``ret_msg: "pong"``. Public: no key, no limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

from aiohttp import WSMsgType, web

from paper.bybit import render
from paper.bybit.front import BybitFront

PUSH_EVERY_S = 0.1
TOPIC = "tickers"


class BybitPublicStream:
    def __init__(self, front: BybitFront) -> None:
        self.front = front
        self._sockets: set[web.WebSocketResponse] = set()
        self._ids = itertools.count(1)

    def _ticker(self, symbol: str) -> dict[str, Any]:
        return render.ticker(self.front.venue.markets[symbol], self.front.venue)

    def _topic_symbol(self, topic: str) -> str | None:
        name, _, symbol = topic.partition(".")
        return symbol if name == TOPIC and symbol in self.front.venue.markets else None

    def _reply(self, conn_id: str, request: dict[str, Any], subscribed: dict[str, dict[str, Any]]) -> dict[str, Any]:
        op = request.get("op")
        base: dict[str, Any] = {"conn_id": conn_id, "req_id": str(request.get("req_id", "")), "op": op}
        if op == "ping":
            return {**base, "success": True, "ret_msg": "pong"}
        if op not in ("subscribe", "unsubscribe"):
            return {**base, "success": False, "ret_msg": f"error:unknown op {op}"}
        topics = [str(a) for a in request.get("args") or []]
        unknown = [t for t in topics if self._topic_symbol(t) is None]
        if unknown:
            return {**base, "success": False, "ret_msg": f"error:handler not found,topic:{unknown[0]}"}
        for topic in topics:
            if op == "subscribe":
                subscribed.setdefault(topic, {})  # empty: its snapshot is still due
            else:
                subscribed.pop(topic, None)
        return {**base, "success": True, "ret_msg": ""}

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        conn_id = f"paper-public-{next(self._ids)}"
        subscribed: dict[str, dict[str, Any]] = {}  # topic -> the ticker as last pushed
        pusher = asyncio.create_task(self._push(ws, subscribed))
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
                if message.type != WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError):
                    body = json.loads(message.data)
                    if isinstance(body, dict):
                        await ws.send_json(self._reply(conn_id, body, subscribed))
        finally:
            self._sockets.discard(ws)
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
        return ws

    async def _push(self, ws: web.WebSocketResponse, subscribed: dict[str, dict[str, Any]]) -> None:
        """A snapshot for each new subscription, then deltas of what changed."""
        while not ws.closed:
            for topic, last in list(subscribed.items()):
                symbol = self._topic_symbol(topic)
                if symbol is None:
                    continue
                now = self._ticker(symbol)
                changed = {k: v for k, v in now.items() if last.get(k) != v}
                if not changed:
                    continue
                kind = "delta" if last else "snapshot"
                data = {"symbol": symbol, **changed} if last else now
                subscribed[topic] = now
                message = {"topic": topic, "type": kind, "data": data, "cs": 0, "ts": self.front.venue.now()}
                await ws.send_json(message)
            await asyncio.sleep(PUSH_EVERY_S)

    async def shutdown(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v5/public/linear", self.websocket)
        app.on_shutdown.append(self.shutdown)
