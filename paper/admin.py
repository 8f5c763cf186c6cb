"""Unsigned JSON admin API of the paper exchange (``/_paper/...``): accounts, prices, audit logs, manual actions."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from paper import render
from paper.bybit import errors as bybit_errors
from paper.bybit import render as bybit_render
from paper.bybit.front import execution_id
from paper.bybit.vocab import CancelType
from paper.errors import VenueError
from paper.faults import FaultSpecError
from paper.models import Account, AlgoOrder, Order, Trade, VenueName
from paper.prices import paths_from_json
from paper.services import Services
from paper.venue import Venue


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
        "workingType": o.working_type,
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
    account = venue.accounts[t.api_key]
    order = account.orders[t.order_id]
    return {
        "apiKey": t.api_key,
        **render.trade(spec, t),
        # The id the account's own API gives the trade (Bybit's execId), as a client such as Warden records it.
        "venueTradeId": execution_id(t.trade_id) if account.venue == VenueName.BYBIT else str(t.trade_id),
        "clientOrderId": order.client_order_id,
        "replica": order.replica,
        "source": order.source,
        "liquidation": t.liquidation,
    }


def _matches(request: web.Request, api_key: str, symbol: str) -> bool:
    want_key = request.query.get("apiKey")
    want_symbol = request.query.get("symbol")
    return (want_key is None or want_key == api_key) and (want_symbol is None or want_symbol == symbol)


def _optional_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.lstrip("-").isdigit():
        raise AdminError(400, f"'{name}' must be an integer")
    return int(raw)


def _body_int(body: dict[str, Any], name: str, minimum: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AdminError(400, f"'{name}' must be an integer >= {minimum}")
    return value


def add_admin_routes(app: web.Application, services: Services) -> None:
    """Register ``/_paper/*`` on ``app``; handlers act on the venue and its services directly."""
    venue = services.venue

    async def create_account(request: web.Request) -> web.Response:
        body = await _body(request)
        api_key, secret = _text(body, "apiKey"), _text(body, "secret")
        balance = _decimal(body, "balance") if "balance" in body else Decimal(0)
        try:
            venue_name = VenueName(body.get("venue", VenueName.BINANCE_USDM))
        except ValueError:
            raise AdminError(400, f"'venue' must be one of {[v.value for v in VenueName]}") from None
        try:
            account, created = venue.create_account(api_key, secret, balance, venue_name)
        except ValueError as exc:
            raise AdminError(409 if "exists" in str(exc) else 400, str(exc)) from None
        payload = {
            "apiKey": account.api_key,
            "venue": account.venue,
            "walletBalance": render.money(account.wallet_balance),
        }
        return web.json_response(payload, status=201 if created else 200)

    async def set_price(request: web.Request) -> web.Response:
        body = await _body(request)
        symbol = _text(body, "symbol").upper()
        both = _decimal(body, "price") if "price" in body else None  # mark and last together
        mark = _decimal(body, "mark") if "mark" in body else both
        last = _decimal(body, "last") if "last" in body else both
        if mark is None and last is None:
            raise AdminError(400, "'price', 'mark' or 'last' is required")
        if any(p is not None and p <= 0 for p in (mark, last)):
            raise AdminError(400, "prices must be positive")
        venue.set_prices(symbol, mark=mark, last=last)
        payload = {"symbol": symbol, "markPrice": render.money(venue.marks[symbol])}
        return web.json_response({**payload, "lastPrice": render.money(venue.lasts[symbol])})

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
        services.faults.record("external_close", api_key=api_key, symbol=symbol, closed=order is not None)
        if order is None:
            return web.json_response({"closed": False, "order": None})
        account = venue.accounts[api_key]
        if account.venue == VenueName.BYBIT:
            shown = bybit_render.order(venue.markets[symbol], account, services.bybit.of_order(account, order))
        else:
            shown = render.order(venue.markets[symbol], order, with_time=True)
        return web.json_response({"closed": True, "order": shown})

    async def cancel_bybit_conditional(body: dict[str, Any], account: Account, symbol: str) -> web.Response:
        """A Bybit conditional order cancelled by the venue (Deactivated), by orderId or orderLinkId."""
        order_id, link_id = body.get("orderId"), body.get("orderLinkId", body.get("clientAlgoId"))
        if not isinstance(order_id, str) and not isinstance(link_id, str):
            raise AdminError(400, "'orderId' or 'orderLinkId' (string) is required")
        front = services.bybit
        try:
            found = front.find(
                account, order_id if isinstance(order_id, str) else None, link_id if isinstance(link_id, str) else None
            )
            if found.algo is None or found.order is not None or found.symbol != symbol:
                raise bybit_errors.order_not_found()
            front.cancel(account, found, CancelType.BY_ADMIN)
        except VenueError as exc:
            raise AdminError(404, exc.msg) from None
        services.faults.record("cancel_algo", api_key=account.api_key, client_order_id=found.link_id, symbol=symbol)
        return web.json_response(bybit_render.order(venue.markets[symbol], account, found))

    async def cancel_algo(request: web.Request) -> web.Response:
        body = await _body(request)
        api_key, symbol = _text(body, "apiKey"), _text(body, "symbol").upper()
        account = venue.accounts.get(api_key)
        if account is not None and account.venue == VenueName.BYBIT:
            return await cancel_bybit_conditional(body, account, symbol)
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
        services.faults.record("cancel_algo", api_key=api_key, client_order_id=algo.client_algo_id, symbol=symbol)
        return web.json_response(render.algo_order(venue.markets[algo.symbol], algo))

    async def list_positions(request: web.Request) -> web.Response:
        rows = [
            {
                "apiKey": account.api_key,
                "symbol": pos.symbol,
                "positionSide": pos.position_side,
                "positionAmt": render.qty(venue.markets[pos.symbol], pos.amount),
                "entryPrice": render.price(venue.markets[pos.symbol], pos.entry_price),
                "markPrice": render.price(venue.markets[pos.symbol], venue.marks[pos.symbol]),
                "updateTime": pos.update_time,
            }
            for account in venue.accounts.values()
            for pos in account.open_positions()
            if _matches(request, account.api_key, pos.symbol)
        ]
        return web.json_response(rows)

    def clock_state(moves: int = 0) -> dict[str, Any]:
        return {"mode": venue.clock.mode, "now": venue.now(), "priceMoves": moves}

    async def get_clock(request: web.Request) -> web.Response:
        return web.json_response(clock_state())

    async def set_clock(request: web.Request) -> web.Response:
        """``{"mode": "manual"|"wall"}`` and/or ``{"advance_ms": N}``; due price moves are applied at once."""
        body = await _body(request)
        if "mode" in body:
            try:
                venue.clock.set_mode(_text(body, "mode"))
            except ValueError as exc:
                raise AdminError(400, str(exc)) from None
        for name in ("advance_ms", "advanceMs"):
            if name in body:
                venue.clock.advance(_body_int(body, name, 0))
        return web.json_response(clock_state(services.prices.advance()))

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response(services.faults.as_json())

    async def add_faults(request: web.Request) -> web.Response:
        """One rule, a list of rules, or ``{"rules": [...]}``."""
        try:
            body = await request.json()
        except ValueError:
            raise AdminError(400, "body must be JSON") from None
        specs = body.get("rules", [body]) if isinstance(body, dict) else body
        if not isinstance(specs, list) or not all(isinstance(spec, dict) for spec in specs):
            raise AdminError(400, "body must be a rule, a list of rules or {'rules': [...]}")
        try:
            rules = [services.faults.add(spec) for spec in specs]
        except FaultSpecError as exc:
            raise AdminError(400, str(exc)) from None
        return web.json_response({"rules": [rule.as_json(venue.now()) for rule in rules]}, status=201)

    async def clear_faults(request: web.Request) -> web.Response:
        services.faults.clear()
        return web.json_response(services.faults.as_json())

    async def list_requests(request: web.Request) -> web.Response:
        entries = services.requests.entries(request.query.get("apiKey"), _optional_int(request, "since"))
        return web.json_response([entry.as_json() for entry in entries])

    async def get_limits(request: web.Request) -> web.Response:
        return web.json_response(services.limiter.limits.as_json())

    async def set_limits(request: web.Request) -> web.Response:
        """Change any of the budgets; counters and bans start afresh."""
        body = await _body(request)
        limits = services.limiter.limits
        for key, attribute in (
            ("weightPerMinute", "weight_per_minute"),
            ("ordersPer10s", "orders_per_10s"),
            ("ordersPerMinute", "orders_per_minute"),
            ("banMs", "ban_ms"),
            ("bybitIpPer5s", "bybit_ip_per_5s"),
            ("bybitBanMs", "bybit_ban_ms"),
        ):
            if key in body:
                setattr(limits, attribute, _body_int(body, key, 1))
        services.limiter.reset()
        services.bybit_limiter.reset()
        return web.json_response(limits.as_json())

    async def get_price_paths(request: web.Request) -> web.Response:
        return web.json_response(services.prices.describe())

    async def add_price_paths(request: web.Request) -> web.Response:
        """``{"walk": {"seed": 7, "tickMs": 1000, ...}}`` and/or ``{"script": "offset_ms,symbol,price\\n..."}``."""
        body = await _body(request)
        try:
            paths = list(paths_from_json(body, venue, services.seed))
        except ValueError as exc:
            raise AdminError(400, str(exc)) from None
        for path in paths:
            services.prices.add(path)
        return web.json_response(services.prices.describe(), status=201)

    async def clear_price_paths(request: web.Request) -> web.Response:
        services.prices.clear()
        return web.json_response([])

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
    sub.router.add_post("/external-close", close_position)
    sub.router.add_get("/positions", list_positions)
    sub.router.add_get("/clock", get_clock)
    sub.router.add_post("/clock", set_clock)
    sub.router.add_get("/faults", get_faults)
    sub.router.add_post("/faults", add_faults)
    sub.router.add_delete("/faults", clear_faults)
    sub.router.add_get("/requests", list_requests)
    sub.router.add_get("/limits", get_limits)
    sub.router.add_post("/limits", set_limits)
    sub.router.add_get("/price-path", get_price_paths)
    sub.router.add_post("/price-path", add_price_paths)
    sub.router.add_delete("/price-path", clear_price_paths)
    sub.router.add_post("/cancel-algo", cancel_algo)
    app.add_subapp("/_paper/", sub)
