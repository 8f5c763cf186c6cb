"""The read routes other trading systems need (``paper.peer_routes``): Binance's shapes, what real ccxt parses of
them over HTTP, and Binance's request weights. The recorded ccxt requests to them are replayed by
test_conformance.py (part 3) like every other served route."""

from __future__ import annotations

from typing import Any

import pytest

from paper.ratelimit import request_weight
from tests.paper.conftest import ExchangeFactory, PaperServer
from tests.paper.test_conformance import _is_stringified, _recorded, _signed, shape_diff

BTC = "BTC/USDT:USDT"
KEY, SECRET = "peer-key", "peer-secret"

# Binance's documented examples (Order Book, Symbol Order Book Ticker, Recent Trades List, Get Current Multi-Assets
# Mode, Get Income History, Symbol Configuration, Position Information V2, Account Information V2's position row).
# symbolConfig's isAutoAddMargin: the docs print "false"; nautilus_trader, which runs against the live venue, requires
# a JSON bool, so the live venue sends one.
DOCUMENTED: dict[str, Any] = {
    "depth": {
        "lastUpdateId": 1027024,
        "E": 1589436922972,
        "T": 1589436922959,
        "bids": [["4.00000000", "431.00000000"]],
        "asks": [["4.00000200", "12.00000000"]],
    },
    "book_ticker": {
        "symbol": "BTCUSDT",
        "bidPrice": "4.00000000",
        "bidQty": "431.00000000",
        "askPrice": "4.00000200",
        "askQty": "9.00000000",
        "time": 1589437530011,
        "lastUpdateId": 1027024,
    },
    "trades": [
        {"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.00", "time": 1499865549590}
        | {"isBuyerMaker": True}
    ],
    "multi_assets": {"multiAssetsMargin": True},
    "income": [
        {"symbol": "", "incomeType": "TRANSFER", "income": "-0.37500000", "asset": "USDT", "info": "TRANSFER"}
        | {"time": 1570608000000, "tranId": 9689322392, "tradeId": ""}
    ],
    "symbol_config": [
        {"symbol": "BTCUSDT", "marginType": "CROSSED", "isAutoAddMargin": False, "leverage": 21}
        | {"maxNotionalValue": "1000000"}
    ],
    "position_risk_v2": [
        {
            "entryPrice": "0.00000",
            "breakEvenPrice": "0.0",
            "marginType": "isolated",
            "isAutoAddMargin": "false",
            "isolatedMargin": "0.00000000",
            "leverage": "10",
            "liquidationPrice": "0",
            "markPrice": "6679.50671178",
            "maxNotionalValue": "20000000",
            "positionAmt": "0.000",
            "notional": "0",
            "isolatedWallet": "0",
            "symbol": "BTCUSDT",
            "unRealizedProfit": "0.00000000",
            "positionSide": "BOTH",
            "updateTime": 0,
        }
    ],
    "account_v2_position": {
        "symbol": "BTCUSDT",
        "initialMargin": "0",
        "maintMargin": "0",
        "unrealizedProfit": "0.00000000",
        "positionInitialMargin": "0",
        "openOrderInitialMargin": "0",
        "leverage": "100",
        "isolated": True,
        "entryPrice": "0.00000",
        "breakEvenPrice": "0.0",
        "maxNotional": "250000",
        "bidNotional": "0",
        "askNotional": "0",
        "positionSide": "BOTH",
        "positionAmt": "0",
        "updateTime": 0,
    },
}


@pytest.fixture
async def bodies(paper: PaperServer) -> dict[str, Any]:
    """The raw answers for an account that bought BTC, sold part of it at a profit, and holds the rest."""
    await paper.create_account(KEY, SECRET, "10000")

    async def call(path: str, **params: str) -> Any:
        status, body = await _signed(paper, KEY, SECRET, "GET", path, params)
        assert status == 200, (path, body)
        return body

    for side, qty in (("BUY", "0.020"), ("SELL", "0.010")):
        order = {"symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": qty}
        assert (await _signed(paper, KEY, SECRET, "POST", "/fapi/v1/order", order))[0] == 200
        await paper.set_price("BTCUSDT", "66000")
    b: dict[str, Any] = {
        "multi_assets": await call("/fapi/v1/multiAssetsMargin"),
        "income": await call("/fapi/v1/income"),
        "funding": await call("/fapi/v1/income", incomeType="FUNDING_FEE", symbol="BTCUSDT"),
        "symbol_config": await call("/fapi/v1/symbolConfig"),
        "symbol_config_btc": await call("/fapi/v1/symbolConfig", symbol="BTCUSDT"),
        "position_risk_v2": await call("/fapi/v2/positionRisk"),
        "account_v2": await call("/fapi/v2/account"),
    }
    for name, path in (
        ("depth", "/fapi/v1/depth?symbol=BTCUSDT&limit=5"),
        ("book_ticker", "/fapi/v1/ticker/bookTicker?symbol=BTCUSDT"),
        ("book_tickers", "/fapi/v1/ticker/bookTicker"),
        ("trades", "/fapi/v1/trades?symbol=BTCUSDT"),
    ):
        async with paper.http.get(f"{paper.base_url}{path}") as resp:
            assert resp.status == 200
            b[name] = await resp.json()
    return b


@pytest.mark.parametrize(
    ("answer", "documented"),
    [
        ("depth", "depth"),
        ("book_ticker", "book_ticker"),
        ("book_tickers", "book_ticker"),
        ("trades", "trades"),
        ("multi_assets", "multi_assets"),
        ("income", "income"),
        ("symbol_config", "symbol_config"),
        ("symbol_config_btc", "symbol_config"),
        ("position_risk_v2", "position_risk_v2"),
    ],
)
def test_response_has_the_documented_binance_shape(bodies: dict[str, Any], answer: str, documented: str) -> None:
    expected, actual = DOCUMENTED[documented], bodies[answer]
    if isinstance(actual, list) and isinstance(expected, dict):
        expected = [expected]
    assert shape_diff(expected, actual) == []


@pytest.mark.parametrize(
    ("answer", "method", "description"),
    [
        ("depth", "fetchOrderBook", "swap orderbook"),
        ("income", "fetchFundingHistory", "fetch portfolio margin funding history"),
    ],
)
def test_response_has_the_recorded_binance_shape(
    bodies: dict[str, Any], answer: str, method: str, description: str
) -> None:
    recorded = _recorded(method, description)
    assert shape_diff(recorded, bodies[answer], stringified=_is_stringified(recorded)) == []


def test_account_v2_is_the_recorded_balance_with_every_symbol(bodies: dict[str, Any]) -> None:
    """ccxt recorded fetchBalance's v2 body with no position rows; the rows follow Binance's documented example."""
    recorded = _recorded("fetchBalance", "Linear swap balance")
    body = bodies["account_v2"]
    assert shape_diff({**recorded, "positions": None}, {**body, "positions": None}, stringified=True) == []
    assert shape_diff([DOCUMENTED["account_v2_position"]], body["positions"]) == []
    assert {row["symbol"] for row in body["positions"]} >= {"BTCUSDT", "ETHUSDT"}
    btc = next(row for row in body["positions"] if row["symbol"] == "BTCUSDT")
    assert (btc["positionAmt"], btc["leverage"], btc["isolated"]) == ("0.010", "20", False)
    assert (body["feeTier"], body["canTrade"], body["canDeposit"], body["canWithdraw"]) == (0, True, True, True)


def test_answers_follow_the_venue(bodies: dict[str, Any]) -> None:
    assert bodies["multi_assets"] == {"multiAssetsMargin": False}
    assert bodies["funding"] == []  # the paper books no funding
    kinds = sorted({row["incomeType"] for row in bodies["income"]})
    assert kinds == ["COMMISSION", "REALIZED_PNL"]
    assert [r["income"] for r in bodies["income"] if r["incomeType"] == "REALIZED_PNL"] == ["10.00000000"]
    assert bodies["depth"]["bids"] == [["66000.00", "1.000"]] or float(bodies["depth"]["bids"][0][0]) == 66000.0
    assert float(bodies["depth"]["asks"][0][0]) == 66000.1
    assert [t["qty"] for t in bodies["trades"]] == ["0.020", "0.010"]
    assert [t["isBuyerMaker"] for t in bodies["trades"]] == [False, True]
    btc = next(row for row in bodies["position_risk_v2"] if row["symbol"] == "BTCUSDT")
    assert (btc["positionAmt"], btc["marginType"], btc["leverage"]) == ("0.010", "cross", "20")
    assert len(bodies["position_risk_v2"]) == len(bodies["symbol_config"])


async def test_ccxt_parses_them(make_client: ExchangeFactory, paper: PaperServer) -> None:
    """Real ccxt (``binanceusdm``, async) over HTTP: the unified methods that read these routes."""
    x = await make_client()
    await x.load_markets()
    book = await x.fetch_order_book(BTC, 5)
    assert book["bids"][0][0] < book["asks"][0][0] and book["bids"][0][1] > 0
    bid_ask = (await x.fetch_bids_asks([BTC]))[BTC]
    assert (bid_ask["bid"], bid_ask["ask"]) == (book["bids"][0][0], book["asks"][0][0])
    order = await x.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "closed"
    trades = await x.fetch_trades(BTC, None, None, {"method": "fapiPublicGetTrades"})  # not aggTrades
    assert [(t["side"], t["amount"]) for t in trades][-1:] == [("buy", 0.01)]
    assert await x.fetch_funding_history(BTC) == []
    ledger = await x.fetch_ledger("USDT")
    assert [(e["type"], e["amount"]) for e in ledger] == [("commission", pytest.approx(0.325))]
    assert (await x.fetch_leverage(BTC))["longLeverage"] == 20
    assert (await x.fetch_margin_mode(BTC))["marginMode"] == "cross"
    held = await x.fetch_account_positions([BTC])
    assert [(p["symbol"], p["contracts"]) for p in held if p["contracts"]] == [(BTC, 0.01)]
    v2 = await x.fetch_positions([BTC], {"useV2": True})
    assert [(p["symbol"], p["contracts"], p["side"]) for p in v2] == [(BTC, 0.01, "long")]
    assert await x.fapiPrivateGetMultiAssetsMargin() == {"multiAssetsMargin": False}
    assert len(await x.fapiPrivateV2GetAccount()) > 0


def test_binance_weights() -> None:
    assert [request_weight("GET", "/fapi/v1/depth", {"limit": n}) for n in ("5", "50", "100", "500", "1000")] == [
        2,
        2,
        5,
        10,
        20,
    ]
    assert request_weight("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT"}) == 10
    assert request_weight("GET", "/fapi/v1/ticker/bookTicker", {"symbol": "BTCUSDT"}) == 2
    assert request_weight("GET", "/fapi/v1/ticker/bookTicker", {}) == 5
    for path, weight in (
        ("/fapi/v1/trades", 5),
        ("/fapi/v1/multiAssetsMargin", 30),
        ("/fapi/v1/income", 30),
        ("/fapi/v1/symbolConfig", 5),
        ("/fapi/v2/positionRisk", 5),
        ("/fapi/v2/account", 5),
    ):
        assert request_weight("GET", path, {}) == weight, path
