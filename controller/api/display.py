"""How Warden shows a number to a person: one rule for printer columns, events, conditions, history and logs.

No exponent, ever; no trailing zeros beyond the precision the number has on its market (a price at the market's
tick, an amount at its lot step, a quote amount at the quote currency's display precision). Only what is shown
is rounded: stored values (status fields that decide, audit rows, NUMERIC columns) keep their full precision.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

QUOTE_PLACES: dict[str, int] = {"USDT": 2, "USDC": 2, "USD": 2, "FDUSD": 2, "BUSD": 2}
"""Display precision of quote currencies a trader counts in cents; any other quote shows what it has, plainly."""


def quote_of(symbol: str) -> str:
    """The quote currency of a ccxt unified symbol: ``ETH/USDT:USDT`` → ``USDT``."""
    return symbol.partition("/")[2].partition(":")[0]


def plain(value: Decimal) -> str:
    """A number as a trader writes it, with no precision imposed: ``65000``, not ``65000.00000000`` (exchange
    strings) or ``6.5E+4``; ``0``, not ``0E-8``."""
    if value.is_zero():
        return "0"
    return format(value.normalize(), "f")


def places(step: Decimal) -> int:
    """Decimal places of a tick or lot step: ``0.01`` → 2, ``0.10`` → 1, ``5`` → 0."""
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int), "a step is a finite number"
    return max(0, -exponent)


def fixed(value: Decimal, decimals: int) -> str:
    """``value`` with exactly ``decimals`` places (rounded half to even, as a display only); never ``-0.00``."""
    shown = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
    if shown.is_zero():
        shown = abs(shown)
    return format(shown, "f")


def at_step(value: Decimal, step: Decimal) -> str:
    """A price at the market's tick, or an amount at its lot step: ``3240.00000000`` with tick ``0.01`` →
    ``3240.00``."""
    return fixed(value, places(step))


def money(value: Decimal, quote: str) -> str:
    """A quote amount (PnL, fees, notional) at the quote's display precision: ``18.39000000`` USDT → ``18.39``."""
    decimals = QUOTE_PLACES.get(quote)
    return plain(value) if decimals is None else fixed(value, decimals)
