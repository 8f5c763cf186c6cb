"""Binance request signing checks: API key, HMAC-SHA256 over totalParams, timestamp within recvWindow."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl

from paper import errors

DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000
MAX_CLOCK_AHEAD_MS = 1000


def _split_signature(raw: str) -> tuple[str, str | None]:
    """Remove the ``signature`` pair from a raw urlencoded string; return ``(rest, signature)``."""
    if not raw:
        return raw, None
    kept: list[str] = []
    signature: str | None = None
    for pair in raw.split("&"):
        name, _, value = pair.partition("=")
        if name == "signature":
            signature = value
        else:
            kept.append(pair)
    return "&".join(kept), signature


def total_params(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """Binance's ``totalParams`` (query string concatenated with body) without the signature, and the signature."""
    query, sig_query = _split_signature(raw_query)
    body, sig_body = _split_signature(raw_body)
    return query + body, sig_query or sig_body


def parse_params(raw_query: str, raw_body: str) -> dict[str, str]:
    """Merge query and form body parameters (the query wins on a name present in both)."""
    values = dict(parse_qsl(raw_body, keep_blank_values=True))
    values.update(parse_qsl(raw_query, keep_blank_values=True))
    return values


def check_signature(secret: str, payload: str, signature: str | None) -> None:
    if signature is None:
        raise errors.mandatory("signature")
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise errors.bad_signature()


def check_timestamp(params: dict[str, str], now_ms: int) -> None:
    raw_ts = params.get("timestamp")
    if not raw_ts or not raw_ts.isdigit():
        raise errors.mandatory("timestamp")
    raw_window = params.get("recvWindow")
    window = DEFAULT_RECV_WINDOW
    if raw_window:
        if not raw_window.isdigit():
            raise errors.illegal_chars("recvWindow")
        window = int(raw_window)
        if window > MAX_RECV_WINDOW:
            raise errors.bad_recv_window()
    timestamp = int(raw_ts)
    if timestamp > now_ms + MAX_CLOCK_AHEAD_MS:
        raise errors.timestamp_ahead()
    if now_ms - timestamp > window:
        raise errors.timestamp_outside_window()
