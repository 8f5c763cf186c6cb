"""Construct a ccxt ``binanceusdm`` client, optionally pointed at a non-production base URL.

Wire facts behind each option: ``shared/reference/binance-usdm-wire.md`` §2.3 and §6.
"""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from controller.exchange.responses import check_answers

SUPPORTED_EXCHANGES = frozenset({"binanceusdm"})


def make_exchange(
    exchange_id: str,
    api_key: str,
    secret: str,
    base_url: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    pro: bool = False,
) -> Any:
    """Return an async ccxt client (ccxt.pro, with websockets, if ``pro``). ``base_url`` (e.g. the paper exchange)
    replaces every API host, the websocket one included."""
    if exchange_id not in SUPPORTED_EXCHANGES:
        raise ValueError(f"unsupported exchange {exchange_id!r}; supported: {sorted(SUPPORTED_EXCHANGES)}")
    exchange = (ccxt_pro if pro else ccxt_async).binanceusdm(
        {
            "apiKey": api_key,
            "secret": secret,
            # Warden budgets request weight itself (one paced read per account, controller/handlers/observer.py);
            # ccxt's own throttle would hold every call for rateLimit x cost (250 ms for a positions read) and
            # queue a stop behind reads. The exchange's 429 stays the backstop (a retry with back-off).
            "enableRateLimit": False,
            "headers": dict(headers or {}),
            "options": {
                # load_markets() must touch only /fapi/v1/exchangeInfo, never the spot sapi hosts.
                "fetchCurrencies": False,
                "fetchMarkets": {"types": ["linear"]},
                "adjustForTimeDifference": False,
                "warnOnFetchOpenOrdersWithoutSymbol": False,
                "fetchOpenOrders": {"warnWithoutSymbol": False},
            },
        }
    )
    check_answers(exchange)
    if base_url is not None:
        root = base_url.rstrip("/")
        ws_root = root.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        # Replace (not merge) the URL table: any API group left out raises NotSupported client-side
        # instead of reaching a real host.
        exchange.urls["api"] = {
            "fapiPublic": f"{root}/fapi/v1",
            "fapiPublicV2": f"{root}/fapi/v2",
            "fapiPublicV3": f"{root}/fapi/v3",
            "fapiPrivate": f"{root}/fapi/v1",
            "fapiPrivateV2": f"{root}/fapi/v2",
            "fapiPrivateV3": f"{root}/fapi/v3",
            "fapiData": f"{root}/futures/data",
            "ws": {"linear": f"{ws_root}/ws", "future": f"{ws_root}/ws"},
        }
        # ccxt applies the USDⓈ-M error map only for production hosts; without this merge, codes such as
        # -2019 or -2022 arrive as a bare ExchangeError and lose their retry/no-retry meaning.
        exchange.exceptions["exact"] = {
            **exchange.exceptions["exact"],
            **exchange.exceptions["linear"]["exact"],
        }
    return exchange
