"""What a venue can do, as data the planner decides from (never a venue's name).

Each exchange adapter (``controller.exchange.binanceusdm``, ``controller.exchange.bybit``) declares its own
``Capabilities``; the observation carries them to the planner. The defaults describe a venue without any of the
constraints below (order-level trailing, no cap on conditional orders, lookups that prove absence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from controller.api.v1alpha1 import PositionMode


class TrailingSupport(StrEnum):
    """How the venue trails a stop by itself."""

    ORDER = "Order"
    """A conditional order of its own, under a client id (Binance TRAILING_STOP_MARKET)."""
    POSITION = "Position"
    """An attribute of the exchange position, without a client id (Bybit ``trading-stop`` trailingStop): it belongs
    to whoever holds the symbol's side, so it is only Warden's to use where one Position owns that side."""
    NONE = "None"


class Scope(StrEnum):
    """What a venue limit or setting applies to."""

    ACCOUNT = "Account"
    SYMBOL = "Symbol"


class LookupRetention(StrEnum):
    """How long the venue answers a lookup of an ended order by its client id."""

    DURABLE = "Durable"
    """Long enough that "no such order" proves it never arrived (Binance)."""
    BOUNDED = "Bounded"
    """Only the latest few or the last day (Bybit: the latest 500 closed, cancelled ones 24 h): "not found" is weak
    evidence, and an order Warden may have sent is reported unknown rather than never sent."""


@dataclass(frozen=True)
class ConditionalCap:
    """The venue's limit on resting conditional orders (stops, take profits, trailing stops) of every owner."""

    limit: int
    scope: Scope


@dataclass(frozen=True)
class Capabilities:
    trailing: TrailingSupport = TrailingSupport.ORDER
    attached_stop: bool = False
    """A stop loss can ride on the entry order itself and is placed by the venue as the entry fills."""
    pre_armed_stop: bool = False
    """A stop can rest before the entry fills without a size: it closes whatever the symbol's side holds when it
    triggers, and expires if that is nothing (Binance ``closePosition``)."""
    conditional_cap: ConditionalCap | None = None
    position_modes: frozenset[PositionMode] = frozenset(PositionMode)
    margin_mode_scope: Scope = Scope.SYMBOL
    """Account: setting the margin mode for one Position's symbol sets it for every symbol of the account."""
    client_id_pattern: str = r"^[0-9A-Za-z_-]{1,36}$"
    lookup: LookupRetention = LookupRetention.DURABLE

    def fits_client_id(self, client_id: str) -> bool:
        return re.fullmatch(self.client_id_pattern, client_id) is not None
