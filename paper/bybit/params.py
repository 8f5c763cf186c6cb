"""Typed access to a Bybit request's parameters: the query string of a GET, the JSON object of a POST (where ccxt
sends numbers as strings, flags as JSON booleans and ``positionIdx``/``triggerDirection``/``mode`` as integers), with
Bybit's refusal (10001) for what is missing or malformed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from paper.bybit import errors
from paper.errors import VenueError
from paper.params import Params

_E = TypeVar("_E", bound=StrEnum)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


class BybitParams(Params):
    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__({name: _text(value) for name, value in values.items() if value is not None})

    @staticmethod
    def _missing(name: str) -> VenueError:
        return errors.missing(name)

    @staticmethod
    def _illegal(name: str, *, number: bool) -> VenueError:
        return errors.invalid(name)

    @staticmethod
    def _invalid(name: str) -> VenueError:
        return errors.invalid(name)

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
