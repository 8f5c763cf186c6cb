"""ccxt ``bybit`` (sync, async_support, pro) configured for the paper exchange as the Bybit brief §1 says: the whole
``urls['api']`` replaced, linear swaps only, a unified account, no currency look-up."""

from __future__ import annotations

from typing import Any

import ccxt
import ccxt.async_support
import ccxt.pro

API_GROUPS = ("spot", "futures", "v2", "public", "private")


def bybit_client(base_url: str, api_key: str, secret: str, mode: str = "async") -> Any:
    """A ccxt bybit client of ``mode`` (sync, async or pro) on the paper server at ``base_url``."""
    module: Any = {"sync": ccxt, "async": ccxt.async_support, "pro": ccxt.pro}[mode]
    client = module.bybit({"apiKey": api_key, "secret": secret, "enableRateLimit": False})
    urls: dict[str, Any] = dict.fromkeys(API_GROUPS, base_url)
    if mode == "pro":
        ws = base_url.replace("http://", "ws://")
        private = f"{ws}/v5/private"
        urls["ws"] = {
            "public": {kind: f"{ws}/v5/public/{kind}" for kind in ("spot", "linear", "inverse", "option")},
            "private": {
                "spot": {"unified": private, "nonUnified": private},
                "contract": private,
                "usdc": private,
                "trade": f"{ws}/v5/trade",
            },
        }
    client.urls["api"] = urls
    client.options["defaultType"] = "swap"
    client.options["defaultSubType"] = "linear"
    client.options["fetchMarkets"] = {**client.options["fetchMarkets"], "types": ["linear"]}
    client.options["enableUnifiedAccount"] = True
    client.options["enableUnifiedMargin"] = False
    client.has["fetchCurrencies"] = False
    return client
