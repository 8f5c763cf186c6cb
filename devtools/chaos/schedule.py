"""A seeded chaos schedule: which Positions are created on which venue and how they end, and which faults hit when.

The same seed, position count and kill count always give the same schedule (the timing of what the real
processes then do varies from run to run; the evidence of each run is saved with its report). Positions are split
between the paper exchange's venues (a Binance USDⓈ-M and a Bybit account each, one engine behind both), and every
venue fault is armed on each venue's own endpoints.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from paper.models import VenueName

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
LIMIT_OFFSET_PERCENT = Decimal("0.3")
"""How far inside the price a limit entry rests; a dip of twice as much fills it, and triggers no stop (1.5 % away
at least) and no liquidation (2 % at 50x)."""
VENUES = tuple(VenueName)


class Endpoint(StrEnum):
    """What an exchange fault rule hits, named by what Warden does there (each venue spells it its own way)."""

    ORDER = "order"  # placing an entry or a close
    STOP = "stop"  # placing a stop
    CANCEL_STOP = "cancel stop"
    ANY = "any"  # every request of the venue's API


# The (method and) path of each endpoint: Binance keeps stops apart (algo orders); Bybit places and cancels every
# order, conditional or not, on one endpoint each.
ENDPOINTS: dict[VenueName, dict[Endpoint, dict[str, str]]] = {
    VenueName.BINANCE_USDM: {
        Endpoint.ORDER: {"method": "POST", "path": "/fapi/v1/order"},
        Endpoint.STOP: {"method": "POST", "path": "/fapi/v1/algoOrder"},
        Endpoint.CANCEL_STOP: {"method": "DELETE", "path": "/fapi/v1/algoOrder"},
        Endpoint.ANY: {"path": "/fapi/*"},
    },
    VenueName.BYBIT: {
        Endpoint.ORDER: {"method": "POST", "path": "/v5/order/create"},
        Endpoint.STOP: {"method": "POST", "path": "/v5/order/create"},
        Endpoint.CANCEL_STOP: {"method": "POST", "path": "/v5/order/cancel"},
        Endpoint.ANY: {"path": "/v5/*"},
    },
}
# Exchange faults (paper exchange modes) and where they hit, cycled so every mode occurs on every venue.
EXCHANGE_FAULTS: tuple[tuple[dict[str, Any], Endpoint], ...] = (
    ({"mode": "timeout", "executed": True}, Endpoint.STOP),
    ({"mode": "timeout", "executed": False}, Endpoint.ORDER),
    ({"mode": "timeout", "executed": True}, Endpoint.ORDER),
    ({"mode": "drop"}, Endpoint.STOP),
    ({"mode": "drop"}, Endpoint.ORDER),
    ({"mode": "http_error", "status": 503}, Endpoint.ANY),
    ({"mode": "http_error", "status": 500}, Endpoint.STOP),
    ({"mode": "http_error", "status": 502}, Endpoint.CANCEL_STOP),
    ({"mode": "disconnected"}, Endpoint.ANY),
    ({"mode": "rate_limit", "retryAfterS": 1}, Endpoint.ANY),
    ({"mode": "ban", "retryAfterS": 2}, Endpoint.ANY),
    ({"mode": "maintenance", "durationMs": 3000}, Endpoint.ANY),
    ({"mode": "latency", "latencyMs": 1500}, Endpoint.ANY),
)


def fault_rule(venue: VenueName, fault: dict[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    """The paper exchange's rule for ``fault`` on ``venue``'s ``endpoint``."""
    return {**fault, **ENDPOINTS[venue][endpoint]}


# Every step boundary the controller can be stopped at (controller/failpoints.py), cycled.
FAILPOINTS = (
    *(
        f"{point}:{when}"
        for point in ("entry", "stop", "close", "settings", "take_profit", "pre_armed")
        for when in ("before-send", "after-send")
    ),
    "status:before-write",
    "status:after-write",
)


@dataclass(frozen=True, order=True)
class AccountRef:
    """One paper account of the run: the ``index``-th on ``venue``."""

    venue: VenueName
    index: int

    @property
    def namespace(self) -> str:
        return f"chaos-{self.venue.value}-{self.index:02d}"


@dataclass(frozen=True)
class PositionPlan:
    name: str
    venue: VenueName
    slot: int  # on its venue: account index * 4 + symbol index: never shared, never reused
    symbol: str
    side: str
    stop_percent: Decimal
    exit: str
    created_at: float
    exit_at: float
    take_profit: bool = False
    leverage: int | None = None
    pre_arm: bool = False  # ``stopLoss.preArm``: on Binance a closePosition stop rests before the entry
    limit: bool = False
    """A limit entry ``LIMIT_OFFSET_PERCENT`` inside the price, filled by a dip: its stop is recorded with the entry
    and sent on the fill's push (on Binance), so kills at ``stop:before-send`` land on that step too."""

    @property
    def account(self) -> AccountRef:
        return AccountRef(self.venue, self.slot // len(SYMBOLS))

    def stop_price(self) -> Decimal:
        _, base, _, places = MARKETS[self.symbol]
        factor = 1 - self.stop_percent / 100 if self.side == "long" else 1 + self.stop_percent / 100
        return round(base * factor, places)

    def limit_price(self) -> Decimal:
        _, base, _, places = MARKETS[self.symbol]
        offset = LIMIT_OFFSET_PERCENT / 100
        return round(base * (1 - offset if self.side == "long" else 1 + offset), places)

    def manifest(self, account_name: str) -> dict[str, Any]:
        ccxt_symbol, base, amount, places = MARKETS[self.symbol]
        spec: dict[str, Any] = {
            "accountRef": {"name": account_name},
            "symbol": ccxt_symbol,
            "side": self.side,
            "amount": amount,
            "entry": {"type": "limit", "price": str(self.limit_price())} if self.limit else {"type": "market"},
            "stopLoss": {"price": str(self.stop_price()), **({"preArm": True} if self.pre_arm else {})},
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
    def accounts(self) -> list[AccountRef]:
        return sorted({p.account for p in self.positions})

    @property
    def venues(self) -> list[VenueName]:
        return venues_of(self.positions)

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for action in self.actions:
            counted[action.kind] = counted.get(action.kind, 0) + 1
        return counted


def venues_of(positions: tuple[PositionPlan, ...] | list[PositionPlan]) -> list[VenueName]:
    return [v for v in VENUES if any(p.venue is v for p in positions)]


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
    taken = dict.fromkeys(VENUES, 0)  # slots used on each venue
    # Bursts of 1 to 5 Positions created at once; those of a burst that are to be deleted go together too.
    burst_times = _spread(rng, max(1, positions // 3), 2.0, max(3.0, total - life[1] - 5), 0.4)
    sizes = [1] * len(burst_times)
    for _ in range(positions - len(burst_times)):
        sizes[rng.randrange(len(sizes))] += 1
    for at, size in zip(burst_times, sizes, strict=True):
        names: list[str] = []
        delete_at = at + rng.uniform(*life)
        for _ in range(size):
            # The first Positions take every way to end on every venue (even ones Binance, odd ones Bybit, then the
            # other way round), so even a short schedule splits between the venues; the rest are drawn.
            if created < len(EXITS) * len(VENUES):
                exit_ = EXITS[created % len(EXITS)]
                venue = VENUES[(created + created // len(EXITS)) % len(VENUES)]
            else:
                exit_, venue = rng.choice(EXITS), rng.choice(VENUES)
            slot = taken[venue]
            taken[venue] += 1
            plan = PositionPlan(
                name=f"p{created:03d}",
                venue=venue,
                slot=slot,
                symbol=SYMBOLS[slot % len(SYMBOLS)],
                side=rng.choice(("long", "short")),
                stop_percent=Decimal(10) if exit_ == "liquidation" else Decimal(rng.choice(("1.5", "2", "3", "4"))),
                exit=exit_,
                created_at=at,
                exit_at=delete_at if exit_ == "delete" else at + rng.uniform(*life),
                take_profit=exit_ != "liquidation" and rng.random() < 0.3,
                leverage=50 if exit_ == "liquidation" else None,
                # Every other pair of Positions pre-arms its stop (from the count, not the seeded draws, so the rest
                # of a seed's schedule is what it was): on Binance it rests before the entry, on Bybit it is moot.
                pre_arm=created // 2 % 2 == 1,
                # Likewise, Binance Positions that do not pre-arm rest a limit entry (the stop recorded with it is
                # Binance's), but for those to be liquidated: a dip fills it well before any exit's gap.
                limit=created // 2 % 2 == 0 and venue is VenueName.BINANCE_USDM and exit_ != "liquidation",
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
    for p in plans:
        if p.limit:  # a dip through the limit while the Position lives: its fill is pushed
            dip = {"symbol": p.symbol, "percent": str(LIMIT_OFFSET_PERCENT * 2), "side": p.side}
            actions.append(Action(p.created_at + (p.exit_at - p.created_at) * 0.4, "gap", dip))
    for (at, kind), names in sorted(by_exit.items()):
        actions.append(Action(at, kind, {"names": names}))
    # The venue cancels a resting stop of a live Position now and then, on each venue.
    for venue in VENUES:
        on_venue = [p for p in plans if p.venue is venue]
        for p in rng.sample(on_venue, k=max(1, len(on_venue) // 5)) if on_venue else []:
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
    venues = venues_of(plans)
    for i, at in enumerate(_spread(rng, faults, 4.0, total - 5, 0.45)):
        fault, endpoint = EXCHANGE_FAULTS[i % len(EXCHANGE_FAULTS)]
        count = rng.randint(1, 3)
        for venue in venues:  # the same fault on each venue at once: every mode hits both in every schedule
            rule = fault_rule(venue, fault, endpoint) | {"count": count}
            actions.append(Action(at, "exchange_fault", {"venue": venue, "rule": rule}))
    return Plan(
        seed=seed,
        duration=total,
        positions=tuple(plans),
        actions=tuple(sorted(actions, key=lambda a: a.at)),
        failpoint_share=0.6,
    )
