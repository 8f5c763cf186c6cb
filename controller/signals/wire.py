"""A signal as it arrives and the Position it makes. Pure: no I/O, no clock (``now`` is an argument).

Money stays exact: JSON numbers are read as decimal text (``parse_float``/``parse_int``), never as floats, and become
the decimal strings a Position carries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controller.api.v1alpha1 import (
    GROUP,
    VERSION,
    DesiredState,
    EntryType,
    PositionSpec,
    Side,
    SignalSourceSpec,
    TakeProfit,
)
from controller.api.vocabulary import SignalReason

MAX_BODY = 16 * 1024
SIGNATURE_HEADER = "X-Warden-Signature"
SOURCE_LABEL = f"{GROUP}/signal-source"
SIGNAL_ANNOTATION = f"{GROUP}/signal"
_SIZES = ("amount", "notional", "risk")


class Refusal(Exception):
    """A signal that is answered with an error: why (the audit and metric reason) and what the sender reads."""

    def __init__(self, reason: SignalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SignalAction(StrEnum):
    OPEN = "open"
    CLOSE = "close"


class Signal(BaseModel):
    """The body of ``POST /v1/signals/{namespace}/{source}``; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str | None = Field(default=None, max_length=1024, repr=False)
    id: str | None = Field(default=None, min_length=1, max_length=128)
    time: datetime
    action: SignalAction = SignalAction.OPEN
    symbol: str = Field(min_length=1, max_length=64)
    side: str | None = Field(default=None, description="long | short | buy | sell (any case)")
    amount: str | None = None
    notional: str | None = None
    risk: str | None = None
    stopLoss: str | dict[str, Any] | None = None
    takeProfit: str | list[dict[str, Any]] | None = None
    trailingStop: dict[str, Any] | None = None
    entry: str | dict[str, Any] | None = None

    @field_validator("time", mode="before")
    @classmethod
    def _epoch(cls, value: Any) -> Any:
        # TradingView's {{timenow}} is ISO 8601; a number is epoch milliseconds (or seconds, if small).
        if isinstance(value, str) and re.fullmatch(r"[0-9]{9,13}", value):
            number = int(value)
            return datetime.fromtimestamp(number / 1000 if number > 10**11 else number, UTC)
        return value

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def position_side(self) -> Side | None:
        """The Position's side: ``buy`` opens a long; in a close, ``sell`` closes longs and ``buy`` shorts."""
        if self.side is None:
            return None
        word = self.side.strip().lower()
        closing = self.action is SignalAction.CLOSE
        sides = {"long": Side.LONG, "short": Side.SHORT, "buy": Side.SHORT if closing else Side.LONG}
        sides["sell"] = Side.LONG if closing else Side.SHORT
        if word not in sides:
            supported = '"long", "short", "buy", "sell"'
            raise Refusal(
                SignalReason.INVALID, f'side: Unsupported value: "{self.side}": supported values: {supported}'
            )
        return sides[word]


def _plain_number(text: str) -> str:
    """A JSON number as a plain decimal string (``1e3`` is ``1000``); never a float. An absurd exponent stays as
    written (and is refused as a size): ``1e999999999`` written out would be a gigabyte."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return format(number, "f") if abs(number.adjusted()) <= 40 else text


def parse(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, numbers as decimal strings."""
    try:
        data = json.loads(body, parse_float=_plain_number, parse_int=_plain_number)
    except (UnicodeDecodeError, ValueError) as error:
        raise Refusal(SignalReason.MALFORMED, f"the body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise Refusal(SignalReason.MALFORMED, "the body must be a JSON object")
    return data


def _field_errors(error: ValidationError, prefix: str = "") -> str:
    """pydantic's errors in the API server's words: ``spec.stopLoss: Required value``."""
    parts = []
    for item in error.errors():
        where = prefix + ".".join(str(part) for part in item["loc"]) if item["loc"] else prefix.rstrip(".") or "body"
        if item["type"] == "missing":
            parts.append(f"{where}: Required value")
        elif item["type"] == "extra_forbidden":
            parts.append(f'unknown field "{where}"')
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            parts.append(f"{where}: Invalid value: {message}")
    return "; ".join(parts)


def signal_from(data: dict[str, Any]) -> Signal:
    try:
        return Signal.model_validate(data)
    except ValidationError as error:
        raise Refusal(SignalReason.INVALID, _field_errors(error)) from None


def signed(body: bytes, token: str) -> str:
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def authentic(body: bytes, data: dict[str, Any], signature: str | None, token: str, *, signature_only: bool) -> bool:
    """Whether the signal carries the token (in the body) or a signature of the body made with it; constant time."""
    signature_ok = hmac.compare_digest((signature or "").encode(), signed(body, token).encode())
    if signature_only:
        # The token must not travel in the body of such a source, even beside a good signature.
        return signature_ok and "token" not in data
    given = data.get("token")
    token_ok = isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())
    return signature_ok or token_ok


def stale(signal: Signal, max_age: timedelta, now: datetime) -> bool:
    return now - signal.time > max_age


# --- symbols ----------------------------------------------------------------------------------------


def _compact(symbol: str) -> str:
    """``BINANCE:BTCUSDT.P``, ``BTCUSDT.P``, ``BTCUSDT``, ``BTC/USDT:USDT`` and ``BTCUSDTPERP`` are all ``BTCUSDT``."""
    text = symbol.strip().upper()
    if "/" not in text and ":" in text:
        text = text.split(":", 1)[1]  # TradingView's exchange prefix
    text = text.split(":", 1)[0]  # a ccxt symbol's settle currency
    text = text.removesuffix(".P").removesuffix("PERP")
    return text.replace("/", "").replace("-", "").replace("_", "")


def unified_symbol(symbol: str, allowed: list[str]) -> str:
    """The allowed ccxt unified symbol a pasted symbol names, or a refusal."""
    wanted = _compact(symbol)
    for candidate in allowed:
        if _compact(candidate) == wanted:
            return candidate
    raise Refusal(
        SignalReason.UNKNOWN_SYMBOL,
        f'symbol: Unsupported value: "{symbol}": this source allows {", ".join(allowed)}',
    )


# --- the Position -----------------------------------------------------------------------------------


def position_name(source: str, signal: Signal) -> str:
    """The same signal always names the same Position, so a resend or a replay creates nothing: from its id, or
    (without one) from its time, symbol, side and action."""
    key = signal.id or "|".join((signal.time.isoformat(), _compact(signal.symbol), signal.side or "", signal.action))
    digest = hashlib.sha256(f"{source}\0{key}".encode()).hexdigest()[:16]
    return f"{source[: 253 - 17]}-{digest}"


def source_label(source: str) -> str:
    """A label value (at most 63 characters) that names the source."""
    return source if len(source) <= 63 else "h" + hashlib.sha256(source.encode()).hexdigest()[:40]


def _model_fields(value: BaseModel | list[TakeProfit] | None) -> Any:
    if isinstance(value, list):
        return [t.model_dump(mode="json", exclude_none=True) for t in value]
    return None if value is None else value.model_dump(mode="json", exclude_none=True)


def _spec_fields(signal: Signal, source: SignalSourceSpec) -> dict[str, Any]:
    """The Position's trading fields: the signal's, else the source's template."""
    template = source.template
    sizes = {name: getattr(signal, name) for name in _SIZES if getattr(signal, name) is not None}
    if not sizes:
        sizes = {name: format(getattr(template, name), "f") for name in _SIZES if getattr(template, name) is not None}
    stop = {"price": signal.stopLoss} if isinstance(signal.stopLoss, str) else signal.stopLoss
    targets = (
        [{"price": signal.takeProfit, "portion": "1"}] if isinstance(signal.takeProfit, str) else signal.takeProfit
    )
    entry = {"type": EntryType.LIMIT.value, "price": signal.entry} if isinstance(signal.entry, str) else signal.entry
    fields: dict[str, Any] = {
        **sizes,
        "entry": entry,
        "stopLoss": stop if stop is not None else _model_fields(template.stopLoss),
        "takeProfit": targets if targets is not None else _model_fields(template.takeProfit),
        "trailingStop": signal.trailingStop or _model_fields(template.trailingStop),
        "leverage": template.leverage,
        "marginMode": template.marginMode.value if template.marginMode is not None else None,
    }
    return {key: value for key, value in fields.items() if value not in (None, [])}


@dataclass(frozen=True)
class Opening:
    """What an open signal makes: the Position's manifest and its spec, checked as the API server would."""

    manifest: dict[str, Any]
    spec: PositionSpec

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])


def opening(namespace: str, source_name: str, source: SignalSourceSpec, signal: Signal, symbol: str) -> Opening:
    side = signal.position_side()
    if side is None:
        raise Refusal(SignalReason.INVALID, "side: Required value")
    spec = {
        "accountRef": {"name": source.accountRef.name},
        "symbol": symbol,
        "side": side.value,
        **_spec_fields(signal, source),
        "state": DesiredState.OPEN.value,
    }
    try:
        checked = PositionSpec.model_validate(spec)
    except ValidationError as error:
        raise Refusal(SignalReason.INVALID, _field_errors(error, "spec.")) from None
    name = position_name(source_name, signal)
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Position",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {SOURCE_LABEL: source_label(source_name)},
            "annotations": {SIGNAL_ANNOTATION: signal.model_dump_json(exclude={"token"}, exclude_none=True)},
        },
        "spec": spec,
    }
    return Opening(manifest, checked)


def notional(spec: PositionSpec, price: Decimal | None) -> Decimal | None:
    """An upper bound of the Position's notional at ``price`` (None: it needs a price that is not known)."""
    if spec.notional is not None:
        return spec.notional
    stop = spec.stopLoss
    if spec.risk is not None and stop.percent is not None:
        return spec.risk * 100 / stop.percent
    reference = spec.entry.price or price
    if reference is None:
        return None
    if spec.amount is not None:
        return spec.amount * reference
    assert spec.risk is not None and stop.price is not None, "validated: exactly one size, one stop price"
    distance = abs(reference - stop.price)
    return spec.risk * reference / distance if distance else None


def over_limit(spec: PositionSpec, source: SignalSourceSpec, price: Decimal | None) -> str | None:
    """Why the signal is above the source's limit of one signal's notional, if it is."""
    limit = source.limits.maxNotional
    if limit is None:
        return None
    value = notional(spec, price)
    if value is None:
        return "limits.maxNotional: the signal's notional cannot be known (no price): refused"
    if value > limit:
        return f"notional: {format(value.normalize(), 'f')} is above this source's limits.maxNotional {limit}"
    return None


def needs_price(spec: PositionSpec, source: SignalSourceSpec) -> bool:
    """Whether checking the source's notional limit needs the venue's price (a market entry not sized by notional;
    a risk with a percent stop needs none)."""
    if source.limits.maxNotional is None or spec.notional is not None or spec.entry.price is not None:
        return False
    return spec.amount is not None or spec.stopLoss.percent is None
