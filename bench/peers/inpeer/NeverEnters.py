"""Runs INSIDE the freqtrade venv (~/.cache/warden/peers/freqtrade-*), never the project's: a strategy that never
enters or exits by itself, so every trade of the benchmark is a ``forceenter`` from the harness. The stop is
freqtrade's own stoploss on exchange (``stoploss`` below, mark price, placed by its bot loop). Not type-checked
with the repository (pyproject's mypy ``exclude``: bench/peers/inpeer/)."""

from freqtrade.strategy import IStrategy
from pandas import DataFrame


class NeverEnters(IStrategy):
    INTERFACE_VERSION = 3
    can_short = False
    timeframe = "1m"
    stoploss = -0.05
    minimal_roi = {"0": 100}  # noqa: RUF012 (freqtrade reads a plain class attribute)
    startup_candle_count = 0
    process_only_new_candles = True

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
