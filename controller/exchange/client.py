"""Construct the ccxt client of a supported venue (``controller.exchange.registry``), optionally pointed at a
non-production base URL.

Wire facts behind each option: ``shared/reference/binance-usdm-wire.md`` §2.3 and §6,
``shared/reference/bybit-v5-wire.md`` §1.
"""

from __future__ import annotations

from typing import Any

from controller.exchange.registry import VENUES
from controller.exchange.responses import check_answers

SUPPORTED_EXCHANGES = frozenset(VENUES)


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
    venue = VENUES.get(exchange_id)
    if venue is None:
        raise ValueError(f"unsupported exchange {exchange_id!r}; supported: {sorted(SUPPORTED_EXCHANGES)}")
    exchange = venue.make_client(api_key, secret, dict(headers or {}), pro=pro)
    check_answers(exchange)
    if base_url is not None:
        root = base_url.rstrip("/")
        venue.point_at(exchange, root, venue.websocket_root(root))
    return exchange
