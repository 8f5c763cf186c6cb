"""Binance USDⓈ-M error codes as the paper exchange returns them (``{"code": …, "msg": …}``)."""

from __future__ import annotations


class VenueError(Exception):
    """A request the venue rejects; rendered as ``{"code", "msg"}`` with ``http_status``."""

    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status


def invalid_api_key() -> VenueError:
    return VenueError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def bad_signature() -> VenueError:
    return VenueError(-1022, "Signature for this request is not valid.")


def timestamp_outside_window() -> VenueError:
    return VenueError(-1021, "Timestamp for this request is outside of the recvWindow.")


def timestamp_ahead() -> VenueError:
    return VenueError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def bad_recv_window() -> VenueError:
    return VenueError(-1131, "recvWindow must be less than 60000")


def mandatory(param: str) -> VenueError:
    return VenueError(-1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed.")


def either_mandatory(first: str, second: str) -> VenueError:
    return VenueError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


def not_required(param: str) -> VenueError:
    return VenueError(-1106, f"Parameter '{param}' sent when not required.")


def illegal_number(param: str) -> VenueError:
    return VenueError(
        -1100,
        f"Illegal characters found in parameter '{param}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
    )


def invalid_param(param: str) -> VenueError:
    return VenueError(-1130, f"Data sent for parameter '{param}' is not valid.")


def illegal_chars(param: str) -> VenueError:
    return VenueError(-1100, f"Illegal characters found in parameter '{param}'.")


def invalid_symbol() -> VenueError:
    return VenueError(-1121, "Invalid symbol.")


def invalid_interval() -> VenueError:
    return VenueError(-1120, "Invalid interval.")


def invalid_side() -> VenueError:
    return VenueError(-1117, "Invalid side.")


def invalid_order_type() -> VenueError:
    return VenueError(-1116, "Invalid orderType.")


def invalid_time_in_force() -> VenueError:
    return VenueError(-1115, "Invalid timeInForce.")


def precision_over_maximum() -> VenueError:
    return VenueError(-1111, "Precision is over the maximum defined for this asset.")


def order_does_not_exist() -> VenueError:
    return VenueError(-2013, "Order does not exist.")


def unknown_order() -> VenueError:
    return VenueError(-2011, "Unknown order sent.")


def margin_insufficient() -> VenueError:
    return VenueError(-2019, "Margin is insufficient.")


def would_immediately_trigger() -> VenueError:
    return VenueError(-2021, "Order would immediately trigger.")


def reduce_only_rejected() -> VenueError:
    return VenueError(-2022, "ReduceOnly Order is rejected.")


def qty_not_positive() -> VenueError:
    return VenueError(-4003, "Quantity less than or equal to zero.")


def lot_size(filter_type: str) -> VenueError:
    """Quantity below minQty, above maxQty or off the step of LOT_SIZE (limit) / MARKET_LOT_SIZE (market)."""
    return VenueError(-1013, f"Filter failure: {filter_type}")


def price_below_min() -> VenueError:
    return VenueError(-4013, "Price less than min price.")


def price_not_tick() -> VenueError:
    return VenueError(-4014, "Price not increased by tick size.")


def invalid_client_order_id() -> VenueError:
    return VenueError(-4015, "Client order id is not valid.")


def price_above_cap() -> VenueError:
    return VenueError(-4016, "Price is higher than mark price multiplier cap.")


def price_below_floor() -> VenueError:
    return VenueError(-4024, "Price is lower than mark price multiplier floor.")


def invalid_leverage(leverage: str) -> VenueError:
    return VenueError(-4028, f"Leverage {leverage} is not valid")


def margin_type_unchanged() -> VenueError:
    return VenueError(-4046, "No need to change margin type.")


def margin_type_open_orders() -> VenueError:
    return VenueError(-4047, "Margin type cannot be changed if there exists open orders.")


def margin_type_position() -> VenueError:
    return VenueError(-4048, "Margin type cannot be changed if there exists position.")


def exceeds_leverage_limit() -> VenueError:
    return VenueError(-2027, "Exceeded the maximum allowable position at current leverage.")


def position_side_open_orders() -> VenueError:
    return VenueError(-4067, "Position side cannot be changed if there exists open orders.")


def position_side_position() -> VenueError:
    return VenueError(-4068, "Position side cannot be changed if there exists position.")


def percent_price_market() -> VenueError:
    return VenueError(-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit.")


def position_side_unchanged() -> VenueError:
    return VenueError(-4059, "No need to change position side.")


def position_side_mismatch() -> VenueError:
    return VenueError(-4061, "Order's position side does not match user's setting.")


def duplicate_client_order_id() -> VenueError:
    return VenueError(-4116, "ClientOrderId is duplicated.")


def use_algo_endpoint() -> VenueError:
    return VenueError(
        -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
    )


def close_position_invalid(order_type: str) -> VenueError:
    return VenueError(-4136, f"Target strategy invalid for orderType {order_type},closePosition true")


def min_notional(notional: str) -> VenueError:
    return VenueError(-4164, f"Order's notional must be no smaller than {notional} (unless you choose reduce only).")


def fok_not_fillable() -> VenueError:
    return VenueError(-5021, "Due to the order could not be filled immediately, the FOK order has been rejected.")


def post_only_rejected() -> VenueError:
    return VenueError(-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected.")


def max_stop_orders() -> VenueError:
    return VenueError(-4045, "Reach max stop order limit.")


def max_open_orders() -> VenueError:
    return VenueError(-2025, "Reach max open order limit.")


def unsupported(what: str) -> VenueError:
    """Paper-only refusal for features this venue does not simulate (Binance's generic unknown-error code)."""
    return VenueError(-1000, f"The paper exchange does not support {what}.")
