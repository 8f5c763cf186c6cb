"""Binance USDⓈ-M read routes that other trading systems call and Warden does not (docs/paper-exchange.md, "Routes
for other systems"): the order book, the book ticker, recent trades, the multi-assets mode, the income history, the
v2 account and position risk, and the per-symbol configuration.

Each answers in Binance's shape (ccxt's recorded responses, else Binance's documented examples) from the venue's
state; nothing here changes it. The handlers take the same arguments as ``paper.app``'s and are registered there
(``ROUTES``), behind the same authentication, request log and rate limiter.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from paper import render
from paper.markets import MarketSpec
from paper.models import Account, Position, SymbolSettings, Trade
from paper.params import Params
from paper.risk import AccountMetrics, PositionMetrics, break_even_price, liquidation_price, position_metrics
from paper.venue import Venue

if TYPE_CHECKING:
    from paper.app import Ctx

MAX_TRADES = 1000
MAX_INCOME = 1000
INCOME_TYPES = ("REALIZED_PNL", "COMMISSION")  # what the paper books; no funding, transfers or rebates


# ------------------------------------------------------------------------------------------ public


def book_levels(venue: Venue, spec: MarketSpec) -> tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal]]:
    """The paper's one-level book: (bid, qty), (ask, qty). A sell at the last price fills, a buy one tick above does;
    each side offers ``bookDepth`` (the venue's depth model, ``paper.venue``)."""
    last = venue.lasts[spec.symbol]
    return (last, spec.book_depth), (last + spec.tick_size, spec.book_depth)


def depth(venue: Venue, params: Params) -> Any:
    symbol = params.upper("symbol", required=True) or ""
    params.integer("limit")  # 5, 10, 20, 50, 100, 500 or 1000 levels asked; the paper has one a side
    spec = venue.market(symbol)
    (bid, bid_qty), (ask, ask_qty) = book_levels(venue, spec)
    now = venue.now()
    return {
        "lastUpdateId": now,
        "E": now,
        "T": now,
        "bids": [[render.price(spec, bid), render.qty(spec, bid_qty)]],
        "asks": [[render.price(spec, ask), render.qty(spec, ask_qty)]],
    }


def book_ticker(venue: Venue, params: Params) -> Any:
    symbol = params.upper("symbol")
    now = venue.now()
    specs = [venue.market(symbol)] if symbol is not None else list(venue.markets.values())
    rows = []
    for spec in specs:
        (bid, bid_qty), (ask, ask_qty) = book_levels(venue, spec)
        rows.append(
            {
                "symbol": spec.symbol,
                "bidPrice": render.price(spec, bid),
                "bidQty": render.qty(spec, bid_qty),
                "askPrice": render.price(spec, ask),
                "askQty": render.qty(spec, ask_qty),
                "time": now,
                "lastUpdateId": now,
            }
        )
    return rows[0] if symbol is not None else rows


def public_trade(spec: MarketSpec, t: Trade) -> dict[str, Any]:
    return {
        "id": t.trade_id,
        "price": render.price(spec, t.price),
        "qty": render.qty(spec, t.qty),
        "quoteQty": render.dec(t.quote_qty, 5, 12),
        "time": t.time,
        "isBuyerMaker": (t.side == "BUY") == t.maker,
    }


def recent_trades(venue: Venue, params: Params) -> Any:
    """``GET /fapi/v1/trades``: every account's fills of the symbol, oldest first, the newest ``limit``."""
    symbol = params.upper("symbol", required=True) or ""
    spec = venue.market(symbol)
    limit = params.integer("limit")
    limit = 500 if limit is None else max(1, min(limit, MAX_TRADES))
    trades = sorted(
        (t for account in venue.accounts.values() for t in account.trades if t.symbol == spec.symbol),
        key=lambda t: t.trade_id,
    )
    return [public_trade(spec, t) for t in trades[-limit:]]


# ------------------------------------------------------------------------------------------ signed


async def multi_assets_margin(ctx: Ctx) -> Any:
    return {"multiAssetsMargin": False}  # the paper keeps single-asset (USDT) margin


def _income_rows(account: Account) -> list[dict[str, Any]]:
    rows = []
    for t in account.trades:
        for kind, amount in (("REALIZED_PNL", t.realized_pnl), ("COMMISSION", -t.commission)):
            if amount != 0:
                rows.append(
                    {
                        "symbol": t.symbol,
                        "incomeType": kind,
                        "income": render.money(amount),
                        "asset": "USDT",
                        "info": kind,
                        "time": t.time,
                        "tranId": t.trade_id * 2 + (kind == "COMMISSION"),
                        "tradeId": str(t.trade_id),
                    }
                )
    return rows


async def income(ctx: Ctx) -> Any:
    """``GET /fapi/v1/income``: realized PnL and commission per fill (the paper books no funding or transfers)."""
    p = ctx.params
    symbol = ctx.symbol(required=False)
    kind = p.upper("incomeType")
    start, end, page = p.integer("startTime"), p.integer("endTime"), p.integer("page")
    limit = p.integer("limit")
    limit = 100 if limit is None else max(1, min(limit, MAX_INCOME))
    rows = [
        r
        for r in _income_rows(ctx.account)
        if (symbol is None or r["symbol"] == symbol)
        and (kind is None or r["incomeType"] == kind)
        and (start is None or r["time"] >= start)
        and (end is None or r["time"] <= end)
    ]
    if start is None and end is None:  # Binance: the most recent seven days' rows by default, oldest first
        rows = [r for r in rows if r["time"] >= ctx.venue.now() - 7 * render.DAY_MS]
    first = (max(page or 1, 1) - 1) * limit
    return rows[first : first + limit]


def _settings(account: Account, symbol: str) -> SymbolSettings:
    return account.settings.get(symbol) or SymbolSettings()  # read without creating the entry


async def symbol_config(ctx: Ctx) -> Any:
    symbol = ctx.symbol(required=False)
    specs = [ctx.venue.markets[symbol]] if symbol is not None else list(ctx.venue.markets.values())
    rows = []
    for spec in specs:
        cfg = _settings(ctx.account, spec.symbol)
        rows.append(
            {
                "symbol": spec.symbol,
                "marginType": cfg.margin_type,
                "isAutoAddMargin": False,  # a JSON bool (nautilus_trader's schema of the live venue); v2 has "false"
                "leverage": cfg.leverage,
                "maxNotionalValue": f"{spec.max_notional_for_leverage(cfg.leverage).normalize():f}",
            }
        )
    return rows


def _every_symbol(ctx: Ctx, metrics: AccountMetrics, symbol: str | None) -> list[tuple[MarketSpec, PositionMetrics]]:
    """v2 lists every symbol (flat ones with zeros), the held positions as the account metrics have them."""
    held = {(p.symbol, p.position_side): p for p in metrics.positions}
    sides = ("LONG", "SHORT") if ctx.account.dual_side_position else ("BOTH",)
    rows = []
    for spec in ctx.venue.markets.values():
        if symbol is not None and spec.symbol != symbol:
            continue
        for side in sides:
            p = held.get((spec.symbol, side))
            if p is None:
                flat = Position(spec.symbol, side)
                p = position_metrics(ctx.account, flat, spec, ctx.venue.marks[spec.symbol])
            rows.append((spec, p))
    return rows


async def position_risk_v2(ctx: Ctx) -> Any:
    symbol = ctx.symbol(required=False)
    metrics = ctx.venue.metrics(ctx.account)
    rows = []
    for spec, p in _every_symbol(ctx, metrics, symbol):
        rows.append(
            {
                "entryPrice": render.dec(p.entry_price, spec.price_precision),
                "breakEvenPrice": render.dec(break_even_price(p.amount, p.entry_price), spec.price_precision),
                "marginType": "isolated" if p.isolated else "cross",
                "isAutoAddMargin": "false",
                "isolatedMargin": render.money(p.isolated_wallet + p.unrealized_pnl) if p.isolated else "0.00000000",
                "leverage": str(p.leverage),
                "liquidationPrice": render.money(liquidation_price(metrics, p, spec)) if p.amount else "0",
                "markPrice": render.money(p.mark_price),
                "maxNotionalValue": f"{spec.max_notional_for_leverage(p.leverage).normalize():f}",
                "positionAmt": render.qty(spec, p.amount),
                "notional": render.money(p.notional),
                "isolatedWallet": render.money(p.isolated_wallet) if p.isolated else "0",
                "symbol": spec.symbol,
                "unRealizedProfit": render.money(p.unrealized_pnl),
                "positionSide": p.position_side,
                "updateTime": p.update_time,
            }
        )
    return rows


async def account_v2(ctx: Ctx) -> Any:
    """The v3 body plus v2's account flags, ``marginAvailable`` per asset and every symbol's position row."""
    metrics = ctx.venue.metrics(ctx.account)
    v3 = render.account_v3(metrics, ctx.venue.markets, ctx.account.update_time)
    head = {
        "feeTier": 0,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "tradeGroupId": -1,
        "updateTime": 0,  # Binance sends 0 here ("reserved"); the assets carry the real times
        "multiAssetsMargin": False,
    }
    assets = [{**asset, "marginAvailable": True} for asset in v3["assets"]]
    positions = [
        {
            "symbol": spec.symbol,
            "initialMargin": render.money(p.initial_margin),
            "maintMargin": render.money(p.maint_margin),
            "unrealizedProfit": render.money(p.unrealized_pnl),
            "positionInitialMargin": render.money(p.initial_margin),
            "openOrderInitialMargin": "0",
            "leverage": str(p.leverage),
            "isolated": p.isolated,
            "entryPrice": render.dec(p.entry_price, spec.price_precision),
            "breakEvenPrice": render.dec(break_even_price(p.amount, p.entry_price), spec.price_precision),
            "maxNotional": f"{spec.max_notional_for_leverage(p.leverage).normalize():f}",
            "bidNotional": "0",
            "askNotional": "0",
            "positionSide": p.position_side,
            "positionAmt": render.qty(spec, p.amount),
            "updateTime": p.update_time,
        }
        for spec, p in _every_symbol(ctx, metrics, None)
    ]
    totals = {k: v for k, v in v3.items() if k not in ("assets", "positions")}
    return {**head, **totals, "assets": assets, "positions": positions}


Kind = Literal["public", "signed"]
ROUTES: list[tuple[str, Kind, Any]] = [
    ("/fapi/v1/depth", "public", depth),
    ("/fapi/v1/ticker/bookTicker", "public", book_ticker),
    ("/fapi/v1/trades", "public", recent_trades),
    ("/fapi/v1/multiAssetsMargin", "signed", multi_assets_margin),
    ("/fapi/v1/income", "signed", income),
    ("/fapi/v1/symbolConfig", "signed", symbol_config),
    ("/fapi/v2/positionRisk", "signed", position_risk_v2),
    ("/fapi/v2/account", "signed", account_v2),
]
"""(path, kind, handler) of the GET routes above, registered by ``paper.app.create_app``."""
