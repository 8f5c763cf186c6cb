"""Mark-price paths that move with the venue clock: a seeded random walk and scripted (CSV) paths.

Each path yields moves at clock instants; :class:`PriceDriver` applies every move that is due, oldest first, through
``Venue.set_mark_price`` — so a stop is checked at every step, and a flash crash gaps through it exactly as a fast
market would. The walk multiplies the *current* mark, so a price set by hand (``POST /_paper/price``) is where it
continues from. Same seed and same clock steps give the same prices, however the steps are chunked.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from paper.markets import MarketSpec
from paper.venue import Venue


class PricePath(Protocol):
    def next_at(self) -> int | None:
        """Clock instant of the next move, ``None`` when the path has ended."""

    def pop(self, marks: Mapping[str, Decimal]) -> list[tuple[str, Decimal]]:
        """The ``(symbol, new mark)`` moves of the instant :meth:`next_at` named; advances the path."""

    def describe(self) -> dict[str, Any]: ...


def on_tick(spec: MarketSpec, value: Decimal) -> Decimal:
    """``value`` rounded to the symbol's tick size, never below one tick."""
    ticks = (value / spec.tick_size).to_integral_value()
    return max(ticks, Decimal(1)) * spec.tick_size


@dataclass(frozen=True)
class WalkConfig:
    """Per-tick parameters of the random walk (log returns; probabilities per tick)."""

    tick_ms: int = 1000
    calm_volatility: float = 0.0005
    volatile_volatility: float = 0.004
    regime_switch: float = 0.01  # chance per tick of switching between the calm and the volatile regime
    jump_chance: float = 0.0005  # a one-tick gap of ±jump_size
    jump_size: float = 0.03
    crash_chance: float = 0.0002  # a flash crash: down crash_depth in one tick, back over the next ticks
    crash_depth: float = 0.08
    crash_recovery_ticks: int = 3
    symbols: tuple[str, ...] | None = None  # None: every market

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> WalkConfig:
        """Build from camelCase keys (``tickMs``, ``crashChance``, …); raises ``ValueError`` on bad input."""
        names = {
            "tickMs": "tick_ms",
            "calmVolatility": "calm_volatility",
            "volatileVolatility": "volatile_volatility",
            "regimeSwitch": "regime_switch",
            "jumpChance": "jump_chance",
            "jumpSize": "jump_size",
            "crashChance": "crash_chance",
            "crashDepth": "crash_depth",
            "crashRecoveryTicks": "crash_recovery_ticks",
        }
        unknown = set(body) - set(names) - {"symbols"}
        if unknown:
            raise ValueError(f"unknown walk keys: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, name in names.items():
            if key in body:
                value = body[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"'{key}' must be a non-negative number")
                values[name] = int(value) if name in ("tick_ms", "crash_recovery_ticks") else float(value)
        symbols = body.get("symbols")
        if symbols is not None:
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                raise ValueError("'symbols' must be a list of symbol ids")
            values["symbols"] = tuple(s.upper() for s in symbols)
        config = cls(**values)
        if config.tick_ms < 1 or not 0 <= config.crash_depth < 1:
            raise ValueError("'tickMs' must be >= 1 and 'crashDepth' below 1")
        return config


@dataclass
class RandomWalk:
    """Geometric random walk with two volatility regimes, jumps and flash crashes, drawn from ``seed``."""

    seed: int
    start_ms: int
    markets: Mapping[str, MarketSpec]
    config: WalkConfig = field(default_factory=WalkConfig)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._tick = 1
        self._symbols = sorted(self.config.symbols or self.markets)
        for symbol in self._symbols:
            if symbol not in self.markets:
                raise ValueError(f"unknown symbol {symbol!r}")
        self._volatile = dict.fromkeys(self._symbols, False)
        self._recovery: dict[str, list[float]] = {s: [] for s in self._symbols}

    def next_at(self) -> int | None:
        return self.start_ms + self._tick * self.config.tick_ms

    def _log_return(self, symbol: str) -> float:
        cfg, rng = self.config, self._rng
        # A fixed number of draws per symbol and tick keeps every later draw independent of earlier outcomes.
        switch, jump, jump_sign, crash, noise = rng.random(), rng.random(), rng.random(), rng.random(), rng.gauss()
        if switch < cfg.regime_switch:
            self._volatile[symbol] = not self._volatile[symbol]
        sigma = cfg.volatile_volatility if self._volatile[symbol] else cfg.calm_volatility
        step = sigma * noise
        pending = self._recovery[symbol]
        if pending:
            return step + pending.pop()
        if crash < cfg.crash_chance:
            down = math.log(1 - cfg.crash_depth)
            if cfg.crash_recovery_ticks:
                pending.extend([-down / cfg.crash_recovery_ticks] * cfg.crash_recovery_ticks)
            return step + down
        if jump < cfg.jump_chance:
            return step + (cfg.jump_size if jump_sign < 0.5 else -cfg.jump_size)
        return step

    def pop(self, marks: Mapping[str, Decimal]) -> list[tuple[str, Decimal]]:
        self._tick += 1
        moves = []
        for symbol in self._symbols:
            factor = Decimal(repr(math.exp(self._log_return(symbol))))
            moves.append((symbol, on_tick(self.markets[symbol], marks[symbol] * factor)))
        return moves

    def describe(self) -> dict[str, Any]:
        return {"kind": "walk", "seed": self.seed, "startMs": self.start_ms, "tickMs": self.config.tick_ms}


@dataclass
class ScriptedPath:
    """Prices at offsets from ``start_ms``, e.g. a recorded crash replayed against a stop."""

    start_ms: int
    rows: list[tuple[int, str, Decimal]]

    def __post_init__(self) -> None:
        self.rows.sort(key=lambda row: row[0])
        self._next = 0

    def next_at(self) -> int | None:
        return self.start_ms + self.rows[self._next][0] if self._next < len(self.rows) else None

    def pop(self, marks: Mapping[str, Decimal]) -> list[tuple[str, Decimal]]:
        offset = self.rows[self._next][0]
        moves = []
        while self._next < len(self.rows) and self.rows[self._next][0] == offset:
            moves.append(self.rows[self._next][1:])
            self._next += 1
        return [(symbol, price) for symbol, price in moves]

    def describe(self) -> dict[str, Any]:
        return {"kind": "script", "startMs": self.start_ms, "rows": len(self.rows), "applied": self._next}


def read_script(text: str, markets: Mapping[str, MarketSpec]) -> list[tuple[int, str, Decimal]]:
    """CSV rows ``offset_ms,symbol,price`` (a header row naming them is allowed); raises ``ValueError``."""
    rows: list[tuple[int, str, Decimal]] = []
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or fields[0].strip().startswith("#"):
            continue
        if len(fields) != 3:
            raise ValueError(f"line {number}: expected offset_ms,symbol,price")
        offset, symbol, price = (f.strip() for f in fields)
        if number == 1 and not offset.isdigit():
            continue  # the header
        try:
            value = Decimal(price)
        except InvalidOperation:
            raise ValueError(f"line {number}: bad price {price!r}") from None
        if not offset.isdigit() or symbol.upper() not in markets or not value.is_finite() or value <= 0:
            raise ValueError(f"line {number}: bad row {fields!r}")
        rows.append((int(offset), symbol.upper(), value))
    return rows


class PriceDriver:
    """Applies the moves of every path that are due by the venue clock; ``on_change`` runs after any move."""

    def __init__(self, venue: Venue, on_change: Callable[[], None] | None = None) -> None:
        self.venue = venue
        self.paths: list[PricePath] = []
        self._on_change = on_change

    def add(self, path: PricePath) -> None:
        self.paths.append(path)

    def clear(self) -> None:
        self.paths.clear()

    def advance(self) -> int:
        """Apply every move due by now, in time order (ties: the path added first); returns how many."""
        now = self.venue.now()
        applied = 0
        while True:
            due = [(at, i) for i, path in enumerate(self.paths) if (at := path.next_at()) is not None and at <= now]
            if not due:
                break
            path = self.paths[min(due)[1]]
            for symbol, price in path.pop(self.venue.marks):
                self.venue.set_mark_price(symbol, price)
                applied += 1
        if applied and self._on_change is not None:
            self._on_change()
        return applied

    def describe(self) -> list[dict[str, Any]]:
        return [path.describe() for path in self.paths]


def paths_from_json(body: Mapping[str, Any], venue: Venue, seed: int) -> Iterable[PricePath]:
    """The paths ``POST /_paper/price-path`` asks for: ``{"walk": {...}}`` and/or ``{"script": "csv text"}``."""
    now = venue.now()
    walk, script = body.get("walk"), body.get("script")
    if walk is None and script is None:
        raise ValueError("give 'walk' (an object) and/or 'script' (CSV text)")
    if walk is not None:
        if not isinstance(walk, dict):
            raise ValueError("'walk' must be an object")
        walk_seed = walk.get("seed", seed)
        if isinstance(walk_seed, bool) or not isinstance(walk_seed, int):
            raise ValueError("'seed' must be an integer")
        config = WalkConfig.from_json({k: v for k, v in walk.items() if k != "seed"})
        yield RandomWalk(walk_seed, now, venue.markets, config)
    if script is not None:
        if not isinstance(script, str):
            raise ValueError("'script' must be CSV text")
        yield ScriptedPath(now, read_script(script, venue.markets))
