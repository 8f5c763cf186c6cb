"""Public market streams for ccxt.pro: the mark price, pushed every second.

ccxt.pro ``binanceusdm`` (``watch_mark_price(s)``) connects to ``<ws root>/market/ws/<n>`` and sends
``{"method": "SUBSCRIBE", "params": ["btcusdt@markPrice@1s"], "id": n}`` (or ``!markPrice@arr@1s`` for every
symbol); Binance answers ``{"result": null, "id": n}`` and then pushes a ``markPriceUpdate`` per subscribed symbol
every second (the ``@1s`` form; every 3 s without it). Public: no key, no request weight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from paper import render
from paper.venue import Venue

PUSH_EVERY_S = {"@1s": 1.0, "": 3.0}
ALL_SYMBOLS = "!markPrice@arr"


class MarketStream:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self._sockets: set[web.WebSocketResponse] = set()

    def _update(self, symbol: str) -> dict[str, Any]:
        spec = self.venue.markets[symbol]
        now = self.venue.now()
        mark = render.price(spec, self.venue.marks[symbol])
        return {"e": "markPriceUpdate", "E": now, "s": symbol, "p": mark, "i": mark, "P": mark, "r": "0", "T": 0}

    def _subscription(self, name: str) -> tuple[str, float] | None:
        """(symbol or ALL_SYMBOLS, seconds between pushes) of a stream name, None if it is not a mark stream."""
        for suffix, every in PUSH_EVERY_S.items():
            if name == ALL_SYMBOLS + suffix:
                return ALL_SYMBOLS, every
            base, _, rest = name.partition("@")
            if rest == "markPrice" + suffix and base.upper() in self.venue.markets:
                return base.upper(), every
        return None

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        subscribed: dict[str, float] = {}
        pusher = asyncio.create_task(self._push(ws, subscribed))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await ws.send_json(self._answer(message.data, subscribed))
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(ws)
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
        return ws

    def _answer(self, text: str, subscribed: dict[str, float]) -> dict[str, Any]:
        """Binance's answer to a SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS request (an unknown stream: code 2)."""
        try:
            request = json.loads(text)
            method, params, request_id = request["method"], request.get("params", []), request["id"]
        except (ValueError, KeyError, TypeError):
            return {"error": {"code": 3, "msg": "Invalid JSON: expected an object with 'method' and 'id'"}}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(subscribed), "id": request_id}
        wanted = [self._subscription(str(p)) for p in params]
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or None in wanted:
            return {"error": {"code": 2, "msg": f"Invalid request: {method} {params}"}, "id": request_id}
        for symbol, every in (w for w in wanted if w is not None):
            if method == "SUBSCRIBE":
                subscribed[symbol] = min(every, subscribed.get(symbol, every))
            else:
                subscribed.pop(symbol, None)
        return {"result": None, "id": request_id}

    async def _push(self, ws: web.WebSocketResponse, subscribed: dict[str, float]) -> None:
        """Each subscribed symbol's mark at its own pace, the all-symbol form as one array."""
        due: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        while not ws.closed:
            now = loop.time()
            for symbol, every in list(subscribed.items()):
                if due.setdefault(symbol, now + every) > now:
                    continue
                due[symbol] = now + every
                if symbol == ALL_SYMBOLS:
                    await ws.send_json([self._update(s) for s in sorted(self.venue.markets)])
                else:
                    await ws.send_json(self._update(symbol))
            await asyncio.sleep(0.05)

    async def shutdown(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/market/ws/{stream}", self.websocket)
        app.on_shutdown.append(self.shutdown)
