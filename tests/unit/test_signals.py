"""The signal receiver's pure part: parsing, authentication, symbols, names and the Position a signal makes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from controller.api.v1alpha1 import Side, SignalSourceSpec
from controller.api.vocabulary import SignalOutcome, SignalReason
from controller.signals.wire import (
    SOURCE_LABEL,
    Refusal,
    authentic,
    needs_price,
    opening,
    over_limit,
    parse,
    position_name,
    signal_from,
    signed,
    stale,
    unified_symbol,
)

TOKEN = "s3cret-token"
NOW = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
ALLOWED = ["BTC/USDT:USDT", "ETH/USDT:USDT"]


def source(**overrides: Any) -> SignalSourceSpec:
    base: dict[str, Any] = {
        "accountRef": {"name": "paper"},
        "secretRef": {"name": "tv"},
        "allowedSymbols": ALLOWED,
        "template": {"notional": "500", "stopLoss": {"percent": "2"}},
    }
    base.update(overrides)
    return SignalSourceSpec.model_validate(base)


def body(**fields: Any) -> bytes:
    base: dict[str, Any] = {"token": TOKEN, "id": "a1", "time": NOW.isoformat(), "symbol": "BTCUSDT.P", "side": "buy"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def refusal(call: Any, *args: Any) -> Refusal:
    with pytest.raises(Refusal) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize(
    "pasted", ["BTCUSDT", "BTCUSDT.P", "BINANCE:BTCUSDT.P", "BTC/USDT:USDT", "btcusdt", "BINANCE:BTCUSDTPERP"]
)
def test_symbols_as_traders_paste_them(pasted: str) -> None:
    assert unified_symbol(pasted, ALLOWED) == "BTC/USDT:USDT"


def test_a_symbol_the_source_does_not_allow_is_refused_by_name() -> None:
    error = refusal(unified_symbol, "SOLUSDT.P", ALLOWED)
    assert error.reason is SignalReason.UNKNOWN_SYMBOL
    assert error.message == 'symbol: Unsupported value: "SOLUSDT.P": this source allows BTC/USDT:USDT, ETH/USDT:USDT'


def test_numbers_are_read_as_exact_decimal_strings_never_floats() -> None:
    data = parse(b'{"notional": 500.10, "amount": 1e-3, "risk": 10, "entry": 1e999999999}')
    assert data == {"notional": "500.10", "amount": "0.001", "risk": "10", "entry": "1e999999999"}


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_a_body_that_is_not_a_json_object_is_malformed(raw: bytes) -> None:
    assert refusal(parse, raw).reason is SignalReason.MALFORMED


def test_the_token_in_the_body_or_a_signature_of_the_body() -> None:
    raw = body()
    assert authentic(raw, parse(raw), None, TOKEN, signature_only=False)
    assert not authentic(raw, parse(raw), None, "another", signature_only=False)
    unsigned = body(token=None)
    assert not authentic(unsigned, parse(unsigned), None, TOKEN, signature_only=False)
    assert authentic(unsigned, parse(unsigned), signed(unsigned, TOKEN), TOKEN, signature_only=False)
    assert not authentic(unsigned, parse(unsigned), signed(unsigned + b" ", TOKEN), TOKEN, signature_only=False)


def test_a_source_that_requires_a_signature_refuses_the_token_in_the_body() -> None:
    raw, unsigned = body(), body(token=None)
    assert not authentic(raw, parse(raw), None, TOKEN, signature_only=True)
    assert not authentic(raw, parse(raw), signed(raw, TOKEN), TOKEN, signature_only=True)  # the token travelled
    assert authentic(unsigned, parse(unsigned), signed(unsigned, TOKEN), TOKEN, signature_only=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"time": None}, "time: Required value"),
        ({"colour": "red"}, 'unknown field "colour"'),
        ({"action": "flip"}, "action: Invalid value: Input should be 'open' or 'close'"),
        ({"symbol": ""}, "symbol: Invalid value: String should have at least 1 character"),
    ],
)
def test_invalid_signals_name_the_field(fields: dict[str, Any], message: str) -> None:
    error = refusal(signal_from, parse(body(**fields)))
    assert (error.reason, error.message) == (SignalReason.INVALID, message)


def test_times_in_iso_and_epoch_milliseconds_and_staleness() -> None:
    iso = signal_from(parse(body(time="2026-12-06T16:59:30Z")))
    epoch = signal_from(parse(body(time=int((NOW - timedelta(seconds=30)).timestamp() * 1000))))
    assert iso.time == epoch.time == NOW - timedelta(seconds=30)
    assert not stale(iso, timedelta(seconds=60), NOW)
    assert stale(iso, timedelta(seconds=29), NOW)


@pytest.mark.parametrize(
    ("action", "side", "expected"),
    [
        ("open", "buy", Side.LONG),
        ("open", "SELL", Side.SHORT),
        ("open", "long", Side.LONG),
        ("close", "sell", Side.LONG),  # a strategy's exit of a long is a sell
        ("close", "buy", Side.SHORT),
        ("close", "short", Side.SHORT),
    ],
)
def test_sides_as_tradingview_says_them(action: str, side: str, expected: Side) -> None:
    assert signal_from(parse(body(action=action, side=side))).position_side() is expected


def test_the_same_signal_names_the_same_position_and_another_another() -> None:
    first = signal_from(parse(body()))
    assert position_name("tv", first) == position_name("tv", signal_from(parse(body(token="x"))))
    assert position_name("tv", first) != position_name("tv", signal_from(parse(body(id="a2"))))
    assert position_name("tv", first) != position_name("other", first)
    # Without an id: from the time, the symbol (however pasted), the side and the action.
    no_id = signal_from(parse(body(id=None)))
    assert position_name("tv", no_id) == position_name("tv", signal_from(parse(body(id=None, symbol="BTCUSDT"))))
    assert position_name("tv", no_id) != position_name("tv", signal_from(parse(body(id=None, side="sell"))))
    assert position_name("tv", first).startswith("tv-")


def test_an_open_takes_what_the_signal_leaves_out_from_the_template() -> None:
    signal = signal_from(parse(body(stopLoss="63000", takeProfit="68000")))
    made = opening("desk", "tv", source(), signal, "BTC/USDT:USDT")
    assert made.manifest["spec"] == {
        "accountRef": {"name": "paper"},
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "notional": "500",
        "stopLoss": {"price": "63000"},
        "takeProfit": [{"price": "68000", "portion": "1"}],
        "state": "Open",
    }
    assert made.manifest["metadata"]["labels"] == {SOURCE_LABEL: "tv"}
    assert TOKEN not in json.dumps(made.manifest)
    # The signal's own size replaces the template's; its entry price makes a limit entry.
    own = opening("desk", "tv", source(), signal_from(parse(body(risk="10", entry="64000"))), "BTC/USDT:USDT")
    assert (own.spec.risk, own.spec.notional, own.spec.entry.price) == (Decimal("10"), None, Decimal("64000"))


@pytest.mark.parametrize(
    ("fields", "template", "message"),
    [
        ({}, {}, "spec.stopLoss: Required value"),
        ({"side": None}, None, "side: Required value"),
        ({"side": "up"}, None, 'side: Unsupported value: "up"'),
        ({"amount": "0.01", "notional": "5"}, None, "set only one of amount, notional or risk"),
        ({"amount": "1e999999999"}, None, 'spec.amount: Invalid value: must be a plain decimal string such as "0.01"'),
        ({"entry": "-5"}, None, "spec.entry.price: Invalid value: must be a plain decimal string"),
        (
            {"stopLoss": {"price": "1", "percent": "2"}},
            None,
            "spec.stopLoss: Invalid value: stopLoss: set exactly one of price or percent",
        ),
    ],
)
def test_an_open_the_api_server_would_refuse_is_refused_in_its_words(
    fields: dict[str, Any], template: dict[str, Any] | None, message: str
) -> None:
    spec = source() if template is None else source(template=template)
    signal = signal_from(parse(body(**fields)))
    error = refusal(opening, "desk", "tv", spec, signal, "BTC/USDT:USDT")
    assert error.reason is SignalReason.INVALID
    assert message in error.message


def test_the_notional_limit_of_one_signal() -> None:
    limited = source(limits={"maxNotional": "1000"})
    by_notional = opening("d", "tv", limited, signal_from(parse(body(notional="1500"))), "BTC/USDT:USDT").spec
    assert not needs_price(by_notional, limited)
    assert over_limit(by_notional, limited, None) == "notional: 1500 is above this source's limits.maxNotional 1000"
    by_amount = opening("d", "tv", limited, signal_from(parse(body(amount="0.01"))), "BTC/USDT:USDT").spec
    assert needs_price(by_amount, limited)
    assert over_limit(by_amount, limited, Decimal("65000")) is None
    assert over_limit(by_amount, limited, Decimal("150000")) is not None
    # A risk over a percent stop is worth risk / percent, whatever the price: 10 / 2 % = 500.
    by_risk = opening("d", "tv", limited, signal_from(parse(body(risk="10"))), "BTC/USDT:USDT").spec
    assert not needs_price(by_risk, limited) and over_limit(by_risk, limited, None) is None
    assert not needs_price(by_amount, source())  # no limit, no price


def test_every_reason_has_one_outcome() -> None:
    outcomes = {reason: reason.outcome for reason in SignalReason}
    assert {r for r, o in outcomes.items() if o is SignalOutcome.ACCEPTED} == {
        SignalReason.CREATED,
        SignalReason.CLOSED,
        SignalReason.DRY_RUN,
    }
    assert outcomes[SignalReason.DUPLICATE] is SignalOutcome.DUPLICATE
