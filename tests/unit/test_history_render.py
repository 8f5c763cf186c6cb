"""The history as a person reads it: stored full-precision figures, shown by the one display rule."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from controller.audit.history import Timeline, render_day, render_timeline

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SYMBOL = "ETH/USDT:USDT"


def event(type_: str, amount: str | None, price: str | None, **detail: str) -> dict[str, object]:
    return {
        "occurred_at": AT,
        "type": type_,
        "symbol": SYMBOL,
        "phase_before": "Protected",
        "phase_after": "Protected",
        "client_order_id": "wabc-en",
        "exchange_order_id": None,
        "amount": None if amount is None else Decimal(amount),
        "price": None if price is None else Decimal(price),
        "message": "m",
        "detail": detail or None,
    }


def fill(realized: str, fee: str) -> dict[str, object]:
    return {
        "traded_at": AT,
        "trade_id": "1",
        "symbol": SYMBOL,
        "side": "buy",
        "amount": Decimal("0.01000000"),
        "price": Decimal("3200.00000000"),
        "fee": Decimal(fee),
        "fee_asset": "USDT",
        "realized_pnl": Decimal(realized),
        "exchange_order_id": "9",
    }


def test_a_timeline_shows_each_events_own_figures_without_noise() -> None:
    timeline = Timeline(
        [
            event("EntryFilled", "0.01000000", "3200.00000000"),
            event("PositionClosed", None, None, realizedPnl="18.39000000", fees="0.02560000"),
        ],
        [fill("0E-8", "0.01280000"), fill("18.41560000", "0.01280000")],
    )
    text = render_timeline(timeline, "ns/story")
    assert "EntryFilled" in text and "amount 0.01 price 3200" in text
    assert "realizedPnl 18.39 fees 0.03" in text
    assert "realized 0.00" in text and "fee 0.01 USDT" in text
    assert "Total: realized 18.42, fees 0.03, net 18.39" in text
    assert "E-" not in text and "00000" not in text


def test_a_day_shows_money_at_the_quotes_precision() -> None:
    rows = [
        {
            "namespace": "ns",
            "name": "story",
            "symbol": SYMBOL,
            "phase": "Closed",
            "fills": 2,
            "realized": Decimal("18.41560000"),
            "fees": Decimal("0.02560000"),
            "net": Decimal("18.39000000"),
        }
    ]
    text = render_day(rows, "paper", date(2026, 12, 6))
    assert "18.42" in text and "0.03" in text and "net realized PnL 18.39, fees 0.03" in text
    assert "00000" not in text
