"""Which adapter serves each ``ExchangeAccount.spec.exchange``: its gateway class, how its ccxt client is built,
and how that client is pointed at another host (a paper venue, a demo or testnet host)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.exchange import binanceusdm, bybit
from controller.exchange.gateway import VenueGateway


@dataclass(frozen=True)
class Venue:
    gateway: type[VenueGateway]
    make_client: Callable[..., Any]
    """(api_key, secret, headers, *, pro) -> an async ccxt client (ccxt.pro if ``pro``)."""
    point_at: Callable[[Any, str, str], None]
    """(client, REST root, websocket root): replace every API host of the client."""
    websocket_root: Callable[[str], str]
    """The websocket root that goes with a REST base URL."""


def _same_host(root: str) -> str:
    return root.replace("http://", "ws://", 1).replace("https://", "wss://", 1)


VENUES: dict[str, Venue] = {
    "binanceusdm": Venue(binanceusdm.BinanceUsdm, binanceusdm.make_client, binanceusdm.point_at, _same_host),
    "bybit": Venue(bybit.Bybit, bybit.make_client, bybit.point_at, bybit.websocket_root(_same_host)),
}
