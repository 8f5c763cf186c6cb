"""The one rule for numbers a person reads (``controller.api.display``), as a table."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, getcontext, localcontext

import pytest
from ccxt.base.decimal_to_precision import ROUND, decimal_to_precision

from controller.api.display import at_step, money, places, plain
from controller.api.v1alpha1 import PositionStatus


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("65000.00000000", "65000"),
        ("6.5E+4", "65000"),
        ("0E-8", "0"),
        ("-0.00", "0"),
        ("0.01000", "0.01"),
        ("-12.50", "-12.5"),
        ("1E-7", "0.0000001"),
    ],
)
def test_plain_has_no_exponent_and_no_padding(value: str, shown: str) -> None:
    assert plain(Decimal(value)) == shown


@pytest.mark.parametrize(
    ("step", "decimals"),
    [("0.01", 2), ("0.10", 1), ("0.001", 3), ("1", 0), ("5", 0), ("10", 0), ("1E-8", 8), ("0.00010000", 4)],
)
def test_places_of_a_step(step: str, decimals: int) -> None:
    assert places(Decimal(step)) == decimals


@pytest.mark.parametrize(
    ("value", "step", "shown"),
    [
        ("3240.00000000", "0.01", "3240.00"),  # describe's High Water Mark, at ETH's tick
        ("3168", "0.01", "3168.00"),
        ("65000.1", "0.1", "65000.1"),
        ("65000.15", "0.1", "65000.2"),  # a computed average shows at the tick (half to even)
        ("65000.25", "0.1", "65000.2"),
        ("0.010", "0.001", "0.010"),  # an amount at the lot step
        ("1.5E+2", "1", "150"),
        ("0E-8", "0.01", "0.00"),
    ],
)
def test_at_step(value: str, step: str, shown: str) -> None:
    assert at_step(Decimal(value), Decimal(step)) == shown


@pytest.mark.parametrize(
    ("value", "quote", "shown"),
    [
        ("18.39000000", "USDT", "18.39"),
        ("0E-8", "USDT", "0.00"),
        ("-0.004", "USDT", "0.00"),  # never "-0.00"
        ("-3.175", "USDT", "-3.18"),
        ("0.0384", "USDC", "0.04"),
        ("1234567.891", "USDT", "1234567.89"),
        ("0.00012000", "BTC", "0.00012"),  # a quote without a display precision shows what it has
    ],
)
def test_money_at_the_quotes_precision(value: str, quote: str, shown: str) -> None:
    assert money(Decimal(value), quote) == shown


def test_stored_decimals_keep_their_value_without_padding_or_exponent() -> None:
    """Written to the API server: the same number, in a form the schema's pattern takes (``0E-8`` is refused)."""
    status = PositionStatus(realizedPnl=Decimal("0E-8"), averageEntryPrice=Decimal("3240.00000000"))
    dumped = status.model_dump(mode="json", exclude_none=True)
    assert (dumped["realizedPnl"], dumped["averageEntryPrice"]) == ("0", "3240")
    again = PositionStatus.model_validate(dumped)
    assert again.averageEntryPrice == Decimal("3240.00000000")
    assert again.realizedPnl == 0


def test_money_rounds_half_to_even_whatever_ccxt_left_in_the_decimal_context() -> None:
    """ccxt sets the thread's decimal context to half up whenever it rounds; a figure shown must not depend on
    whether ccxt ran before it in the same thread."""
    with localcontext():
        decimal_to_precision("1.25", ROUND, 1)  # what ccxt does on every amount_to_precision / price_to_precision
        assert getcontext().rounding == ROUND_HALF_UP  # the hazard is real: else this test proves nothing
        assert f"{Decimal('-0.325'):.2f}" == "-0.33"
        assert money(Decimal("-0.325"), "USDT") == "-0.32"
