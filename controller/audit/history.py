"""What happened to a Position, or to an account on one day, read back from the audit store for people.

Numbers follow ``controller.api.display``: the store keeps full precision, the text shows prices and amounts
plainly (no exponent, no padding) and money at the quote's precision; ``--json`` gives the stored values."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from controller.api.display import money, plain, quote_of

_TIMELINE = """
SELECT occurred_at, type, symbol, phase_before, phase_after, client_order_id, exchange_order_id, amount, price,
       message, detail, replica, epoch
FROM events
WHERE namespace = $1 AND name = $2 AND occurred_at >= $3
ORDER BY occurred_at, seq
"""

_FILLS = """
SELECT traded_at, trade_id, symbol, client_order_id, exchange_order_id, side, amount, price, fee, fee_asset,
       realized_pnl
FROM fills WHERE namespace = $1 AND name = $2 AND traded_at >= $3 ORDER BY traded_at, trade_id
"""

_DAY_POSITIONS = """
SELECT namespace, name, min(symbol) AS symbol,
       (array_agg(phase_after ORDER BY occurred_at DESC) FILTER (WHERE phase_after IS NOT NULL))[1] AS phase,
       count(*) FILTER (WHERE type = 'ExchangeError') AS errors,
       count(*) FILTER (WHERE type LIKE 'Drift%') AS drift
FROM events WHERE account = $1 AND occurred_at >= $2 AND occurred_at < $3
GROUP BY namespace, name ORDER BY namespace, name
"""

_DAY_FILLS = """
SELECT namespace, name, count(*) AS fills, sum(realized_pnl) AS realized, sum(fee) AS fees
FROM fills WHERE account = $1 AND traded_at >= $2 AND traded_at < $3
GROUP BY namespace, name
"""


def parse_since(text: str | None, now: datetime) -> datetime:
    """``2h``/``30m``/``7d`` ago, or an ISO time; the beginning of time when absent."""
    if not text:
        return datetime(1970, 1, 1, tzinfo=UTC)
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return now - timedelta(**{unit: int(match.group(1))})
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Timeline:
    events: list[dict[str, Any]]
    fills: list[dict[str, Any]]

    @property
    def quote(self) -> str:
        """The quote currency of the Position's symbol, which its PnL and fees are counted in."""
        return next((quote_of(r["symbol"]) for r in [*self.events, *self.fills] if r.get("symbol")), "")


async def timeline(conn: asyncpg.Connection, namespace: str, name: str, since: datetime) -> Timeline:
    events = [dict(r) for r in await conn.fetch(_TIMELINE, namespace, name, since)]
    for event in events:
        event["detail"] = json.loads(event["detail"]) if isinstance(event["detail"], str) else event["detail"]
    fills = [dict(r) for r in await conn.fetch(_FILLS, namespace, name, since)]
    return Timeline(events, fills)


async def day_summary(conn: asyncpg.Connection, account: str, day: date) -> list[dict[str, Any]]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    money = {(r["namespace"], r["name"]): dict(r) for r in await conn.fetch(_DAY_FILLS, account, start, end)}
    rows = []
    for r in await conn.fetch(_DAY_POSITIONS, account, start, end):
        traded = money.pop((r["namespace"], r["name"]), {})
        rows.append(dict(r) | _money(traded))
    rows += [{"namespace": ns, "name": n, "symbol": None, "phase": None} | _money(m) for (ns, n), m in money.items()]
    return rows


def _money(traded: dict[str, Any]) -> dict[str, Any]:
    realized = traded.get("realized") or Decimal(0)
    fees = traded.get("fees") or Decimal(0)
    return {"fills": traded.get("fills", 0), "realized": realized, "fees": fees, "net": realized - fees}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, Decimal):
        return plain(value)
    return str(value)


def _fee(fill: dict[str, Any], quote: str) -> str:
    asset = fill["fee_asset"] or quote
    shown = money(fill["fee"], quote) if asset == quote else plain(fill["fee"])
    return f"{shown} {asset}".rstrip()


def render_timeline(t: Timeline, title: str) -> str:
    lines = [f"History of {title}", ""]
    for e in t.events:
        phase = f"{e['phase_before']} -> {e['phase_after']}" if e["phase_before"] != e["phase_after"] else ""
        order = " ".join(x for x in (e["client_order_id"], e["exchange_order_id"]) if x)
        size = " ".join(
            f"{label} {plain(e[key])}"
            for label, key in (("amount", "amount"), ("price", "price"))
            if e[key] is not None
        )
        pnl = " ".join(
            f"{k} {money(Decimal(v), t.quote)}"
            for k, v in (e["detail"] or {}).items()
            if k in ("realizedPnl", "fees") and v
        )
        parts = [_cell(e["occurred_at"]), f"{e['type']:<22}", phase, order, size, pnl, e["message"]]
        lines.append("  ".join(p for p in parts if p))
    if t.fills:
        lines += ["", "Fills (from the exchange's trades):"]
        for f in t.fills:
            lines.append(
                f"{_cell(f['traded_at'])}  trade {f['trade_id']}  {f['side']} {plain(f['amount'])} @ "
                f"{plain(f['price'])}  fee {_fee(f, t.quote)}  realized {money(f['realized_pnl'], t.quote)}  "
                f"order {f['exchange_order_id']}"
            )
        realized = sum((f["realized_pnl"] for f in t.fills), Decimal(0))
        fees = sum((f["fee"] for f in t.fills), Decimal(0))
        shown = [money(v, t.quote) for v in (realized, fees, realized - fees)]
        lines.append("Total: realized {}, fees {}, net {}".format(*shown))
    if not t.events and not t.fills:
        lines.append("(no audit records)")
    return "\n".join(lines) + "\n"


def render_day(rows: list[dict[str, Any]], account: str, day: date) -> str:
    lines = [f"Account {account} on {day.isoformat()} (UTC)", ""]
    header = ("POSITION", "SYMBOL", "PHASE", "FILLS", "REALIZED", "FEES", "NET", "ERRORS", "DRIFT")
    quote = next((quote_of(r["symbol"]) for r in rows if r.get("symbol")), "")
    table = [header] + [
        (
            f"{r['namespace']}/{r['name']}",
            _cell(r.get("symbol")),
            _cell(r.get("phase")),
            _cell(r["fills"]),
            *(money(r[k], quote) for k in ("realized", "fees", "net")),
            _cell(r.get("errors", 0)),
            _cell(r.get("drift", 0)),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    net = sum((r["net"] for r in rows), Decimal(0))
    fees = sum((r["fees"] for r in rows), Decimal(0))
    lines += ["", f"Positions {len(rows)}, net realized PnL {money(net, quote)}, fees {money(fees, quote)}"]
    return "\n".join(lines) + "\n"


def to_json(value: Any) -> str:
    return json.dumps(value, default=_cell, indent=2)
