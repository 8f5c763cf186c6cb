"""The account sweep, decided without I/O: Warden orders no live Position owns, and exchange positions no
Position tracks.

Orders are Warden's by the shape of their client id; orders Warden did not create are never touched. An
orphan is cancelled, except a stop while the position it would close is still open on the exchange: it is
then the only protection there is, so it is kept and reported. An untracked position is acted on only when
two sweeps in a row saw it, so a Position that closed between the exchange read and the Kubernetes read is
not mistaken for one.

The owners the replica's watch delivered may lag the exchange read (a replica that just started or took over has
not been shown every Position yet): a plan made from them that would act on anything is made again from Positions
listed from the API server after the exchange read (``Owners``), so no live Position's order is taken for an orphan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from controller.api.v1alpha1 import Side
from controller.reconcile.model import CLIENT_ID_PREFIX_LENGTH, Purpose, Snapshot, is_warden_order, purpose_of

_STOPS = frozenset({Purpose.STOP, Purpose.TRAILING, Purpose.PRE_ARMED})


class Owners(Enum):
    """Where the sweep's owners were read, so whether they can be behind its view of the exchange."""

    WATCHED = "watched"
    """The replica's watch of the fleet: cheap, but it may not yet hold a Position whose orders the view shows."""
    LISTED = "listed"
    """Listed from the API server after the view was read: every Position that could have sent an order in it."""


@dataclass(frozen=True)
class Owner:
    """A Position as the sweep needs it."""

    prefix: str
    symbol: str
    side: Side
    live: bool  # not Closed or Failed


@dataclass(frozen=True)
class Orphan:
    client_order_id: str
    symbol: str
    purpose: Purpose
    cancel: bool
    reason: str


@dataclass(frozen=True)
class Untracked:
    symbol: str
    side: Side
    size: Decimal


@dataclass(frozen=True)
class SweepPlan:
    orphans: tuple[Orphan, ...]
    untracked: tuple[Untracked, ...]
    """Seen by this sweep and the one before."""
    suspected: frozenset[tuple[str, Side]]
    """Seen by this sweep: the next one confirms them."""
    confirm: bool = False
    """Made from watched owners and it would act: nothing is done on it; list the owners and plan again."""


def plan_sweep(
    view: Snapshot,
    owners: Iterable[Owner],
    orphaned: Iterable[str],
    suspected: frozenset[tuple[str, Side]],
    source: Owners,
) -> SweepPlan:
    """``view`` must be read before ``owners`` and ``orphaned``: an order on the exchange then always
    belongs to a Position the sweep knows about (or one that is really gone). Watched owners give no such
    guarantee, so a plan from them acts on nothing: it asks for a listing when it would (``confirm``)."""
    owners = list(owners)
    left_alone = {o.prefix for o in owners if o.live} | set(orphaned)
    orphans = []
    for client_id, open_order in sorted(view.open_orders.items()):
        if not is_warden_order(client_id) or client_id[:CLIENT_ID_PREFIX_LENGTH] in left_alone:
            continue
        purpose = purpose_of(client_id)
        protects = Side.LONG if open_order.side == "sell" else Side.SHORT
        if purpose in _STOPS and view.sizes.get((open_order.symbol, protects)):
            reason = f"kept: the only stop of an open {open_order.symbol} {protects} position; close it or adopt it"
            orphans.append(Orphan(client_id, open_order.symbol, purpose, False, reason))
        else:
            reason = "cancelled: no live Position owns it"
            orphans.append(Orphan(client_id, open_order.symbol, purpose, True, reason))
    tracked = {(o.symbol, o.side) for o in owners if o.live}
    seen = frozenset(key for key, size in view.sizes.items() if size and key not in tracked)
    untracked = tuple(Untracked(symbol, side, view.sizes[(symbol, side)]) for symbol, side in sorted(seen & suspected))
    if source is Owners.WATCHED and (orphans or untracked):
        return SweepPlan((), (), suspected, confirm=True)
    return SweepPlan(tuple(orphans), untracked, seen)
