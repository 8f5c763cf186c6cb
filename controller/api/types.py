"""Reusable field types for the Warden API.

Money and quantities travel as decimal strings (never JSON numbers, which parse as floats) and are
``Decimal`` inside Warden. Written out, they keep their value but not an exchange's padding or an exponent:
``3240.00000000`` is written ``3240``, ``0E-8`` ``0`` (which the schema's pattern would refuse).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from controller.api.display import plain

DECIMAL_PATTERN = r"^[0-9]{1,16}(\.[0-9]{1,18})?$"
SIGNED_DECIMAL_PATTERN = r"^-?[0-9]{1,16}(\.[0-9]{1,18})?$"


def _decimal_from_string(value: Any) -> Any:
    # The API server guarantees strings; refusing numbers here keeps floats out of pure-unit callers too.
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError(f'must be a decimal string such as "0.01", not {type(value).__name__}')
    return Decimal(value)


def cel_matches(pattern: str) -> str:
    """The CEL rule for a Python regular expression (CEL string literals need their backslashes doubled)."""
    escaped = pattern.replace("\\", "\\\\")
    return f"self.matches('{escaped}')"


def _plain_positive(value: Decimal) -> Decimal:
    """What the API server's pattern admits, for callers that skip it (a signal): above zero, at most 16 integer
    digits and 18 decimals; checked by exponent, so an absurd one costs nothing."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -18 or value <= 0 or value.adjusted() >= 16:
        raise ValueError('must be a plain decimal string such as "0.01": above zero, at most 18 decimals')
    return value


PositiveDecimal = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    AfterValidator(_plain_positive),
    PlainSerializer(plain, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 40,
            "pattern": DECIMAL_PATTERN,
            "x-kubernetes-validations": [
                {
                    "rule": cel_matches(DECIMAL_PATTERN),
                    "message": 'must be a plain decimal string such as "0.01": no sign, at most 18 decimals',
                },
                {"rule": "self.matches('[1-9]')", "message": "must be greater than zero"},
            ],
        }
    ),
]
"""A strictly positive decimal string: at most 16 integer digits and 18 decimals."""

SignedDecimal = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    PlainSerializer(plain, return_type=str),
    WithJsonSchema({"type": "string", "maxLength": 40, "pattern": SIGNED_DECIMAL_PATTERN}),
]
"""A decimal string written by the controller; may be negative (a realized loss)."""


def _within(pattern: str, message: str) -> AfterValidator:
    def check(value: Decimal) -> Decimal:
        # The exponent first: writing out an absurd one (1e999999999) would take a gigabyte.
        if not value.is_finite() or abs(value.adjusted()) > 40:
            raise ValueError(message)
        if re.fullmatch(pattern, format(value, "f")) is None or value <= 0:
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _bounded_schema(pattern: str, message: str) -> WithJsonSchema:
    """The range is expressed by the pattern, so the API server and pydantic refuse the same strings."""
    return WithJsonSchema(
        {
            "type": "string",
            "maxLength": 24,
            "x-kubernetes-validations": [
                {"rule": cel_matches(pattern), "message": message},
                {"rule": "self.matches('[1-9]')", "message": "must be greater than zero"},
            ],
        }
    )


@dataclass(frozen=True)
class Matching:
    """A string of at most ``max_length`` that must match ``pattern``, refused with ``message`` by pydantic and, as a
    CEL rule, by the API server (a schema ``pattern`` would only say "should match '^...$'")."""

    pattern: str
    message: str
    max_length: int

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(
            self._check, core_schema.str_schema(max_length=self.max_length)
        )

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        rule = {"rule": cel_matches(self.pattern), "message": self.message}
        return {"type": "string", "maxLength": self.max_length, "x-kubernetes-validations": [rule]}

    def _check(self, value: str) -> str:
        if re.fullmatch(self.pattern, value) is None:
            raise ValueError(self.message)
        return value


SYMBOL_PATTERN = r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}:[A-Z0-9]{1,20}$"
SYMBOL_MESSAGE = 'must be a ccxt unified perpetual symbol in capitals, BASE/QUOTE:SETTLE, such as "BTC/USDT:USDT"'
Symbol = Annotated[str, Matching(SYMBOL_PATTERN, SYMBOL_MESSAGE, 64)]
"""A ccxt unified symbol of a perpetual swap, e.g. ``BTC/USDT:USDT``."""

BASE_URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
BASE_URL_MESSAGE = 'must be an http:// or https:// URL such as "https://fapi.binance.com"'
BaseUrl = Annotated[str, Matching(BASE_URL_PATTERN, BASE_URL_MESSAGE, 2048)]
"""An API root URL."""


PERCENT_PATTERN = r"^[0-9]{1,2}(\.[0-9]{1,4})?$"
PERCENT_MESSAGE = 'must be a percentage above 0 and below 100 with at most 4 decimals, such as "1.5"'
Percent = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    _within(PERCENT_PATTERN, PERCENT_MESSAGE),
    PlainSerializer(str, return_type=str),
    _bounded_schema(PERCENT_PATTERN, PERCENT_MESSAGE),
]
"""A percentage in (0, 100), e.g. a stop 2 % from the entry."""

FRACTION_PATTERN = r"^(0\.[0-9]{1,6}|1|1\.0{1,6})$"
FRACTION_MESSAGE = 'must be a fraction above 0 and at most 1 with at most 6 decimals, such as "0.5"'
Fraction = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    _within(FRACTION_PATTERN, FRACTION_MESSAGE),
    PlainSerializer(str, return_type=str),
    _bounded_schema(FRACTION_PATTERN, FRACTION_MESSAGE),
]
"""A share of the filled amount in (0, 1]."""

CALLBACK_PATTERN = r"^(0\.[1-9]|[1-9](\.[0-9])?|10(\.0)?)$"
CALLBACK_MESSAGE = 'must be between 0.1 and 10 with one decimal, such as "1.5" (Binance callbackRate)'
CallbackPercent = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    _within(CALLBACK_PATTERN, CALLBACK_MESSAGE),
    PlainSerializer(str, return_type=str),
    _bounded_schema(CALLBACK_PATTERN, CALLBACK_MESSAGE),
]
"""A trailing stop's distance from the best price, in percent, with Binance's range and precision."""

DURATION_PATTERN = r"^([0-9]{1,6}[smhd]){1,4}$"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    if re.fullmatch(DURATION_PATTERN, text) is None:
        raise ValueError(f'{text!r} is not a duration such as "90s", "15m", "2h" or "1h30m"')
    seconds = sum(int(n) * _DURATION_UNITS[unit] for n, unit in re.findall(r"([0-9]+)([smhd])", text))
    if seconds == 0:
        raise ValueError("a duration must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in reversed(_DURATION_UNITS.items()):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _duration_from_string(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f'must be a duration string such as "15m", not {type(value).__name__}')
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration_from_string),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 32,
            "x-kubernetes-validations": [
                {
                    "rule": f"self.matches('{DURATION_PATTERN}') && self.matches('[1-9]')",
                    "message": 'must be a duration such as "90s", "15m", "2h" or "1h30m" (units s, m, h, d)',
                }
            ],
        }
    ),
]
"""A positive duration written like "90s", "15m", "2h" or "1h30m"."""
