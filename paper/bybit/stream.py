"""Bybit's private websocket (``/v5/private``) for ccxt.pro: ``auth``, ``subscribe`` to ``order``, ``execution``,
``position`` and ``wallet``, ``ping``/``pong``; pushes come from the engine's listeners, rendered at once (inside the
state transition) and queued per connection, as ``paper.stream`` does for Binance (the reference brief §10)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import WSMsgType, web

from paper.bybit import render
from paper.bybit.front import BybitFront
from paper.bybit.routes import position_rows
from paper.bybit.vocab import CATEGORY
from paper.models import AccountUpdate, AlgoOrder, OrderUpdate, VenueName
from paper.stream import pump_queue

AUTH_PAYLOAD = "GET/realtime"


class Topic(StrEnum):
    ORDER = "order"
    EXECUTION = "execution"
    POSITION = "position"
    WALLET = "wallet"


@dataclass(eq=False)  # one per socket, kept in a set by identity
class _Connection:
    conn_id: str
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    api_key: str | None = None
    topics: set[Topic] = field(default_factory=set)


class BybitStream:
    def __init__(self, front: BybitFront) -> None:
        self.front = front
        self._connections: set[_Connection] = set()
        self._ids = itertools.count(1)
        front.venue.subscribe(self._on_event)

    def _auth(self, args: list[Any]) -> str | None:
        """The account an ``auth`` op proves, or None: [key, expires (ms, future), hex HMAC of GET/realtime+expires]."""
        if len(args) != 3:
            return None
        api_key, expires, signature = (str(a) for a in args)
        account = self.front.venue.accounts.get(api_key)
        if account is None or account.venue != VenueName.BYBIT or not expires.isdigit():
            return None
        if int(expires) <= self.front.venue.now():
            return None
        expected = hmac.new(account.secret.encode(), f"{AUTH_PAYLOAD}{expires}".encode(), hashlib.sha256).hexdigest()
        return api_key if hmac.compare_digest(expected, signature) else None

    def _reply(self, conn: _Connection, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        req_id = request.get("req_id")
        base: dict[str, Any] = {"conn_id": conn.conn_id, "op": op}
        if req_id is not None:
            base["req_id"] = str(req_id)
        if op == "ping":
            return {**base, "op": "pong", "args": [str(self.front.venue.now())]}
        if op == "auth":
            conn.api_key = self._auth(list(request.get("args") or []))
            if conn.api_key is None:
                return {**base, "success": False, "ret_msg": "Params Error", "request": request}
            return {**base, "success": True, "ret_msg": ""}
        if op == "subscribe":
            topics = [str(a) for a in request.get("args") or []]
            known = {t.value for t in Topic}
            if conn.api_key is None or any(t not in known for t in topics):
                return {**base, "success": False, "ret_msg": "Request not authorized", "request": request}
            conn.topics.update(Topic(t) for t in topics)
            return {**base, "success": True, "ret_msg": ""}
        return {**base, "success": False, "ret_msg": f"unknown op {op}", "request": request}

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Connection(conn_id=f"paper-{next(self._ids)}")
        self._connections.add(conn)
        pump = asyncio.create_task(pump_queue(ws, conn.queue))
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    body = json.loads(message.data)
                except ValueError:
                    body = None
                if isinstance(body, dict):
                    conn.queue.put_nowait(self._reply(conn, body))
        finally:
            self._connections.discard(conn)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        return ws

    async def shutdown(self, app: web.Application) -> None:
        for conn in self._connections:
            conn.queue.put_nowait(None)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v5/private", self.websocket)
        app.on_shutdown.append(self.shutdown)

    # ------------------------------------------------------------------ events

    def _push(self, api_key: str, topic: Topic, data: list[dict[str, Any]]) -> None:
        now = self.front.venue.now()
        for conn in self._connections:
            if conn.api_key == api_key and topic in conn.topics:
                message = {"id": f"{conn.conn_id}-{now}", "topic": topic.value, "creationTime": now, "data": data}
                conn.queue.put_nowait(message)

    def _watched(self, api_key: str) -> set[Topic]:
        return {t for c in self._connections if c.api_key == api_key for t in c.topics}

    def _push_positions(self, api_key: str, topics: set[Topic], symbol: str) -> None:
        if Topic.POSITION in topics:
            rows = position_rows(self.front, self.front.venue.accounts[api_key], symbol)
            self._push(api_key, Topic.POSITION, [{**row, "category": CATEGORY} for row in rows])

    def _on_event(self, api_key: str, kind: str, payload: OrderUpdate | AlgoOrder | AccountUpdate) -> None:
        topics = self._watched(api_key)
        if not topics:
            return
        front = self.front
        account = front.venue.accounts[api_key]
        if isinstance(payload, AccountUpdate):
            self._push_positions(api_key, topics, payload.symbol)
            if Topic.WALLET in topics:
                self._push(api_key, Topic.WALLET, [render.wallet(account, front.venue.metrics(account))])
            return
        view = (
            front.of_algo(account, payload)
            if isinstance(payload, AlgoOrder)
            else front.of_order(account, payload.order)
        )
        spec = front.venue.markets[view.symbol]
        if Topic.ORDER in topics:
            self._push(api_key, Topic.ORDER, [{**render.order(spec, account, view), "category": CATEGORY}])
        trade = payload.trade if isinstance(payload, OrderUpdate) else None
        if trade is None:  # Bybit sends the position on every order change; a fill's comes with its account update
            self._push_positions(api_key, topics, view.symbol)
        elif Topic.EXECUTION in topics:
            row = render.execution(spec, account, view, trade, front.venue.marks[spec.symbol])
            self._push(api_key, Topic.EXECUTION, [{**row, "category": CATEGORY, "execPnl": f"{trade.realized_pnl:f}"}])
