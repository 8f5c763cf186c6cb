"""Reusable field types for the Warden API.

Money and quantities travel as decimal strings (never JSON numbers, which parse as floats) and are
``Decimal`` inside Warden.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DECIMAL_PATTERN = r"^[0-9]{1,16}(\.[0-9]{1,18})?$"
SIGNED_DECIMAL_PATTERN = r"^-?[0-9]{1,16}(\.[0-9]{1,18})?$"


def _decimal_from_string(value: Any) -> Any:
    # The API server guarantees strings; refusing numbers here keeps floats out of pure-unit callers too.
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError(f'must be a decimal string such as "0.01", not {type(value).__name__}')
    return Decimal(value)


PositiveDecimal = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 40,
            "pattern": DECIMAL_PATTERN,
            "x-kubernetes-validations": [
                {
                    "rule": "self.matches('^[0-9]{1,16}(\\\\.[0-9]{1,18})?$')",
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
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "maxLength": 40, "pattern": SIGNED_DECIMAL_PATTERN}),
]
"""A decimal string written by the controller; may be negative (a realized loss)."""
