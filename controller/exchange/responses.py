"""Malformed exchange answers become ``ccxt.BadResponse`` naming the endpoint and what was wrong with it.

An answer cut off mid-way, a field missing or a value of the wrong type would otherwise surface as a bare
``KeyError``/``TypeError`` from deep inside a parser, or worse, read as zero (a missing position amount is not a
flat position, a null mark price is not a price of 0). ``BadResponse`` is a ``ccxt.BaseError``, so callers report it
like any other exchange failure.

Two layers: every answer is checked as it arrives, where its endpoint is certain (it must be JSON, and the fields
Warden relies on must be there with the right type); parse errors anywhere else in a gateway call are caught too,
naming the requests that call made (they may run concurrently, so which one is not always known).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import ccxt

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "an array"  # its text could be long, or look like JSON
    return repr(value)[:40]


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    try:
        return Decimal(str(value)).is_finite()
    except InvalidOperation:
        return False


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _id(value: Any) -> bool:
    return _text(value) or (isinstance(value, int) and not isinstance(value, bool))


_Check = Callable[[Any], bool]
_ORDER: dict[str, _Check] = {"clientOrderId": _text, "orderId": _id, "status": _text, "executedQty": _number}
_ALGO_ORDER: dict[str, _Check] = {"clientAlgoId": _text, "algoId": _id, "algoStatus": _text}
_POSITION: dict[str, _Check] = {"symbol": _text, "positionAmt": _number}
# What Warden reads from each observation route and cannot do without, per object of the answer.
REQUIRED_FIELDS: dict[str, dict[str, _Check]] = {
    "GET /fapi/v1/premiumIndex": {"symbol": _text, "markPrice": _number},
    "GET /fapi/v2/positionRisk": _POSITION,
    "GET /fapi/v3/positionRisk": _POSITION,
    "GET /fapi/v1/openOrders": _ORDER,
    "GET /fapi/v1/order": _ORDER,
    "GET /fapi/v1/openAlgoOrders": _ALGO_ORDER,
    "GET /fapi/v1/algoOrder": _ALGO_ORDER,
}
_KIND: dict[_Check, str] = {_number: "a number", _text: "a string", _id: "an id"}


def problem(endpoint: str, answer: Any) -> str | None:
    """What is wrong with a parsed JSON answer of ``endpoint`` (``None``: nothing Warden relies on)."""
    fields = REQUIRED_FIELDS.get(endpoint)
    if fields is None:
        return None
    for item in answer if isinstance(answer, list) else [answer]:
        if not isinstance(item, dict):
            return f"{_shown(item)} where an object was expected"
        for name, valid in fields.items():
            if name not in item:
                return f"field {name!r} is missing"
            if not valid(item[name]):
                return f"field {name!r} is {_shown(item[name])}, not {_KIND[valid]}"
    return None


# The endpoints requested within one reading_answers block, shared by reference with the tasks it starts (ccxt
# loads markets, and the gateway reads routes, in tasks of their own).
_requested: ContextVar[list[str] | None] = ContextVar("exchange_requests", default=None)


def check_answers(client: Any) -> None:
    """Check every answer ``client`` receives as it arrives; see the module docstring."""
    fetch = client.fetch

    async def checked(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        endpoint = f"{method} {urlsplit(url).path}"  # never the query: it carries the signature
        requested = _requested.get()
        if requested is not None:
            requested.append(endpoint)
        response = await fetch(url, method, headers, body)
        # ccxt hands an answer it could not parse as JSON on as its text.
        wrong = f"not valid JSON ({len(response)} characters)" if isinstance(response, str) and response else None
        wrong = wrong or problem(endpoint, response)
        if wrong is not None:
            raise ccxt.BadResponse(f"the answer to {endpoint} is malformed: {wrong}")
        return response

    client.fetch = checked


PARSE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError)
"""What parsing data of an unexpected shape raises."""


def explain(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"field {error.args[0]!r} is missing"
    if isinstance(error, InvalidOperation):
        return "a number field holds something that is not a number"
    return str(error) or type(error).__name__


@contextmanager
def reading_answers() -> Iterator[None]:
    """Parse errors raised in the block become ``BadResponse`` naming the requests the block made."""
    requested: list[str] = []
    token = _requested.set(requested)
    try:
        yield
    except PARSE_ERRORS as error:
        candidates = sorted(set(requested)) or ["an exchange request"]
        which = candidates[0] if len(candidates) == 1 else f"one of {', '.join(candidates)}"
        raise ccxt.BadResponse(f"the answer to {which} is malformed: {explain(error)}") from error
    finally:
        _requested.reset(token)


def parses_answers(method: Callable[_P, Awaitable[_T]]) -> Callable[_P, Awaitable[_T]]:
    """:func:`reading_answers` around a whole coroutine method (e.g. one observation)."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        with reading_answers():
            return await method(*args, **kwargs)

    return wrapper
