"""HTTP layer of the paper exchange: Binance USDⓈ-M routes, request parsing, signature checks, JSON shapes."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from paper import errors, peer_routes, render
from paper.admin import add_admin_routes
from paper.auth import check_signature, check_timestamp, parse_params, total_params
from paper.errors import VenueError
from paper.models import ZERO, Account, AlgoOrder, AlgoRequest, NewOrderRequest, Order, OrderRequest, VenueName
from paper.params import Params
from paper.requestlog import REPLICA_HEADER
from paper.services import PaperOptions, Services
from paper.venue import Venue

log = logging.getLogger(__name__)

VENUE: web.AppKey[Venue] = web.AppKey("venue", Venue)
SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
CANCEL_ALL_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}
MAX_LIMIT = 1000
MAX_KLINES = 1500


@dataclass(frozen=True)
class Ctx:
    venue: Venue
    account: Account
    params: Params
    replica: str | None

    def symbol(self, *, required: bool = True) -> str | None:
        symbol = self.params.upper("symbol", required=required)
        if symbol is not None:
            self.venue.market(symbol)
        return symbol

    def required_symbol(self) -> str:
        symbol = self.symbol()
        assert symbol is not None
        return symbol

    def limit(self, default: int = 500) -> int:
        value = self.params.integer("limit")
        return default if value is None else max(1, min(value, MAX_LIMIT))


_Order = TypeVar("_Order", Order, AlgoOrder)
_Request = TypeVar("_Request", bound=NewOrderRequest)
SignedHandler = Callable[[Ctx], Awaitable[Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except VenueError as exc:
        return _json({"code": exc.code, "msg": exc.msg}, status=exc.http_status)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("paper exchange: unhandled error on %s %s", request.method, request.path)
        return _json({"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}, 500)


def signed(handler: SignedHandler) -> Handler:
    """Authenticate like Binance (API key, timestamp/recvWindow, HMAC over totalParams) and answer JSON."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        venue = request.app[VENUE]
        api_key = request.headers.get("X-MBX-APIKEY")
        if not api_key:
            raise VenueError(-2014, "API-key format invalid.", 401)
        account = venue.account(api_key, VenueName.BINANCE_USDM)
        raw_query = request.rel_url.raw_query_string
        raw_body = await request.text()
        payload, signature = total_params(raw_query, raw_body)
        values = parse_params(raw_query, raw_body)
        check_timestamp(values, venue.now())
        check_signature(account.secret, payload, signature)
        ctx = Ctx(venue, account, Params(values), request.headers.get(REPLICA_HEADER))
        return _json(await handler(ctx))

    return wrapper


def public(handler: Callable[[Venue, Params], Any]) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        values = parse_params(request.rel_url.raw_query_string, "")
        return _json(handler(request.app[VENUE], Params(values)))

    return wrapper


# ------------------------------------------------------------------------------------------ public market data


def _time(venue: Venue, params: Params) -> Any:
    return {"serverTime": venue.now()}


def _ping(venue: Venue, params: Params) -> Any:
    return {}


def _exchange_info(venue: Venue, params: Params) -> Any:
    return render.exchange_info(venue.markets, venue.now())


def _premium_index(venue: Venue, params: Params) -> Any:
    symbol = params.upper("symbol")
    now = venue.now()
    if symbol is not None:
        spec = venue.market(symbol)
        return render.premium_index(spec, venue.marks[spec.symbol], now)
    return [render.premium_index(spec, venue.marks[s], now) for s, spec in venue.markets.items()]


def _ticker_24hr(venue: Venue, params: Params) -> Any:
    symbol = params.upper("symbol")
    now = venue.now()
    if symbol is not None:
        spec = venue.market(symbol)
        return render.ticker_24hr(spec, venue.stats[spec.symbol], venue.lasts[spec.symbol], now)
    return [render.ticker_24hr(spec, venue.stats[s], venue.lasts[s], now) for s, spec in venue.markets.items()]


def _ticker_price(venue: Venue, params: Params) -> Any:
    symbol = params.upper("symbol")
    now = venue.now()
    specs = [venue.market(symbol)] if symbol is not None else list(venue.markets.values())
    rows = [{"symbol": s.symbol, "price": render.price(s, venue.lasts[s.symbol]), "time": now} for s in specs]
    return rows[0] if symbol is not None else rows


def _klines(venue: Venue, params: Params) -> Any:
    symbol = params.upper("symbol", required=True) or ""
    interval = params.text("interval", required=True) or ""
    limit = params.integer("limit")
    rows = venue.klines(
        symbol,
        interval,
        start_time=params.integer("startTime"),
        end_time=params.integer("endTime"),
        limit=500 if limit is None else max(1, min(limit, MAX_KLINES)),
    )
    spec = venue.market(symbol)
    return [render.kline(spec, candle, close_time) for candle, close_time in rows]


# ------------------------------------------------------------------------------------------ account


async def _leverage_bracket(ctx: Ctx) -> Any:
    symbol = ctx.symbol(required=False)
    if symbol is not None:
        return render.leverage_bracket(ctx.venue.markets[symbol])
    return [render.leverage_bracket(spec) for spec in ctx.venue.markets.values()]


async def _account_v3(ctx: Ctx) -> Any:
    metrics = ctx.venue.metrics(ctx.account)
    return render.account_v3(metrics, ctx.venue.markets, ctx.account.update_time)


async def _position_risk_v3(ctx: Ctx) -> Any:
    symbol = ctx.symbol(required=False)
    metrics = ctx.venue.metrics(ctx.account)
    return [
        render.position_risk(ctx.venue.markets[p.symbol], p, metrics)
        for p in metrics.positions
        if symbol is None or p.symbol == symbol
    ]


async def _set_leverage(ctx: Ctx) -> Any:
    symbol = ctx.required_symbol()
    leverage = ctx.params.integer("leverage", required=True)
    assert leverage is not None
    value, max_notional = ctx.venue.set_leverage(ctx.account, symbol, leverage)
    return {"leverage": value, "maxNotionalValue": f"{max_notional.normalize():f}", "symbol": symbol}


async def _set_margin_type(ctx: Ctx) -> Any:
    symbol = ctx.required_symbol()
    margin_type = ctx.params.upper("marginType", required=True)
    if margin_type not in ("ISOLATED", "CROSSED"):
        raise errors.invalid_param("marginType")
    ctx.venue.set_margin_type(ctx.account, symbol, margin_type)
    return {"code": 200, "msg": "success"}


async def _get_position_mode(ctx: Ctx) -> Any:
    return {"dualSidePosition": ctx.account.dual_side_position}


async def _set_position_mode(ctx: Ctx) -> Any:
    if "dualSidePosition" not in ctx.params:
        raise errors.mandatory("dualSidePosition")
    ctx.venue.set_position_mode(ctx.account, ctx.params.flag("dualSidePosition"))
    return {"code": 200, "msg": "success"}


# ------------------------------------------------------------------------------------------ regular orders


def _order_id_params(ctx: Ctx) -> tuple[int | None, str | None]:
    return ctx.params.integer("orderId"), ctx.params.text("origClientOrderId")


def _new_order_request(cls: type[_Request], ctx: Ctx, symbol: str, **extra: Any) -> _Request:
    """A new regular or algo order: the parameters both endpoints take, plus the endpoint's own ``extra``."""
    p = ctx.params
    req = cls(
        symbol=symbol,
        side=p.upper("side", required=True) or "",
        quantity=p.decimal("quantity"),
        price=p.decimal("price"),
        time_in_force=p.upper("timeInForce"),
        reduce_only=p.flag("reduceOnly"),
        close_position=p.flag("closePosition"),
        position_side=p.upper("positionSide") or "BOTH",
        working_type=p.upper("workingType") or "CONTRACT_PRICE",
        price_protect=p.flag("priceProtect"),
        replica=ctx.replica,
        **extra,
    )
    if p.upper("priceMatch") not in (None, "NONE"):  # read after the rest, so every parameter sent is looked at
        raise errors.unsupported("priceMatch")
    return req


async def _new_order(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = ctx.required_symbol()
    resp_type = p.upper("newOrderRespType") or "ACK"
    if resp_type not in ("ACK", "RESULT"):
        raise errors.invalid_param("newOrderRespType")
    req = _new_order_request(
        OrderRequest,
        ctx,
        symbol,
        type=p.upper("type", required=True) or "",
        client_order_id=p.text("newClientOrderId"),
    )
    order = ctx.venue.place_order(ctx.account, req)
    spec = ctx.venue.markets[symbol]
    if resp_type == "ACK":  # the order as acknowledged, before matching
        acked = dataclasses.replace(order, status="NEW", executed_qty=ZERO, cum_quote=ZERO, update_time=order.time)
        return render.order(spec, acked, with_cum_qty=True)
    return render.order(spec, order, with_cum_qty=True)


async def _get_order(ctx: Ctx) -> Any:
    symbol = ctx.required_symbol()
    order = ctx.venue.find_order(ctx.account, symbol, *_order_id_params(ctx))
    return render.order(ctx.venue.markets[symbol], order, with_time=True)


async def _get_open_order(ctx: Ctx) -> Any:
    symbol = ctx.required_symbol()
    order = ctx.venue.find_order(ctx.account, symbol, *_order_id_params(ctx))
    if not order.is_open:
        raise errors.order_does_not_exist()
    return render.order(ctx.venue.markets[symbol], order, with_time=True)


async def _cancel_order(ctx: Ctx) -> Any:
    symbol = ctx.required_symbol()
    order = ctx.venue.cancel_order(ctx.account, symbol, *_order_id_params(ctx))
    return render.order(ctx.venue.markets[symbol], order, with_cum_qty=True)


async def _open_orders(ctx: Ctx) -> Any:
    symbol = ctx.symbol(required=False)
    orders = ctx.venue.open_orders(ctx.account, symbol)
    return [render.order(ctx.venue.markets[o.symbol], o, with_time=True) for o in orders]


def _history(ctx: Ctx, orders: list[_Order], id_param: str, key: Callable[[_Order], tuple[int, int]]) -> list[_Order]:
    """Filter by ``id_param``/startTime/endTime (``key``: id, time); oldest ``limit`` from an id, else newest."""
    p = ctx.params
    first_id, start, end = p.integer(id_param), p.integer("startTime"), p.integer("endTime")
    orders = [
        o
        for o in orders
        if (first_id is None or key(o)[0] >= first_id)
        and (start is None or key(o)[1] >= start)
        and (end is None or key(o)[1] <= end)
    ]
    limit = ctx.limit()
    return orders[:limit] if first_id is not None else orders[-limit:]


async def _all_orders(ctx: Ctx) -> Any:
    symbol = ctx.required_symbol()
    orders = _history(ctx, ctx.venue.all_orders(ctx.account, symbol), "orderId", lambda o: (o.order_id, o.time))
    return [render.order(ctx.venue.markets[symbol], o, with_time=True) for o in orders]


async def _cancel_all_orders(ctx: Ctx) -> Any:
    ctx.venue.cancel_all_orders(ctx.account, ctx.required_symbol())
    return CANCEL_ALL_DONE


# ------------------------------------------------------------------------------------------ algo orders


async def _new_algo_order(ctx: Ctx) -> Any:
    p = ctx.params
    algo_type = p.upper("algoType", required=True)
    if algo_type != "CONDITIONAL":
        raise errors.invalid_param("algoType")
    symbol = ctx.required_symbol()
    activate = p.decimal("activatePrice")
    if activate is None:  # ccxt < 4.5.85 sends the regular-endpoint spelling
        activate = p.decimal("activationPrice")
    req = _new_order_request(
        AlgoRequest,
        ctx,
        symbol,
        order_type=p.upper("type", required=True) or "",
        trigger_price=p.decimal("triggerPrice"),
        client_algo_id=p.text("clientAlgoId"),
        activate_price=activate,
        callback_rate=p.decimal("callbackRate"),
    )
    algo = ctx.venue.place_algo_order(ctx.account, req)
    return render.algo_order(ctx.venue.markets[symbol], algo)


def _algo_id_params(ctx: Ctx) -> tuple[int | None, str | None]:
    return ctx.params.integer("algoId", ci=True), ctx.params.text("clientAlgoId", ci=True)


async def _get_algo_order(ctx: Ctx) -> Any:
    symbol = ctx.symbol(required=False)
    algo = ctx.venue.find_algo(ctx.account, symbol, *_algo_id_params(ctx))
    return render.algo_order(ctx.venue.markets[algo.symbol], algo)


async def _cancel_algo_order(ctx: Ctx) -> Any:
    symbol = ctx.symbol(required=False)
    algo = ctx.venue.cancel_algo(ctx.account, symbol, *_algo_id_params(ctx))
    return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}


async def _open_algo_orders(ctx: Ctx) -> Any:
    symbol = ctx.symbol(required=False)
    algo_id = ctx.params.integer("algoId")
    algos = ctx.venue.open_algo_orders(ctx.account, symbol)
    return [render.algo_order(ctx.venue.markets[a.symbol], a) for a in algos if algo_id is None or a.algo_id == algo_id]


async def _all_algo_orders(ctx: Ctx) -> Any:
    symbol = ctx.required_symbol()
    all_algos = ctx.venue.all_algo_orders(ctx.account, symbol)
    algos = _history(ctx, all_algos, "algoId", lambda a: (a.algo_id, a.create_time))
    return [render.algo_order(ctx.venue.markets[symbol], a) for a in algos]


async def _cancel_all_algo_orders(ctx: Ctx) -> Any:
    ctx.venue.cancel_all_algo_orders(ctx.account, ctx.required_symbol())
    return CANCEL_ALL_DONE


# ------------------------------------------------------------------------------------------ trades


async def _user_trades(ctx: Ctx) -> Any:
    symbol = ctx.required_symbol()
    p = ctx.params
    trades = ctx.venue.user_trades(
        ctx.account,
        symbol,
        order_id=p.integer("orderId"),
        start_time=p.integer("startTime"),
        end_time=p.integer("endTime"),
        from_id=p.integer("fromId"),
        limit=ctx.limit(),
    )
    spec = ctx.venue.markets[symbol]
    return [render.trade(spec, t) for t in trades]


def create_app(venue: Venue, options: PaperOptions | None = None) -> web.Application:
    """The paper exchange as an aiohttp application around ``venue``, with the services ``options`` configure."""
    services = Services.build(venue, options or PaperOptions())
    app = web.Application(middlewares=[*services.middlewares(), _error_middleware])
    app[VENUE] = venue
    app[SERVICES] = services
    r = app.router
    r.add_get("/fapi/v1/ping", public(_ping))
    r.add_get("/fapi/v1/time", public(_time))
    r.add_get("/fapi/v1/exchangeInfo", public(_exchange_info))
    r.add_get("/fapi/v1/premiumIndex", public(_premium_index))
    r.add_get("/fapi/v1/ticker/24hr", public(_ticker_24hr))
    r.add_get("/fapi/v1/ticker/price", public(_ticker_price))
    r.add_get("/fapi/v2/ticker/price", public(_ticker_price))
    r.add_get("/fapi/v1/klines", public(_klines))
    r.add_get("/fapi/v1/leverageBracket", signed(_leverage_bracket))
    r.add_get("/fapi/v3/account", signed(_account_v3))
    r.add_get("/fapi/v3/positionRisk", signed(_position_risk_v3))
    r.add_post("/fapi/v1/leverage", signed(_set_leverage))
    r.add_post("/fapi/v1/marginType", signed(_set_margin_type))
    r.add_get("/fapi/v1/positionSide/dual", signed(_get_position_mode))
    r.add_post("/fapi/v1/positionSide/dual", signed(_set_position_mode))
    r.add_post("/fapi/v1/order", signed(_new_order))
    r.add_get("/fapi/v1/order", signed(_get_order))
    r.add_delete("/fapi/v1/order", signed(_cancel_order))
    r.add_get("/fapi/v1/openOrder", signed(_get_open_order))
    r.add_get("/fapi/v1/openOrders", signed(_open_orders))
    r.add_get("/fapi/v1/allOrders", signed(_all_orders))
    r.add_delete("/fapi/v1/allOpenOrders", signed(_cancel_all_orders))
    r.add_post("/fapi/v1/algoOrder", signed(_new_algo_order))
    r.add_get("/fapi/v1/algoOrder", signed(_get_algo_order))
    r.add_delete("/fapi/v1/algoOrder", signed(_cancel_algo_order))
    r.add_get("/fapi/v1/openAlgoOrders", signed(_open_algo_orders))
    r.add_get("/fapi/v1/allAlgoOrders", signed(_all_algo_orders))
    r.add_delete("/fapi/v1/algoOpenOrders", signed(_cancel_all_algo_orders))
    r.add_get("/fapi/v1/userTrades", signed(_user_trades))
    for path, kind, handler in peer_routes.ROUTES:  # the read routes other trading systems need
        r.add_get(path, public(handler) if kind == "public" else signed(handler))
    services.install(app)
    add_admin_routes(app, services)
    return app
