"""Bybit V5 retCodes as the paper's Bybit front returns them, in the ``retCode`` envelope (HTTP 200 unless noted),
and the translation of the engine's (Binance-coded) refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paper.errors import VenueError


class BybitError(VenueError):
    """A refused Bybit request: ``retCode``/``retMsg`` (``code``/``msg``), optionally with a ``result`` body."""

    def __init__(self, code: int, msg: str, http_status: int = 200, result: dict[str, Any] | None = None) -> None:
        super().__init__(code, msg, http_status)
        self.result = result or {}


def params_error(detail: str) -> BybitError:
    return BybitError(10001, f"params error: {detail}")


def missing(param: str) -> BybitError:
    return params_error(f"{param} is required")


def invalid(param: str) -> BybitError:
    return params_error(f"{param} invalid")


def bad_symbol() -> BybitError:
    return BybitError(10001, "Not supported symbols")


def position_idx_mismatch() -> BybitError:
    return BybitError(10001, "position idx not match position mode")


def timestamp_window(timestamp: int, server: int, window: int) -> BybitError:
    return BybitError(
        10002,
        "invalid request, please check your server timestamp or recv_window param. "
        f"req_timestamp[{timestamp}],server_timestamp[{server}],recv_window[{window}]",
    )


def invalid_api_key() -> BybitError:
    return BybitError(10003, "API key is invalid.", 401)


def bad_signature(origin: str) -> BybitError:
    return BybitError(10004, f"error sign! origin_string[{origin}]", 401)


def too_many_visits() -> BybitError:
    return BybitError(10006, "Too many visits!")


def route_not_found() -> BybitError:
    return BybitError(10017, "route not found", 404)


def order_not_found() -> BybitError:
    return BybitError(110001, "order not exists or too late to cancel")


def insufficient_margin() -> BybitError:
    return BybitError(110007, "ab not enough for new order")


def too_many_conditional() -> BybitError:
    return BybitError(110009, "The number of stop orders exceeds maximum limit allowed")


def reduce_only_nothing() -> BybitError:
    return BybitError(110017, "current position is zero, cannot fix reduce-only order qty")


def too_many_active() -> BybitError:
    return BybitError(110020, "not allowed to have more than 500 active orders")


def position_exists() -> BybitError:
    return BybitError(110024, "You have an existing position, so position mode cannot be switched")


def position_mode_unchanged() -> BybitError:
    return BybitError(110025, "Position mode is not modified")


def margin_mode_unchanged() -> BybitError:
    return BybitError(110026, "Cross/isolated margin mode is not modified")


def open_orders_exist() -> BybitError:
    return BybitError(110028, "Open orders exist, so you cannot change position mode")


def leverage_unchanged() -> BybitError:
    return BybitError(110043, "leverage not modified")


def duplicate_link_id() -> BybitError:
    return BybitError(110072, "OrderLinkedID is duplicate")


def position_limit() -> BybitError:
    return BybitError(110090, "Order would exceed your position limit at current leverage")


def trigger_crossed(rising: bool, trigger: str, current: str) -> BybitError:
    if rising:
        return BybitError(110092, f"expect Rising, but trigger_price[{trigger}] <= current[{current}]")
    return BybitError(110093, f"expect Falling, but trigger_price[{trigger}] >= current[{current}]")


def below_min_notional(minimum: str) -> BybitError:
    return BybitError(110094, f"Order value does not meet minimum order value {minimum}USDT")


def margin_mode_failed(reason_code: str, reason: str) -> BybitError:
    return BybitError(
        3400045, "Set margin mode failed", result={"reasons": [{"reasonCode": reason_code, "reasonMsg": reason}]}
    )


# The engine's and the shared Binance front's refusals that a Bybit request can meet, as Bybit words them.
_TRANSLATED: dict[int, Callable[[], BybitError]] = {
    -1121: bad_symbol,
    -2015: invalid_api_key,
    -2019: insufficient_margin,
    -2027: position_limit,
    -4028: lambda: params_error("leverage invalid"),
    -4059: position_mode_unchanged,
    -4067: open_orders_exist,
    -4068: position_exists,
}


def translate(exc: VenueError) -> BybitError:
    """``exc`` as Bybit says it (unknown engine refusals: a parameter error with the engine's message)."""
    if isinstance(exc, BybitError):
        return exc
    factory = _TRANSLATED.get(exc.code)
    return factory() if factory is not None else params_error(exc.msg)
