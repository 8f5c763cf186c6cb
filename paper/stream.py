"""User-data stream for ccxt.pro: ``/fapi/v1/listenKey`` and the websocket that pushes account events.

ccxt.pro ``binanceusdm`` (4.5.60+) POSTs ``/fapi/v1/listenKey`` and connects to ``<ws root>/private/ws?listenKey=K``
(older releases: ``<ws root>/ws/K``); no subscribe message is sent, the server just pushes ``ORDER_TRADE_UPDATE``,
``ALGO_UPDATE`` and ``ACCOUNT_UPDATE`` (reference brief §11). Events come from ``Venue.subscribe``, are rendered at
once (inside the venue's state transition) and queued per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from paper import render
from paper.errors import VenueError
from paper.models import ZERO, AccountUpdate, AlgoOrder, OrderUpdate, Position, VenueName
from paper.risk import break_even_price
from paper.venue import Venue

LISTEN_KEY_VALIDITY_MS = 60 * 60 * 1000  # Binance: a key lives 60 minutes after its last keep-alive


def listen_key_missing() -> VenueError:
    return VenueError(-1125, "This listenKey does not exist.")


async def pump_queue(ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
    """Send what is queued for one connection, in order, until ``None`` closes it."""
    while (event := await queue.get()) is not None:
        await ws.send_json(event)
    await ws.close()


@dataclass
class _ListenKey:
    api_key: str
    expires: int


class UserStream:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self._keys: dict[str, _ListenKey] = {}
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any] | None]]] = {}
        venue.subscribe(self._on_event)

    # ------------------------------------------------------------------ listen keys

    def _account_key(self, request: web.Request) -> str:
        return self.venue.account(request.headers.get("X-MBX-APIKEY"), VenueName.BINANCE_USDM).api_key

    def _live_key(self, listen_key: str | None) -> _ListenKey:
        entry = self._keys.get(listen_key or "")
        if entry is None or entry.expires <= self.venue.now():
            raise listen_key_missing()
        return entry

    async def create_key(self, request: web.Request) -> web.Response:
        """An account has one key: an existing live one is returned (and extended), as Binance does."""
        api_key = self._account_key(request)
        expires = self.venue.now() + LISTEN_KEY_VALIDITY_MS
        for key, entry in self._keys.items():
            if entry.api_key == api_key and entry.expires > self.venue.now():
                entry.expires = expires
                return web.json_response({"listenKey": key})
        key = secrets.token_hex(32)
        self._keys[key] = _ListenKey(api_key, expires)
        return web.json_response({"listenKey": key})

    def _key_of(self, api_key: str) -> str:
        key = next((k for k, e in self._keys.items() if e.api_key == api_key and e.expires > self.venue.now()), None)
        if key is None:
            raise listen_key_missing()
        return key

    async def keep_alive(self, request: web.Request) -> web.Response:
        key = self._key_of(self._account_key(request))
        self._keys[key].expires = self.venue.now() + LISTEN_KEY_VALIDITY_MS
        return web.json_response({"listenKey": key})

    async def close_key(self, request: web.Request) -> web.Response:
        key = self._key_of(self._account_key(request))
        entry = self._keys.pop(key)
        for queue in self._queues.get(entry.api_key, set()):
            queue.put_nowait(None)  # ends the connection
        return web.json_response({})

    # ------------------------------------------------------------------ websocket

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        entry = self._live_key(request.query.get("listenKey") or request.match_info.get("listen_key"))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        queues = self._queues.setdefault(entry.api_key, set())
        queues.add(queue)
        pump = asyncio.create_task(pump_queue(ws, queue))
        try:
            async for message in ws:  # the client sends nothing we act on; this just notices it leaving
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            queues.discard(queue)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        return ws

    async def shutdown(self, app: web.Application) -> None:
        """Close every connection so the server can stop."""
        for queues in self._queues.values():
            for queue in queues:
                queue.put_nowait(None)  # ends the connection

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/fapi/v1/listenKey", self.create_key)
        app.router.add_put("/fapi/v1/listenKey", self.keep_alive)
        app.router.add_delete("/fapi/v1/listenKey", self.close_key)
        app.router.add_get("/private/ws", self.websocket)
        app.router.add_get("/ws/{listen_key}", self.websocket)
        app.on_shutdown.append(self.shutdown)

    # ------------------------------------------------------------------ events

    def _on_event(self, api_key: str, kind: str, payload: OrderUpdate | AlgoOrder | AccountUpdate) -> None:
        queues = self._queues.get(api_key)
        if not queues:
            return
        if isinstance(payload, OrderUpdate):
            event = self._order_event(payload)
        elif isinstance(payload, AlgoOrder):
            event = self._algo_event(payload)
        else:
            event = self._account_event(api_key, payload)
        for queue in queues:
            queue.put_nowait(event)

    def _order_event(self, update: OrderUpdate) -> dict[str, Any]:
        o, t = update.order, update.trade
        spec = self.venue.markets[o.symbol]
        time = t.time if t is not None else o.update_time
        return {
            "e": "ORDER_TRADE_UPDATE",
            "E": self.venue.now(),
            "T": time,
            "o": {
                "s": o.symbol,
                "c": o.client_order_id,
                "S": o.side,
                "o": o.type,
                "f": o.time_in_force,
                "q": render.qty(spec, o.quantity),
                "p": render.price(spec, o.price),
                "ap": render.price(spec, o.avg_price),
                "sp": render.price(spec, o.stop_price),
                "x": update.execution,
                "X": o.status,
                "i": o.order_id,
                "l": render.qty(spec, t.qty if t else ZERO),
                "z": render.qty(spec, o.executed_qty),
                "L": render.price(spec, t.price if t else ZERO),
                "N": spec.margin_asset,
                "n": render.money(t.commission if t else ZERO),
                "T": time,
                "t": t.trade_id if t else 0,
                "b": "0",
                "a": "0",
                "m": t.maker if t else False,
                "R": o.reduce_only,
                "wt": o.working_type,
                "ot": o.orig_type,
                "ps": o.position_side,
                "cp": o.close_position,
                "rp": render.money(t.realized_pnl if t else ZERO),
                "pP": o.price_protect,
                "si": 0,
                "ss": 0,
                "V": "EXPIRE_MAKER",
                "pm": "NONE",
                "gtd": 0,
            },
        }

    def _algo_event(self, a: AlgoOrder) -> dict[str, Any]:
        spec = self.venue.markets[a.symbol]
        return {
            "e": "ALGO_UPDATE",
            "T": a.update_time,
            "E": self.venue.now(),
            "o": {
                "caid": a.client_algo_id,
                "aid": a.algo_id,
                "at": "CONDITIONAL",
                "o": a.order_type,
                "s": a.symbol,
                "S": a.side,
                "ps": a.position_side,
                "f": a.time_in_force,
                "q": render.qty(spec, a.quantity),
                "X": a.algo_status,
                "ai": "" if a.actual_order_id is None else str(a.actual_order_id),
                "ap": render.price(spec, a.actual_price),
                "aq": "0",
                "act": "0",
                "tp": render.price(spec, a.trigger_price),
                "p": render.price(spec, a.price),
                "V": "EXPIRE_MAKER",
                "wt": a.working_type,
                "pm": "NONE",
                "cp": a.close_position,
                "pP": a.price_protect,
                "R": a.reduce_only,
                "tt": a.trigger_time,
                "gtd": 0,
                "rm": "",
            },
        }

    def _account_event(self, api_key: str, update: AccountUpdate) -> dict[str, Any]:
        account = self.venue.accounts[api_key]
        spec = self.venue.markets[update.symbol]
        mark = self.venue.marks[update.symbol]
        settings = account.settings.get(update.symbol)
        margin_type = "isolated" if settings is not None and settings.margin_type == "ISOLATED" else "cross"
        # Read only (no venue side effects): every position side of the symbol, zero ones included so that a
        # closed position is seen as closed.
        positions = list(account.positions.get(update.symbol, {}).values()) or [Position(update.symbol)]
        wallet = render.money(account.wallet_balance)
        now = self.venue.now()
        return {
            "e": "ACCOUNT_UPDATE",
            "E": now,
            "T": now,
            "a": {
                "m": update.reason,
                "B": [{"a": spec.margin_asset, "wb": wallet, "cw": wallet, "bc": "0"}],
                "P": [
                    {
                        "s": update.symbol,
                        "pa": render.qty(spec, pos.amount),
                        "ep": render.price(spec, pos.entry_price),
                        "bep": render.price(spec, break_even_price(pos.amount, pos.entry_price)),
                        "cr": "0",
                        "up": render.money(pos.amount * (mark - pos.entry_price) if pos.amount else ZERO),
                        "mt": margin_type,
                        "iw": render.money(pos.isolated_wallet),
                        "ps": pos.position_side,
                        "ma": spec.margin_asset,
                    }
                    for pos in positions
                ],
            },
        }
