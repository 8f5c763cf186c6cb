"""Unsigned JSON admin API of the paper exchange (``/_paper/...``): accounts, prices, audit logs, manual actions."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from controller.paper import render
from controller.paper.models import AlgoOrder, Order, Trade
from controller.paper.venue import Venue


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise AdminError(400, "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise AdminError(400, "body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise AdminError(400, f"'{name}' must be a non-empty string")
    return value


def _decimal(body: dict[str, Any], name: str) -> Decimal:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AdminError(400, f"'{name}' must be a decimal string")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise AdminError(400, f"'{name}' must be a decimal string") from None
    if not result.is_finite():
        raise AdminError(400, f"'{name}' must be finite")
    return result


def _order_entry(venue: Venue, o: Order | AlgoOrder) -> dict[str, Any]:
    spec = venue.markets[o.symbol]
    if isinstance(o, Order):
        return {
            "kind": "order",
            "apiKey": o.api_key,
            "symbol": o.symbol,
            "side": o.side,
            "type": o.type,
            "origType": o.orig_type,
            "clientOrderId": o.client_order_id,
            "orderId": o.order_id,
            "algoId": o.parent_algo_id,
            "quantity": render.qty(spec, o.quantity),
            "price": render.price(spec, o.price),
            "reduceOnly": o.reduce_only,
            "closePosition": o.close_position,
            "status": o.status,
            "executedQty": render.qty(spec, o.executed_qty),
            "time": o.time,
            "updateTime": o.update_time,
            "replica": o.replica,
            "source": o.source,
        }
    return {
        "kind": "algo",
        "apiKey": o.api_key,
        "symbol": o.symbol,
        "side": o.side,
        "type": o.order_type,
        "origType": o.order_type,
        "clientOrderId": o.client_algo_id,
        "clientAlgoId": o.client_algo_id,
        "orderId": o.actual_order_id,
        "algoId": o.algo_id,
        "quantity": render.qty(spec, o.quantity),
        "price": render.price(spec, o.price),
        "triggerPrice": render.price(spec, o.trigger_price),
        "reduceOnly": o.reduce_only,
        "closePosition": o.close_position,
        "status": o.algo_status,
        "time": o.create_time,
        "updateTime": o.update_time,
        "replica": o.replica,
        "source": o.source,
    }


def _trade_entry(venue: Venue, t: Trade) -> dict[str, Any]:
    spec = venue.markets[t.symbol]
    order = venue.accounts[t.api_key].orders[t.order_id]
    return {
        "apiKey": t.api_key,
        **render.trade(spec, t),
        "clientOrderId": order.client_order_id,
        "replica": order.replica,
        "source": order.source,
    }


def _matches(request: web.Request, api_key: str, symbol: str) -> bool:
    want_key = request.query.get("apiKey")
    want_symbol = request.query.get("symbol")
    return (want_key is None or want_key == api_key) and (want_symbol is None or want_symbol == symbol)


def add_admin_routes(app: web.Application, venue: Venue) -> None:
    """Register ``/_paper/*`` on ``app``; handlers act on ``venue`` directly."""

    async def create_account(request: web.Request) -> web.Response:
        body = await _body(request)
        api_key, secret = _text(body, "apiKey"), _text(body, "secret")
        balance = _decimal(body, "balance") if "balance" in body else Decimal(0)
        try:
            account, created = venue.create_account(api_key, secret, balance)
        except ValueError as exc:
            raise AdminError(409 if "exists" in str(exc) else 400, str(exc)) from None
        payload = {"apiKey": account.api_key, "walletBalance": render.money(account.wallet_balance)}
        return web.json_response(payload, status=201 if created else 200)

    async def set_price(request: web.Request) -> web.Response:
        body = await _body(request)
        symbol, price = _text(body, "symbol").upper(), _decimal(body, "price")
        if price <= 0:
            raise AdminError(400, "'price' must be positive")
        venue.set_mark_price(symbol, price)
        return web.json_response({"symbol": symbol, "markPrice": render.money(venue.marks[symbol])})

    async def list_orders(request: web.Request) -> web.Response:
        rows = [_order_entry(venue, o) for o in venue.order_log if _matches(request, o.api_key, o.symbol)]
        return web.json_response(rows)

    async def list_trades(request: web.Request) -> web.Response:
        rows = [_trade_entry(venue, t) for t in venue.trade_log if _matches(request, t.api_key, t.symbol)]
        return web.json_response(rows)

    async def close_position(request: web.Request) -> web.Response:
        body = await _body(request)
        api_key, symbol = _text(body, "apiKey"), _text(body, "symbol").upper()
        order = venue.close_position(api_key, symbol)
        if order is None:
            return web.json_response({"closed": False, "order": None})
        return web.json_response({"closed": True, "order": render.order(venue.markets[symbol], order, with_time=True)})

    async def cancel_algo(request: web.Request) -> web.Response:
        body = await _body(request)
        api_key, symbol = _text(body, "apiKey"), _text(body, "symbol").upper()
        client_id = body.get("clientAlgoId")
        algo_id = body.get("algoId")
        if not isinstance(client_id, str) and not isinstance(algo_id, int):
            raise AdminError(400, "'clientAlgoId' (string) or 'algoId' (integer) is required")
        algo = venue.cancel_algo(
            venue.account(api_key),
            symbol,
            algo_id if isinstance(algo_id, int) else None,
            client_id if isinstance(client_id, str) else None,
        )
        return web.json_response(render.algo_order(venue.markets[algo.symbol], algo))

    @web.middleware
    async def admin_errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except AdminError as exc:
            return web.json_response({"error": exc.message}, status=exc.status)
        return response

    sub = web.Application(middlewares=[admin_errors])
    sub.router.add_post("/accounts", create_account)
    sub.router.add_post("/price", set_price)
    sub.router.add_get("/orders", list_orders)
    sub.router.add_get("/trades", list_trades)
    sub.router.add_post("/close-position", close_position)
    sub.router.add_post("/cancel-algo", cancel_algo)
    app.add_subapp("/_paper/", sub)
