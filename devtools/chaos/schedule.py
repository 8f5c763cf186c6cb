"""A seeded chaos schedule: which Positions are created and how they end, and which faults hit when.

The same seed, position count and kill count always give the same schedule (the timing of what the real
processes then do varies from run to run; the evidence of each run is saved with its report).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# Venue symbol → (ccxt symbol, base price, amount, price places).
MARKETS: dict[str, tuple[str, Decimal, str, int]] = {
    "BTCUSDT": ("BTC/USDT:USDT", Decimal("65000"), "0.010", 1),
    "ETHUSDT": ("ETH/USDT:USDT", Decimal("3200"), "0.100", 2),
    "SOLUSDT": ("SOL/USDT:USDT", Decimal("150"), "2", 2),
    "SEIUSDT": ("SEI/USDT:USDT", Decimal("0.35"), "500", 4),
}
SYMBOLS = tuple(MARKETS)
# How a Position ends: asked to close, deleted, its stop hit by a price gap, closed on the venue's website,
# liquidated by a gap through its liquidation price, or still open when the run ends (closed in the drain).
EXITS = ("close", "delete", "stop", "external_close", "liquidation", "drain")
# Exchange fault rules (paper exchange modes), cycled so every mode occurs.
EXCHANGE_FAULTS: tuple[dict[str, Any], ...] = (
    {"mode": "timeout", "executed": True, "method": "POST", "path": "/fapi/v1/algoOrder"},
    {"mode": "timeout", "executed": False, "method": "POST", "path": "/fapi/v1/order"},
    {"mode": "timeout", "executed": True, "method": "POST", "path": "/fapi/v1/order"},
    {"mode": "drop", "method": "POST", "path": "/fapi/v1/algoOrder"},
    {"mode": "drop", "method": "POST", "path": "/fapi/v1/order"},
    {"mode": "http_error", "status": 503, "path": "/fapi/*"},
    {"mode": "http_error", "status": 500, "method": "POST", "path": "/fapi/v1/algoOrder"},
    {"mode": "http_error", "status": 502, "method": "DELETE", "path": "/fapi/v1/algoOrder"},
    {"mode": "disconnected", "path": "/fapi/*"},
    {"mode": "rate_limit", "retryAfterS": 1, "path": "/fapi/*"},
    {"mode": "ban", "retryAfterS": 2, "path": "/fapi/*"},
    {"mode": "maintenance", "durationMs": 3000, "path": "/fapi/*"},
    {"mode": "latency", "latencyMs": 1500, "path": "/fapi/*"},
)
# Every step boundary the controller can be stopped at (controller/failpoints.py), cycled.
FAILPOINTS = (
    *(
        f"{point}:{when}"
        for point in ("entry", "stop", "close", "settings", "take_profit")
        for when in ("before-send", "after-send")
    ),
    "status:before-write",
    "status:after-write",
)


@dataclass(frozen=True)
class PositionPlan:
    name: str
    slot: int  # account index * 4 + symbol index: never shared, never reused
    symbol: str
    side: str
    stop_percent: Decimal
    exit: str
    created_at: float
    exit_at: float
    take_profit: bool = False
    leverage: int | None = None

    @property
    def account(self) -> int:
        return self.slot // len(SYMBOLS)

    def stop_price(self) -> Decimal:
        _, base, _, places = MARKETS[self.symbol]
        factor = 1 - self.stop_percent / 100 if self.side == "long" else 1 + self.stop_percent / 100
        return round(base * factor, places)

    def manifest(self, account_name: str) -> dict[str, Any]:
        ccxt_symbol, base, amount, places = MARKETS[self.symbol]
        spec: dict[str, Any] = {
            "accountRef": {"name": account_name},
            "symbol": ccxt_symbol,
            "side": self.side,
            "amount": amount,
            "entry": {"type": "market"},
            "stopLoss": {"price": str(self.stop_price())},
        }
        if self.take_profit:
            target = base * (Decimal("1.03") if self.side == "long" else Decimal("0.97"))
            spec["takeProfit"] = [{"price": str(round(target, places)), "portion": "0.5"}]
        if self.leverage is not None:
            spec["leverage"] = self.leverage
            spec["marginMode"] = "isolated"
        return {
            "apiVersion": "trading.warden.dev/v1alpha1",
            "kind": "Position",
            "metadata": {"name": self.name},
            "spec": spec,
        }


@dataclass(frozen=True)
class Action:
    at: float  # seconds after the start
    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    seed: int
    duration: float
    positions: tuple[PositionPlan, ...]
    actions: tuple[Action, ...]
    failpoint_share: float  # of controller (re)starts that arm a failpoint

    @property
    def accounts(self) -> int:
        return max(p.account for p in self.positions) + 1 if self.positions else 0

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for action in self.actions:
            counted[action.kind] = counted.get(action.kind, 0) + 1
        return counted


def _spread(rng: random.Random, count: int, start: float, end: float, jitter: float) -> list[float]:
    """``count`` times evenly over [start, end), each moved by up to ``jitter`` of the spacing."""
    if count <= 0:
        return []
    step = (end - start) / count
    return sorted(start + step * (i + 0.5) + rng.uniform(-jitter, jitter) * step for i in range(count))


def make_plan(seed: int, positions: int, kills: int, *, duration: float | None = None) -> Plan:
    rng = random.Random(seed)
    total = duration if duration is not None else max(60.0, kills * 11.0, positions * 6.0)
    life = (10.0, max(15.0, min(90.0, total / 3)))
    plans: list[PositionPlan] = []
    actions: list[Action] = []
    created = 0
    # Bursts of 1 to 5 Positions created at once; those of a burst that are to be deleted go together too.
    burst_times = _spread(rng, max(1, positions // 3), 2.0, max(3.0, total - life[1] - 5), 0.4)
    sizes = [1] * len(burst_times)
    for _ in range(positions - len(burst_times)):
        sizes[rng.randrange(len(sizes))] += 1
    for at, size in zip(burst_times, sizes, strict=True):
        names: list[str] = []
        delete_at = at + rng.uniform(*life)
        for _ in range(size):
            exit_ = EXITS[created % len(EXITS)] if created < len(EXITS) else rng.choice(EXITS)
            symbol = SYMBOLS[created % len(SYMBOLS)]
            plan = PositionPlan(
                name=f"p{created:03d}",
                slot=created,
                symbol=symbol,
                side=rng.choice(("long", "short")),
                stop_percent=Decimal(10) if exit_ == "liquidation" else Decimal(rng.choice(("1.5", "2", "3", "4"))),
                exit=exit_,
                created_at=at,
                exit_at=delete_at if exit_ == "delete" else at + rng.uniform(*life),
                take_profit=exit_ != "liquidation" and rng.random() < 0.3,
                leverage=50 if exit_ == "liquidation" else None,
            )
            plans.append(plan)
            names.append(plan.name)
            created += 1
        actions.append(Action(at, "create", {"names": names}))
    by_exit: dict[tuple[float, str], list[str]] = {}
    for p in plans:
        if p.exit in ("close", "delete"):
            by_exit.setdefault((round(p.exit_at, 3), p.exit), []).append(p.name)
        elif p.exit == "stop":
            gap = p.stop_percent + 1
            actions.append(Action(p.exit_at, "gap", {"symbol": p.symbol, "percent": str(gap), "side": p.side}))
        elif p.exit == "liquidation":
            actions.append(Action(p.exit_at, "gap", {"symbol": p.symbol, "percent": "4", "side": p.side}))
        elif p.exit == "external_close":
            actions.append(Action(p.exit_at, "external_close", {"name": p.name}))
    for (at, kind), names in sorted(by_exit.items()):
        actions.append(Action(at, kind, {"names": names}))
    # The venue cancels a resting stop of a live Position now and then.
    for p in rng.sample(plans, k=max(1, len(plans) // 5)) if plans else []:
        at = rng.uniform(p.created_at + 4, max(p.created_at + 5, min(p.exit_at, total) - 2))
        actions.append(Action(at, "cancel_stop", {"name": p.name}))
    for i, at in enumerate(_spread(rng, kills, 3.0, total - 5, 0.45)):
        actions.append(Action(at, "kill", {"leader": rng.random() < 0.7, "index": i}))
    for at in _spread(rng, max(1, kills // 20), 5.0, total - 10, 0.4):
        actions.append(Action(at, "pause", {"seconds": rng.uniform(2, 8)}))
    for at in _spread(rng, max(1, round(total / 400)), 10.0, total - 15, 0.4):
        actions.append(Action(at, "postgres", {"seconds": rng.uniform(4, 10)}))
    for at in _spread(rng, max(1, round(total / 400)), 15.0, total - 15, 0.4):
        actions.append(Action(at, "apiserver", {"seconds": rng.uniform(2, 6)}))
    faults = max(len(EXCHANGE_FAULTS), round(total / 12))
    for i, at in enumerate(_spread(rng, faults, 4.0, total - 5, 0.45)):
        rule = dict(EXCHANGE_FAULTS[i % len(EXCHANGE_FAULTS)]) | {"count": rng.randint(1, 3)}
        actions.append(Action(at, "exchange_fault", {"rule": rule}))
    return Plan(
        seed=seed,
        duration=total,
        positions=tuple(plans),
        actions=tuple(sorted(actions, key=lambda a: a.at)),
        failpoint_share=0.6,
    )
