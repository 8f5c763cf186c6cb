"""The account sweep (leader only): cancel Warden orders no live Position owns, report or adopt exchange
positions no Position tracks. The decisions are ``controller.reconcile.sweep.plan_sweep``'s; this runs them.

It reads the whole account (every symbol: two all-symbol open-order calls and the positions, ~85 weight),
so it runs far less often than the per-account observation cycle.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import ccxt
import kopf

from controller.api.display import plain
from controller.api.v1alpha1 import GROUP, VERSION, ExchangeAccountStatus, Side, UntrackedPositions
from controller.api.vocabulary import EventType, ExitReason
from controller.exchange.errors import describe
from controller.handlers.runtime import Account, AccountNotReady, Runtime
from controller.metrics import DRIFT, ORDERS_CANCELED
from controller.reconcile.model import CancelOrder, client_id_prefix
from controller.reconcile.phases import TERMINAL
from controller.reconcile.sweep import Orphan, Owner, Owners, Untracked, plan_sweep

ADOPTED_LABEL = f"{GROUP}/adopted"
log = logging.getLogger("warden.sweep")


def register(interval_s: float) -> None:
    """Registers the sweep with kopf at start: its interval is a setting, known only once they are read."""
    kopf.timer(GROUP, VERSION, "exchangeaccounts", interval=interval_s)(account_sweep)


async def account_sweep(namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    assert namespace is not None, "Warden's resources are namespaced"
    if not runtime.may_act():
        return
    try:
        account = await runtime.account(namespace, name)
        if not account.observer.sweep_due(runtime.observation.sweep_streaming_interval_s):
            return  # the stream would have shown what a sweep looks for
        view = await account.gateway.account_view()  # first: see plan_sweep
        account.observer.swept()
    except (AccountNotReady, ccxt.BaseError) as problem:
        log.warning("sweep of %s/%s skipped: %s", namespace, name, problem)
        return
    current = await runtime.kube.get("exchangeaccounts", namespace, name)
    orphaned = ExchangeAccountStatus.model_validate((current or {}).get("status") or {}).orphanedPositions
    key = f"{namespace}/{name}"
    suspected = runtime.suspected_untracked.get(key, frozenset())
    positions = _of_account(runtime.positions_in(namespace), name)
    plan = plan_sweep(view, map(_owner, positions), orphaned, suspected, Owners.WATCHED)
    if plan.confirm:  # the watch may not show every Position yet (a replica that just took over): ask the API server
        positions = _of_account(await runtime.kube.list("positions", namespace), name)
        plan = plan_sweep(view, map(_owner, positions), orphaned, suspected, Owners.LISTED)
    runtime.suspected_untracked[key] = plan.suspected
    sweep = Sweep(runtime, account, namespace, name, body)
    for orphan in plan.orphans:
        await sweep.orphan(orphan)
    for untracked in plan.untracked:
        await sweep.untracked(untracked, positions)


def _of_account(positions: list[dict[str, Any]], account: str) -> list[dict[str, Any]]:
    return [p for p in positions if p.get("spec", {}).get("accountRef", {}).get("name") == account]


def _owner(position: dict[str, Any]) -> Owner:
    spec, status = position["spec"], position.get("status") or {}
    # An orphaned Position's orders are left alone from the moment it is decided, not only once recorded.
    live = (
        status.get("phase", "Pending") not in {p.value for p in TERMINAL}
        or status.get("exitReason") == ExitReason.ORPHANED
    )
    return Owner(client_id_prefix(position["metadata"]["uid"]), spec["symbol"], Side(spec["side"]), live)


class Sweep:
    def __init__(self, runtime: Runtime, account: Account, namespace: str, name: str, body: kopf.Body) -> None:
        self.runtime, self.account, self.namespace, self.name, self.body = runtime, account, namespace, name, body

    async def report(self, type_: EventType, message: str, once: str, **detail: Any) -> None:
        """A Kubernetes event on the account, an audit row and a metric; a standing finding is reported once
        per replica and account, not every sweep."""
        once = f"{self.namespace}/{self.name}/{once}"
        if once in self.runtime.reported:
            return
        self.runtime.reported.add(once)
        DRIFT.labels(type_.removeprefix("Drift")).inc()
        kopf.warn(self.body, reason=type_, message=message)
        await self.runtime.audit_event(type_, message, namespace=self.namespace, name=self.name, **detail)

    async def orphan(self, orphan: Orphan) -> None:
        detail = {"clientOrderId": orphan.client_order_id, "symbol": orphan.symbol, "repair": orphan.reason}
        if not orphan.cancel:
            message = f"orphan order {orphan.client_order_id}: {orphan.reason}"
            await self.report(EventType.DRIFT_ORPHAN_ORDER, message, f"kept/{orphan.client_order_id}", **detail)
            return
        try:
            await self.account.gateway.execute(orphan.symbol, CancelOrder(orphan.client_order_id, orphan.purpose))
        except ccxt.BaseError as error:  # the next sweep tries again
            log.warning("cancelling orphan %s failed: %s", orphan.client_order_id, describe(error))
            return
        ORDERS_CANCELED.labels("orphan").inc()
        message = f"orphan order {orphan.client_order_id} on {orphan.symbol}: {orphan.reason}"
        await self.report(EventType.DRIFT_ORPHAN_ORDER, message, f"cancelled/{orphan.client_order_id}", **detail)

    async def untracked(self, found: Untracked, positions: list[dict[str, Any]]) -> None:
        policy = self.account.spec.untrackedPositions
        what = f"{plain(found.size)} {found.symbol} {found.side}"
        detail = {"symbol": found.symbol, "side": found.side.value, "size": str(found.size)}
        once = f"untracked/{found.symbol}/{found.side}/{found.size}"
        if policy is UntrackedPositions.IGNORE:
            return
        if policy is UntrackedPositions.ALERT:
            message = f"untracked position {what}: no Position owns it (untrackedPositions: Alert)"
            await self.report(EventType.DRIFT_UNTRACKED_POSITION, message, once, repair="reported", **detail)
            return
        name = self.adoption_name(found, positions)
        if await self.runtime.kube.create("positions", self.namespace, self.adoption(found, name)):
            message = f"untracked position {what}: adopted as Position {name}"
            await self.report(EventType.DRIFT_UNTRACKED_POSITION, message, once, repair=f"adopted as {name}", **detail)

    def adoption_name(self, found: Untracked, positions: list[dict[str, Any]]) -> str:
        """Deterministic: a second sweep (or a second replica) finds the name taken and creates nothing."""
        earlier = [
            p
            for p in positions
            if p["spec"].get("adopted") and p["spec"]["symbol"] == found.symbol and p["spec"]["side"] == found.side
        ]
        symbol = re.sub(r"[^a-z0-9]+", "", found.symbol.split(":")[0].lower())
        return f"adopted-{symbol}-{found.side.value}-{len(earlier) + 1}"

    def adoption(self, found: Untracked, name: str) -> dict[str, Any]:
        stop = self.account.spec.adoptionStopLossPercent
        assert stop is not None, "validated: Adopt requires adoptionStopLossPercent"
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Position",
            "metadata": {"name": name, "labels": {ADOPTED_LABEL: "true"}},
            "spec": {
                "accountRef": {"name": self.name},
                "symbol": found.symbol,
                "side": found.side.value,
                "amount": str(found.size),
                "stopLoss": {"percent": str(stop)},
                "adopted": True,
            },
        }
