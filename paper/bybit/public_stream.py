"""Bybit's public linear websocket (``/v5/public/linear``) for ccxt.pro: the ``tickers.<SYMBOL>`` topic, whose
``markPrice`` is the mark Warden follows without reads (``watch_tickers``; the reference brief §10).

Bybit answers ``{"op": "subscribe", "args": ["tickers.BTCUSDT"], "req_id": ...}`` with ``success`` and pushes one
``snapshot`` of the whole ticker, then a ``delta`` of only the fields that changed, every 100 ms at most (ccxt
merges a delta into the ticker it holds). A ``ping`` op is answered ``ret_msg: "pong"``. Public: no key, no limit.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from paper.bybit import render
from paper.bybit.front import BybitFront
from paper.market_stream import PublicStream

TOPIC = "tickers"


@dataclass
class _Socket:
    conn_id: str
    topics: dict[str, dict[str, Any]] = field(default_factory=dict)  # topic -> the ticker as last pushed


class BybitPublicStream(PublicStream[_Socket]):
    path = "/v5/public/linear"
    tick = 0.1

    def __init__(self, front: BybitFront) -> None:
        super().__init__()
        self.front = front
        self._ids = itertools.count(1)

    def _symbol(self, topic: str) -> str | None:
        name, _, symbol = topic.partition(".")
        return symbol if name == TOPIC and symbol in self.front.venue.markets else None

    def connection(self) -> _Socket:
        return _Socket(f"paper-public-{next(self._ids)}")

    def answer(self, text: str, state: _Socket) -> dict[str, Any]:
        try:
            request = json.loads(text)
            op = request.get("op")
        except (ValueError, AttributeError):
            return {"conn_id": state.conn_id, "success": False, "ret_msg": "error:request not json", "op": ""}
        base: dict[str, Any] = {"conn_id": state.conn_id, "req_id": str(request.get("req_id", "")), "op": op}
        if op == "ping":
            return {**base, "success": True, "ret_msg": "pong"}
        if op not in ("subscribe", "unsubscribe"):
            return {**base, "success": False, "ret_msg": f"error:unknown op {op}"}
        topics = [str(a) for a in request.get("args") or []]
        unknown = [t for t in topics if self._symbol(t) is None]
        if unknown:
            return {**base, "success": False, "ret_msg": f"error:handler not found,topic:{unknown[0]}"}
        for topic in topics:
            if op == "subscribe":
                state.topics.setdefault(topic, {})  # empty: its snapshot is still due
            else:
                state.topics.pop(topic, None)
        return {**base, "success": True, "ret_msg": ""}

    def due(self, state: _Socket, now: float) -> list[Any]:
        """A snapshot for each new subscription, then deltas of what changed."""
        pushes: list[Any] = []
        for topic, last in list(state.topics.items()):
            symbol = self._symbol(topic)
            if symbol is None:
                continue
            ticker = render.ticker(self.front.venue.markets[symbol], self.front.venue)
            changed = {k: v for k, v in ticker.items() if last.get(k) != v}
            if not changed:
                continue
            data = {"symbol": symbol, **changed} if last else ticker
            state.topics[topic] = ticker
            kind = "delta" if last else "snapshot"
            pushes.append({"topic": topic, "type": kind, "data": data, "cs": 0, "ts": self.front.venue.now()})
        return pushes
