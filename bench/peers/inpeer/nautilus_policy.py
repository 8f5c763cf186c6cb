"""Runs INSIDE the nautilus-trader venv (~/.cache/warden/peers/nautilus-*), never the project's: a nautilus
TradingNode on Warden's paper exchange with the smallest fair "protect after fill" policy, which nautilus does not
have built in. Not type-checked with the repository (pyproject's mypy ``exclude``: bench/peers/inpeer/).

    python nautilus_policy.py CONFIG.json

CONFIG: {"url", "ws", "apiKey", "secret", "commands", "symbols", "stopPercent"}. The harness appends one JSON command
per line to ``commands``: {"cmd": "market"|"limit"|"exit", "symbol", "qty", "price"}; a 50 ms timer reads them.

The policy: on an entry's fill, submit a reduce-only STOP_MARKET for the position's size at ``stopPercent`` under
the fill price, triggered by the mark price; when that stop is cancelled or expires while the position is open,
submit it again; when the position closes, cancel whatever is left on the instrument.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from nautilus_trader.adapters.binance import (
    BINANCE,
    BinanceAccountType,
    BinanceDataClientConfig,
    BinanceExecClientConfig,
    BinanceLiveDataClientFactory,
    BinanceLiveExecClientFactory,
)
from nautilus_trader.config import (
    InstrumentProviderConfig,
    LiveExecEngineConfig,
    LoggingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.enums import OrderSide, TimeInForce, TriggerType
from nautilus_trader.model.events import OrderCanceled, OrderExpired, OrderFilled, PositionClosed
from nautilus_trader.model.identifiers import InstrumentId, TraderId
from nautilus_trader.trading.strategy import Strategy


class PolicyConfig(StrategyConfig, frozen=True):
    commands: str
    stop_percent: str = "5"


class ProtectAfterFill(Strategy):
    def __init__(self, config: PolicyConfig) -> None:
        super().__init__(config)
        self.commands = Path(config.commands)
        self.offset = 0
        self.factor = 1 - Decimal(config.stop_percent) / 100
        self.stops: dict[InstrumentId, object] = {}  # instrument -> our resting stop's client order id
        self.entries: set[object] = set()

    def on_start(self) -> None:
        self.clock.set_timer("commands", interval=timedelta(milliseconds=50), callback=self._poll)

    def _poll(self, _event: object) -> None:
        if not self.commands.exists():
            return
        with self.commands.open() as f:
            f.seek(self.offset)
            lines = f.readlines()
            self.offset = f.tell()
        for line in lines:
            if line.strip():
                self._command(json.loads(line))

    def _command(self, c: dict) -> None:
        instrument_id = InstrumentId.from_str(f"{c['symbol']}-PERP.BINANCE")
        instrument = self.cache.instrument(instrument_id)
        if c["cmd"] == "exit":
            self.close_all_positions(instrument_id)
            return
        qty = instrument.make_qty(Decimal(c["qty"]))
        if c["cmd"] == "market":
            order = self.order_factory.market(instrument_id, OrderSide.BUY, qty)
        else:
            price = instrument.make_price(Decimal(c["price"]))
            order = self.order_factory.limit(instrument_id, OrderSide.BUY, qty, price)
        self.entries.add(order.client_order_id)
        self.submit_order(order)

    def _protect(self, instrument_id: InstrumentId, price: Decimal) -> None:
        position = next(iter(self.cache.positions_open(instrument_id=instrument_id)), None)
        if position is None:
            return
        instrument = self.cache.instrument(instrument_id)
        stop = self.order_factory.stop_market(
            instrument_id,
            OrderSide.SELL,
            instrument.make_qty(position.quantity),
            trigger_price=instrument.make_price(price * self.factor),
            trigger_type=TriggerType.MARK_PRICE,
            reduce_only=True,
            time_in_force=TimeInForce.GTC,
        )
        self.stops[instrument_id] = stop.client_order_id
        self.submit_order(stop)

    def on_event(self, event: object) -> None:
        if isinstance(event, OrderFilled) and event.client_order_id in self.entries:
            order = self.cache.order(event.client_order_id)
            if order is not None and order.is_closed:
                self._protect(event.instrument_id, Decimal(str(event.last_px)))
        elif isinstance(event, OrderCanceled | OrderExpired):
            if self.stops.get(event.instrument_id) == event.client_order_id:
                order = self.cache.order(event.client_order_id)
                self.stops.pop(event.instrument_id, None)
                if order is not None and self.cache.positions_open(instrument_id=event.instrument_id):
                    self._protect(event.instrument_id, Decimal(str(order.trigger_price)) / self.factor)
        elif isinstance(event, PositionClosed):
            self.stops.pop(event.instrument_id, None)
            self.cancel_all_orders(event.instrument_id)


def main(path: str) -> None:
    cfg = json.loads(Path(path).read_text())
    provider = InstrumentProviderConfig(load_ids=frozenset(f"{s}-PERP.BINANCE" for s in cfg["symbols"]))
    common = {
        "api_key": cfg["apiKey"],
        "api_secret": cfg["secret"],
        "account_type": BinanceAccountType.USDT_FUTURES,
        "base_url_http": cfg["url"],
        "instrument_provider": provider,
    }
    node = TradingNode(
        config=TradingNodeConfig(
            trader_id=TraderId("BENCH-001"),
            logging=LoggingConfig(log_level="INFO"),
            exec_engine=LiveExecEngineConfig(reconciliation=True),
            data_clients={BINANCE: BinanceDataClientConfig(**common)},
            exec_clients={BINANCE: BinanceExecClientConfig(**common, base_url_ws_stream=cfg["ws"])},
            timeout_connection=30.0,
        )
    )
    node.trader.add_strategy(ProtectAfterFill(PolicyConfig(commands=cfg["commands"], stop_percent=cfg["stopPercent"])))
    node.add_data_client_factory(BINANCE, BinanceLiveDataClientFactory)
    node.add_exec_client_factory(BINANCE, BinanceLiveExecClientFactory)
    node.build()
    try:
        node.run()
    finally:
        node.dispose()


if __name__ == "__main__":
    main(sys.argv[1])
