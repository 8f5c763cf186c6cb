"""Typed access to Binance request parameters (query string + form body), with Binance's error codes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from paper import errors

_DECIMAL = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_INT = re.compile(r"^-?[0-9]{1,20}$")


class Params:
    """Request parameters by name; ``ci`` lookups ignore the case of the name (``algoid`` = ``algoId``).

    The refusals are Binance's; another venue's parameters override the three ``_missing``/``_illegal``/``_invalid``.
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._lower = {k.lower(): v for k, v in self._values.items()}

    @staticmethod
    def _missing(name: str) -> errors.VenueError:
        return errors.mandatory(name)

    @staticmethod
    def _illegal(name: str, *, number: bool) -> errors.VenueError:
        return errors.illegal_number(name) if number else errors.illegal_chars(name)

    @staticmethod
    def _invalid(name: str) -> errors.VenueError:
        return errors.invalid_param(name)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def raw(self) -> dict[str, str]:
        return dict(self._values)

    def text(self, name: str, *, required: bool = False, ci: bool = False) -> str | None:
        value = self._lower.get(name.lower()) if ci else self._values.get(name)
        if value is None or value == "":
            if required:
                raise self._missing(name)
            return None
        return value

    def upper(self, name: str, *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        return value.upper() if value is not None else None

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not _DECIMAL.match(value):
            raise self._illegal(name, number=True)
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex already rules this out
            raise self._illegal(name, number=True) from None

    def integer(self, name: str, *, required: bool = False, ci: bool = False) -> int | None:
        value = self.text(name, required=required, ci=ci)
        if value is None:
            return None
        if not _INT.match(value):
            raise self._illegal(name, number=False)
        return int(value)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise self._invalid(name)
        return lowered == "true"
