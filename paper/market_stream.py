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
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from aiohttp import WSMsgType, web

from paper import render
from paper.venue import Venue

PUSH_EVERY_S = {"@1s": 1.0, "": 3.0}
ALL_SYMBOLS = "!markPrice@arr"

S = TypeVar("S")


class PublicStream(ABC, Generic[S]):
    """A venue's public websocket: requests answered in turn, pushes sent as they fall due (``due``, looked at every
    ``tick`` seconds), each socket closed with the app. ``S`` is one socket's state (its subscriptions)."""

    path: ClassVar[str]
    tick: ClassVar[float]

    def __init__(self) -> None:
        self._sockets: set[web.WebSocketResponse] = set()

    @abstractmethod
    def connection(self) -> S:
        """A new socket's state."""

    @abstractmethod
    def answer(self, text: str, state: S) -> dict[str, Any]:
        """The venue's answer to a request frame."""

    @abstractmethod
    def due(self, state: S, now: float) -> list[Any]:
        """The pushes due at ``now`` (the loop's monotonic time)."""

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        state = self.connection()
        pusher = asyncio.create_task(self._push(ws, state))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await ws.send_json(self.answer(message.data, state))
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(ws)
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
        return ws

    async def _push(self, ws: web.WebSocketResponse, state: S) -> None:
        loop = asyncio.get_running_loop()
        while not ws.closed:
            for message in self.due(state, loop.time()):
                await ws.send_json(message)
            await asyncio.sleep(self.tick)

    async def shutdown(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(self.path, self.websocket)
        app.on_shutdown.append(self.shutdown)


@dataclass
class _Subscriptions:
    every: dict[str, float] = field(default_factory=dict)  # symbol (or ALL_SYMBOLS) -> seconds between pushes
    due: dict[str, float] = field(default_factory=dict)


class MarketStream(PublicStream[_Subscriptions]):
    path = "/market/ws/{stream}"
    tick = 0.05

    def __init__(self, venue: Venue) -> None:
        super().__init__()
        self.venue = venue

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

    def connection(self) -> _Subscriptions:
        return _Subscriptions()

    def answer(self, text: str, state: _Subscriptions) -> dict[str, Any]:
        """Binance's answer to a SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS request (an unknown stream: code 2)."""
        subscribed = state.every
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

    def due(self, state: _Subscriptions, now: float) -> list[Any]:
        """Each subscribed symbol's mark at its own pace, the all-symbol form as one array."""
        pushes: list[Any] = []
        for symbol, every in list(state.every.items()):
            if state.due.setdefault(symbol, now + every) > now:
                continue
            state.due[symbol] = now + every
            if symbol == ALL_SYMBOLS:
                pushes.append([self._update(s) for s in sorted(self.venue.markets)])
            else:
                pushes.append(self._update(symbol))
        return pushes
