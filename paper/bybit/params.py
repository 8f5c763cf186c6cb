"""Typed access to a Bybit request's parameters: the query string of a GET, the JSON object of a POST (where ccxt
sends numbers as strings, flags as JSON booleans and ``positionIdx``/``triggerDirection``/``mode`` as integers)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from paper.bybit import errors

_DECIMAL = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_E = TypeVar("_E", bound=StrEnum)


class BybitParams:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise errors.missing(name)
            return None
        if isinstance(value, bool | dict | list):
            raise errors.invalid(name)
        return str(value)

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not _DECIMAL.match(value):
            raise errors.invalid(name)
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex already rules this out
            raise errors.invalid(name) from None

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        if not value.lstrip("-").isdigit():
            raise errors.invalid(name)
        return int(value)

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if value is None or isinstance(value, bool):
            return bool(value)
        if str(value).lower() not in ("true", "false"):
            raise errors.invalid(name)
        return str(value).lower() == "true"

    def choice(self, name: str, vocabulary: type[_E], *, default: _E | None = None) -> _E | None:
        value = self.text(name)
        if value is None:
            return default
        try:
            return vocabulary(value)
        except ValueError:
            raise errors.invalid(name) from None

    def limit(self, default: int, most: int) -> int:
        value = self.integer("limit")
        return default if value is None else max(1, min(value, most))
