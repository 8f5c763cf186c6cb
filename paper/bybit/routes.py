"""HTTP layer of the Bybit front: ``/v5/...`` routes, request signatures (X-BAPI-*), the ``retCode`` envelope."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

from paper.bybit import errors, render
from paper.bybit.errors import BybitError
from paper.bybit.front import BybitFront, BybitOrder, OrderRequest, Protection
from paper.bybit.params import BybitParams
from paper.bybit.vocab import (
    ACCOUNT_TYPE,
    CATEGORY,
    POSITION_SIDES,
    SETTLE_COIN,
    SHORT_LIVED,
    MarginMode,
    OrderFilter,
    OrderStatus,
    OrderType,
    PositionMode,
    Side,
    TimeInForce,
    TpslMode,
    TriggerBy,
)
from paper.errors import VenueError
from paper.models import ZERO, Account, Position, Trade
from paper.requestlog import REPLICA_HEADER
from paper.risk import position_metrics

log = logging.getLogger(__name__)

PREFIX = "/v5/"
INVERSE = "inverse"
DEFAULT_RECV_WINDOW = 5000
MAX_CLOCK_AHEAD_MS = 1000
DAY_MS = 24 * 3600 * 1000
WEEK_MS = 7 * DAY_MS
REALTIME_CLOSED_KEPT = 500  # closed orders /v5/order/realtime still finds by id

FRONT: web.AppKey[BybitFront] = web.AppKey("bybit_front", BybitFront)
_T = TypeVar("_T")


def envelope(now: int, result: Any, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now}


@dataclass(frozen=True)
class Ctx:
    front: BybitFront
    account: Account
    params: BybitParams
    replica: str | None

    def category(self) -> None:
        if self.params.text("category", required=True) != CATEGORY:
            raise errors.params_error("category only support linear")

    def symbol(self, *, required: bool = False) -> str | None:
        symbol = self.params.text("symbol", required=required)
        return None if symbol is None else self.front.market(symbol.upper()).symbol

    def required_symbol(self) -> str:
        symbol = self.symbol(required=True)
        assert symbol is not None
        return symbol

    def settle_scope(self) -> str | None:
        """The symbol asked about, or None for all (``settleCoin=USDT``); one of the two is required."""
        symbol = self.symbol()
        if symbol is None:
            coin = self.params.text("settleCoin") or self.params.text("baseCoin")
            if coin is None:
                raise errors.params_error("symbol or settleCoin is required")
            if coin.upper() != SETTLE_COIN:
                raise errors.params_error("settleCoin invalid")
        return symbol

    def render(self, view: BybitOrder) -> dict[str, Any]:
        return render.order(self.front.venue.markets[view.symbol], self.account, view)


SignedHandler = Callable[[Ctx], Awaitable[Any]]
PublicHandler = Callable[[BybitFront, BybitParams], Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answer(front: BybitFront, result: Any) -> web.Response:
    return web.json_response(envelope(front.venue.now(), result))


def _refusal(front: BybitFront, exc: VenueError) -> web.Response:
    refused = errors.translate(exc)
    body = envelope(front.venue.now(), refused.result, refused.code, refused.msg)
    return web.json_response(body, status=refused.http_status)


async def _guarded(request: web.Request, run: Callable[[BybitFront], Awaitable[Any]]) -> web.StreamResponse:
    front = request.app[FRONT]
    try:
        return _answer(front, await run(front))
    except VenueError as exc:
        return _refusal(front, exc)
    except Exception:
        log.exception("paper exchange: unhandled error on %s %s", request.method, request.path)
        return web.json_response(envelope(front.venue.now(), {}, 10016, "Internal System Error."))


def authenticate(front: BybitFront, headers: Any, payload: str) -> Account:
    """Bybit's REST signature: HMAC-SHA256(secret, timestamp + key + recvWindow + payload), within the window."""
    account = front.account(headers.get("X-BAPI-API-KEY"))
    raw_ts, raw_window = headers.get("X-BAPI-TIMESTAMP", ""), headers.get("X-BAPI-RECV-WINDOW", "")
    window = int(raw_window) if raw_window.isdigit() else DEFAULT_RECV_WINDOW
    now = front.venue.now()
    timestamp = int(raw_ts) if raw_ts.isdigit() else 0
    if not now - window <= timestamp < now + MAX_CLOCK_AHEAD_MS:
        raise errors.timestamp_window(timestamp, now, window)
    origin = f"{raw_ts}{account.api_key}{raw_window}{payload}"
    expected = hmac.new(account.secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers.get("X-BAPI-SIGN", "").lower()):
        raise errors.bad_signature(origin)
    return account


def signed(handler: SignedHandler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        raw_query = request.rel_url.raw_query_string
        raw_body = await request.text()

        async def run(front: BybitFront) -> Any:
            payload = raw_body if request.method == "POST" else raw_query
            account = authenticate(front, request.headers, payload)
            if request.method == "POST":
                try:
                    values = json.loads(raw_body or "{}")
                except ValueError:
                    raise errors.params_error("request body is not JSON") from None
                if not isinstance(values, dict):
                    raise errors.params_error("request body is not a JSON object")
            else:
                values = dict(parse_qsl(raw_query, keep_blank_values=True))
            return await handler(Ctx(front, account, BybitParams(values), request.headers.get(REPLICA_HEADER)))

        return await _guarded(request, run)

    return wrapper


def public(handler: PublicHandler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        values = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))

        async def run(front: BybitFront) -> Any:
            return handler(front, BybitParams(values))

        return await _guarded(request, run)

    return wrapper


def _page(params: BybitParams, rows: Sequence[_T], default: int, most: int) -> tuple[list[_T], str]:
    """A page of ``rows`` from ``cursor`` (an offset, opaque to clients) and the next cursor ("" at the end)."""
    cursor = params.text("cursor")
    start = int(cursor) if cursor is not None and cursor.isdigit() else 0
    size = params.limit(default, most)
    page = list(rows[start : start + size])
    return page, str(start + size) if start + size < len(rows) else ""


# ------------------------------------------------------------------------------------------ public


def _time(front: BybitFront, params: BybitParams) -> Any:
    now = front.venue.now()
    return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}


def _category(params: BybitParams) -> None:
    if params.text("category", required=True) != CATEGORY:
        raise errors.params_error("category only support linear")


def _instruments(front: BybitFront, params: BybitParams) -> Any:
    _category(params)
    specs = list(front.venue.markets.values())
    symbol = params.text("symbol")
    if symbol is not None:
        specs = [s for s in specs if s.symbol == symbol.upper()]
    if params.text("status") not in (None, "Trading"):  # nothing is pre-launch or settling on the paper venue
        specs = []
    page, cursor = _page(params, specs, 500, 1000)
    launch = front.venue.start_time
    return {"category": CATEGORY, "list": [render.instrument(s, launch) for s in page], "nextPageCursor": cursor}


def _tickers(front: BybitFront, params: BybitParams) -> Any:
    _category(params)
    symbol = params.text("symbol")
    specs = [front.market(symbol.upper())] if symbol is not None else list(front.venue.markets.values())
    return {"category": CATEGORY, "list": [render.ticker(s, front.venue) for s in specs]}


# ------------------------------------------------------------------------------------------ orders


def _protection(p: BybitParams, prefix: str, name: str) -> Protection | None:
    price = p.decimal(name)
    if price is None:
        return None
    limit = p.decimal(f"{prefix}LimitPrice") if p.text(f"{prefix}OrderType") == OrderType.LIMIT else None
    return Protection(
        price=price,
        trigger_by=p.choice(f"{prefix}TriggerBy", TriggerBy, default=TriggerBy.LAST_PRICE) or TriggerBy.LAST_PRICE,
        limit_price=limit or ZERO,
        size=p.decimal(f"{prefix}Size"),
    )


async def _create(ctx: Ctx) -> Any:
    p = ctx.params
    ctx.category()
    side = p.choice("side", Side)
    order_type = p.choice("orderType", OrderType)
    if side is None or order_type is None:
        raise errors.missing("side" if side is None else "orderType")
    qty = p.decimal("qty", required=True)
    assert qty is not None
    req = OrderRequest(
        symbol=ctx.required_symbol(),
        side=side,
        order_type=order_type,
        qty=qty,
        price=p.decimal("price"),
        time_in_force=p.choice("timeInForce", TimeInForce),
        position_idx=p.integer("positionIdx") or 0,
        link_id=p.text("orderLinkId"),
        reduce_only=p.flag("reduceOnly"),
        close_on_trigger=p.flag("closeOnTrigger"),
        trigger_price=p.decimal("triggerPrice"),
        trigger_direction=p.integer("triggerDirection"),
        trigger_by=p.choice("triggerBy", TriggerBy, default=TriggerBy.LAST_PRICE) or TriggerBy.LAST_PRICE,
        take_profit=_protection(p, "tp", "takeProfit"),
        stop_loss=_protection(p, "sl", "stopLoss"),
        tpsl_mode=p.choice("tpslMode", TpslMode),
        replica=ctx.replica,
    )
    view = ctx.front.place_order(ctx.account, req)
    return {"orderId": view.order_id, "orderLinkId": view.link_id}


def _find(ctx: Ctx) -> BybitOrder:
    order_id, link_id = ctx.params.text("orderId"), ctx.params.text("orderLinkId")
    if order_id is None and link_id is None:
        raise errors.params_error("orderId or orderLinkId is required")
    return ctx.front.find(ctx.account, order_id, link_id)


async def _amend(ctx: Ctx) -> Any:
    ctx.category()
    symbol = ctx.required_symbol()
    p = ctx.params
    view = ctx.front.amend_order(
        ctx.account, symbol, _find(ctx), p.decimal("qty"), p.decimal("price"), p.decimal("triggerPrice")
    )
    return {"orderId": view.order_id, "orderLinkId": view.link_id}


async def _cancel(ctx: Ctx) -> Any:
    ctx.category()
    symbol = ctx.required_symbol()
    try:
        view = _find(ctx)
    except BybitError:
        raise errors.order_not_found() from None
    if view.symbol != symbol:
        raise errors.order_not_found()
    ctx.front.cancel(ctx.account, view)
    return {"orderId": view.order_id, "orderLinkId": view.link_id}


async def _cancel_all(ctx: Ctx) -> Any:
    ctx.category()
    symbol = ctx.settle_scope()
    order_filter = ctx.params.choice("orderFilter", OrderFilter)
    cancelled = ctx.front.cancel_all(ctx.account, symbol, order_filter)
    return {"list": [{"orderId": v.order_id, "orderLinkId": v.link_id} for v in cancelled], "success": "1"}


def _orders_page(ctx: Ctx, views: list[BybitOrder]) -> Any:
    order_filter = ctx.params.choice("orderFilter", OrderFilter)
    page, cursor = _page(ctx.params, [v for v in views if v.passes(order_filter)], 20, 50)
    return {"category": CATEGORY, "list": [ctx.render(v) for v in page], "nextPageCursor": cursor}


async def _realtime(ctx: Ctx) -> Any:
    """Open orders; with orderId/orderLinkId the order in any state (closed ones among the newest 500 closed)."""
    ctx.category()
    p = ctx.params
    if p.text("orderId") is None and p.text("orderLinkId") is None:
        symbol = ctx.settle_scope()
        return _orders_page(ctx, ctx.front.open_orders(ctx.account, symbol))
    symbol = ctx.symbol()
    try:
        view = _find(ctx)
    except BybitError:
        return _orders_page(ctx, [])
    closed = [v.order_id for v in ctx.front.orders(ctx.account) if not v.is_open][:REALTIME_CLOSED_KEPT]
    visible = view.is_open or view.order_id in closed
    return _orders_page(ctx, [view] if visible and symbol in (None, view.symbol) else [])


async def _history(ctx: Ctx) -> Any:
    """Closed orders: cancelled, rejected and deactivated ones for a day, the others for a week."""
    ctx.category()
    p = ctx.params
    symbol = ctx.symbol()
    now = ctx.front.venue.now()
    end = p.integer("endTime") or now
    start = p.integer("startTime") or end - WEEK_MS
    status = p.choice("orderStatus", OrderStatus)
    order_id, link_id = p.text("orderId"), p.text("orderLinkId")
    if order_id is None and link_id is not None:
        order_id = ctx.account.bybit_links.get(link_id, "-")
    views = [
        v
        for v in ctx.front.orders(ctx.account)
        if (symbol is None or v.symbol == symbol)
        and (order_id is None or v.order_id == order_id)
        and (status is None or v.status is status)
        and (v.status not in SHORT_LIVED or now - v.updated <= DAY_MS)
        and start <= v.created <= end
        and not v.is_open
    ]
    return _orders_page(ctx, views)


async def _executions(ctx: Ctx) -> Any:
    ctx.category()
    p = ctx.params
    symbol = ctx.symbol()
    exec_type = p.text("execType")
    start, end = p.integer("startTime"), p.integer("endTime")
    wanted: str | None = None
    if p.text("orderId") is not None or p.text("orderLinkId") is not None:
        try:
            wanted = _find(ctx).order_id
        except BybitError:
            wanted = "-"
    front, account = ctx.front, ctx.account
    rows: list[dict[str, Any]] = []
    for trade in reversed(account.trades):
        if symbol is not None and trade.symbol != symbol:
            continue
        if (start is not None and trade.time < start) or (end is not None and trade.time > end):
            continue
        view = front.of_order(account, account.orders[trade.order_id])
        if wanted is not None and view.order_id != wanted:
            continue
        spec = front.venue.markets[trade.symbol]
        row = render.execution(spec, account, view, trade, front.venue.marks[trade.symbol])
        if exec_type is None or row["execType"] == exec_type:
            rows.append(row)
    page, cursor = _page(p, rows, 50, 100)
    return {"category": CATEGORY, "list": page, "nextPageCursor": cursor}


async def _closed_pnl(ctx: Ctx) -> Any:
    """Per closing order, newest first: what it closed, at what entry and exit, for what PnL (7 days by default)."""
    ctx.category()
    p = ctx.params
    symbol = ctx.symbol()
    end = p.integer("endTime") or ctx.front.venue.now()
    start = p.integer("startTime") or end - WEEK_MS
    account = ctx.account
    by_order: dict[int, list[Trade]] = {}
    for trade in account.trades:
        if trade.closed_qty and (symbol is None or trade.symbol == symbol) and start <= trade.time <= end:
            by_order.setdefault(trade.order_id, []).append(trade)
    rows = [
        render.closed_pnl(
            ctx.front.venue.markets[closing[0].symbol],
            account,
            ctx.front.of_order(account, account.orders[order_id]),
            closing,
        )
        for order_id, closing in reversed(by_order.items())
    ]
    page, cursor = _page(p, rows, 50, 100)
    return {"category": CATEGORY, "list": page, "nextPageCursor": cursor}


# ------------------------------------------------------------------------------------------ positions, account


def position_rows(front: BybitFront, account: Account, symbol: str | None) -> list[dict[str, Any]]:
    """With a symbol, every position side of it (flat ones too); without, the open positions."""
    venue = front.venue
    metrics = venue.metrics(account)
    if symbol is not None:
        sides = POSITION_SIDES[1:] if account.dual_side_position else POSITION_SIDES[:1]
        positions = [account.positions.get(symbol, {}).get(s) or Position(symbol, s) for s in sides]
    else:
        positions = account.open_positions()
    rows = []
    for pos in positions:
        spec = venue.markets[pos.symbol]
        pm = position_metrics(account, pos, spec, venue.marks[pos.symbol])
        stops = front.position_stops(account, pos.symbol, pos.position_side)
        rows.append(render.position(spec, account, pm, metrics, stops))
    return rows


async def _positions(ctx: Ctx) -> Any:
    if ctx.params.text("category") == INVERSE:  # ccxt.pro's position snapshot asks; the paper lists none
        return {"category": INVERSE, "list": [], "nextPageCursor": ""}
    ctx.category()
    symbol = ctx.settle_scope()
    page, cursor = _page(ctx.params, position_rows(ctx.front, ctx.account, symbol), 20, 200)
    return {"category": CATEGORY, "list": page, "nextPageCursor": cursor}


async def _set_leverage(ctx: Ctx) -> Any:
    ctx.category()
    symbol = ctx.required_symbol()
    buy, sell = ctx.params.decimal("buyLeverage", required=True), ctx.params.decimal("sellLeverage", required=True)
    assert buy is not None and sell is not None
    ctx.front.set_leverage(ctx.account, symbol, buy, sell)
    return {}


async def _switch_mode(ctx: Ctx) -> Any:
    ctx.category()
    ctx.symbol()  # a symbol or a coin: the paper venue switches the whole account either way
    mode = ctx.params.integer("mode")
    if mode not in (PositionMode.ONE_WAY, PositionMode.HEDGE):
        raise errors.invalid("mode")
    ctx.front.switch_mode(ctx.account, PositionMode(mode))
    return {}


async def _set_margin_mode(ctx: Ctx) -> Any:
    mode = ctx.params.choice("setMarginMode", MarginMode)
    if mode is None:
        raise errors.missing("setMarginMode")
    ctx.front.set_margin_mode(ctx.account, mode)
    return {"reasons": []}


async def _trading_stop(ctx: Ctx) -> Any:
    ctx.category()
    p = ctx.params
    ctx.front.trading_stop(
        ctx.account,
        ctx.required_symbol(),
        p.integer("positionIdx") or 0,
        p.choice("tpslMode", TpslMode, default=TpslMode.FULL) or TpslMode.FULL,
        _protection(p, "tp", "takeProfit"),
        _protection(p, "sl", "stopLoss"),
        p.decimal("trailingStop"),
        p.decimal("activePrice"),
    )
    return {}


async def _wallet(ctx: Ctx) -> Any:
    account_type = ctx.params.text("accountType", required=True)
    if account_type != ACCOUNT_TYPE:
        raise errors.params_error("accountType only support UNIFIED")
    return {"list": [render.wallet(ctx.account, ctx.front.venue.metrics(ctx.account))]}


async def _account_info(ctx: Ctx) -> Any:
    isolated = ctx.account.default_margin_type == MarginMode.ISOLATED.engine
    return {
        "unifiedMarginStatus": 6,
        "marginMode": (MarginMode.ISOLATED if isolated else MarginMode.REGULAR).value,
        "isMasterTrader": False,
        "spotHedgingStatus": "OFF",
        "updatedTime": str(ctx.account.update_time),
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
    }


async def _not_found(request: web.Request) -> web.StreamResponse:
    front = request.app[FRONT]
    return _refusal(front, errors.route_not_found())


def add_routes(app: web.Application, front: BybitFront) -> None:
    app[FRONT] = front
    r = app.router
    r.add_get("/v5/market/time", public(_time))
    r.add_get("/v5/market/instruments-info", public(_instruments))
    r.add_get("/v5/market/tickers", public(_tickers))
    r.add_post("/v5/order/create", signed(_create))
    r.add_post("/v5/order/amend", signed(_amend))
    r.add_post("/v5/order/cancel", signed(_cancel))
    r.add_post("/v5/order/cancel-all", signed(_cancel_all))
    r.add_get("/v5/order/realtime", signed(_realtime))
    r.add_get("/v5/order/history", signed(_history))
    r.add_get("/v5/execution/list", signed(_executions))
    r.add_get("/v5/position/list", signed(_positions))
    r.add_get("/v5/position/closed-pnl", signed(_closed_pnl))
    r.add_post("/v5/position/set-leverage", signed(_set_leverage))
    r.add_post("/v5/position/switch-mode", signed(_switch_mode))
    r.add_post("/v5/position/trading-stop", signed(_trading_stop))
    r.add_post("/v5/account/set-margin-mode", signed(_set_margin_mode))
    r.add_get("/v5/account/wallet-balance", signed(_wallet))
    r.add_get("/v5/account/info", signed(_account_info))


def add_fallback(app: web.Application) -> None:
    """Unknown ``/v5/`` routes answer 10017 in the envelope (registered last: after the websocket's route)."""
    app.router.add_route("*", "/v5/{tail:.*}", _not_found)
