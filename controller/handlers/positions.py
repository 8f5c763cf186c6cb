"""kopf handlers for Position: one daemon per Position reconciles; deletion closes first."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, NamedTuple

import kopf
from pydantic import ValidationError

from controller import failpoints
from controller.api.v1alpha1 import (
    GROUP,
    ORPHANED_LIMIT,
    VERSION,
    ExchangeAccountStatus,
    Phase,
    PositionSpec,
    PositionStatus,
)
from controller.api.vocabulary import EventType, ExitReason
from controller.handlers.reconciler import Reconciler, Target, side_of
from controller.handlers.runtime import NotLeader, Runtime
from controller.reconcile.model import client_id_prefix
from controller.reconcile.phases import TERMINAL
from controller.reconcile.planner import PAUSE_ANNOTATION
from controller.reconcile.status import all_records, recheck_after

TERMINAL_RECHECK_SECONDS = 30.0
log = logging.getLogger("warden.positions")


async def fresh(runtime: Runtime, namespace: str, name: str, body: Any) -> dict[str, Any] | None:
    """The Position as the API server has it now. kopf's live body is that, once the watch has delivered the
    version this replica last wrote or read and nothing since (same resourceVersion); otherwise read it. (A
    Position that writes nothing, e.g. after a restart, is then read once, not at every pass.)"""
    uid = body["metadata"]["uid"]
    known = runtime.known_version.get(uid)
    if known is not None and body["metadata"].get("resourceVersion") == known:
        return dict(body)
    obj = await runtime.kube.get("positions", namespace, name)
    if obj is not None:
        runtime.known_version[uid] = obj["metadata"]["resourceVersion"]
    return obj


async def wait_for_change(stopped: kopf.DaemonStopped, wake: asyncio.Event, seconds: float) -> None:
    """Until the account observer wakes this Position, the object changes (``position_changed``), the daemon
    stops, or ``seconds`` pass. Waiting costs nothing while nothing happens (a thousand daemons wait at once)."""
    if wake.is_set() or stopped:
        return

    async def stopping() -> None:
        await stopped.wait()

    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopping())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class Pass(NamedTuple):
    status: PositionStatus
    spec: PositionSpec | None  # as validated for this pass (None: the pass ended before it or it is invalid)


async def reconcile(runtime: Runtime, namespace: str, name: str, body: Any, deleting: bool) -> Pass | None:
    """One pass, serialized per Position. Reads the object fresh so a crash never acts on a stale status."""
    uid = body["metadata"]["uid"]
    async with runtime.lock(uid):
        obj = await fresh(runtime, namespace, name, body)
        if obj is None:
            return None
        status = PositionStatus.model_validate(obj.get("status") or {})
        # The daemon may begin a pass after the deletion (woken by it before kopf stops it): it plans the way out too.
        deleting = deleting or bool(obj["metadata"].get("deletionTimestamp"))
        # Closed already (by the daemon's pass, say): the deletion has nothing more to record.
        unentered = deleting and status.phase not in TERMINAL and untouched(status)
        try:
            spec = PositionSpec.model_validate(obj["spec"])
        except ValidationError as error:
            if unentered:
                return Pass(status.model_copy(update={"phase": Phase.CLOSED}), None)  # it never was a Position
            message = f"invalid spec: {error.errors()[0]['msg']}"
            kopf.warn(body, reason=EventType.POSITION_REJECTED, message=message)
            await runtime.kube.patch_status(
                "positions", namespace, name, {"phase": Phase.FAILED.value, "exitReason": ExitReason.INVALID_SPEC.value}
            )
            return Pass(status.model_copy(update={"phase": Phase.FAILED}), None)
        annotations = obj["metadata"].get("annotations") or {}
        paused = annotations.get(PAUSE_ANNOTATION) == "true"
        target = Target(namespace, name, uid, obj["metadata"].get("generation", 1), spec, body, paused)
        if unentered:
            return Pass(await Reconciler(runtime, target).close_unentered(status), spec)
        return Pass(await Reconciler(runtime, target).run(status, deleting), spec)


@kopf.daemon(GROUP, VERSION, "positions", cancellation_timeout=5.0)
async def position_daemon(
    stopped: kopf.DaemonStopped, namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    runtime: Runtime = memo["runtime"]
    assert namespace is not None, "Warden's resources are namespaced"
    uid = body["metadata"]["uid"]
    wake = runtime.wake(uid)
    try:
        while not stopped:
            if not runtime.may_act():  # a standby watches but never acts; it acts the moment it leads
                assert runtime.leadership is not None, "without leader election a replica always acts"
                await wait_for_change(stopped, runtime.leadership.gained, runtime.observation.interval_s)
                continue
            wake.clear()  # what happens from here on is seen by this pass or wakes the next one
            try:
                done = await reconcile(runtime, namespace, name, body, deleting=False)
            except asyncio.CancelledError:
                raise
            except NotLeader as lost:  # the new leader carries on; nothing went wrong here
                log.info("pass of %s/%s stopped: %s", namespace, name, lost)
                done = None
            except Exception:  # a failed pass is retried on the next tick; the error is logged with its trace
                log.exception("reconcile of %s/%s failed", namespace, name)
                done = None
            if done is None:
                seconds = runtime.observation.interval_s
            elif done.status.phase in TERMINAL and not done.status.auditBacklog:
                runtime.forget(uid)
                seconds = TERMINAL_RECHECK_SECONDS
            elif done.spec is None:
                seconds = runtime.observation.interval_s
            else:
                now = datetime.now(UTC)
                tuning = runtime.observation
                seconds = recheck_after(done.spec, done.status, now, tuning.idle_recheck_s, tuning.interval_s)
            await wait_for_change(stopped, wake, seconds)
    finally:
        runtime.forget(uid)


@kopf.on.event(GROUP, VERSION, "positions")
async def position_changed(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Keeps ``runtime.positions``; any change but this replica's own status write or a version it already read
    (a spec edit, the pause annotation, a deletion) wakes the Position's daemon at once."""
    runtime: Runtime = memo["runtime"]
    uid = body["metadata"]["uid"]
    if uid not in runtime.positions:
        await failpoints.hold("fleet:first-sight")  # tests: a watch that shows this Position late
    if event.get("type") == "DELETED":
        runtime.positions.pop(uid, None)
    else:
        if uid not in runtime.positions and not body.get("status"):
            wake_side(runtime.positions, runtime.wakes, body)
        runtime.positions[uid] = dict(body)  # each watch event is a new object: a shallow copy keeps it
    wake = runtime.wakes.get(uid)
    if wake is not None and body["metadata"].get("resourceVersion") != runtime.known_version.get(uid):
        wake.set()


def untouched(status: PositionStatus) -> bool:
    """Nothing of the Position can be on the exchange: every order's intent is recorded before it is sent (a
    pre-armed stop's before the entry's), and none is; so deleting it needs neither the account nor the exchange."""
    return not all_records(status) and not status.auditBacklog


def wake_side(positions: dict[str, dict[str, Any]], wakes: dict[str, asyncio.Event], newcomer: Any) -> None:
    """A new Position wakes the others of its account's symbol side at once: one that trails with the venue's
    position-level trailing stop must clear it, and one with a pre-armed stop must cancel it, before the newcomer may
    enter (the newcomer waits for that)."""
    mine = side_of(newcomer)
    for uid, obj in positions.items():
        if side_of(obj) == mine and (wake := wakes.get(uid)) is not None:
            wake.set()


@kopf.on.delete(GROUP, VERSION, "positions")
async def position_deleted(namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """The finalizer holds the object until the exchange is flat and the leftover stop is gone."""
    runtime: Runtime = memo["runtime"]
    assert namespace is not None, "Warden's resources are namespaced"
    if not runtime.may_act():
        raise kopf.TemporaryError("this replica is not the leader; the leader closes the Position", delay=2)
    done = await reconcile(runtime, namespace, name, body, deleting=True)
    status = done.status if done is not None else None
    if status is not None and status.exitReason == ExitReason.ORPHANED:
        await remember_orphaned(runtime, namespace, body)
    if status is not None and status.phase not in TERMINAL:
        raise kopf.TemporaryError(f"closing before deletion (phase {status.phase.value})", delay=1)
    if status is not None and status.auditBacklog:
        # The backlog lives in this object's status: it must reach the audit store before the object goes.
        raise kopf.TemporaryError(f"{len(status.auditBacklog)} audit records wait for the audit store", delay=2)


async def remember_orphaned(runtime: Runtime, namespace: str, body: Any) -> None:
    """Record on the account that this Position's orders are left alone on purpose, before the object goes:
    the orphan-order sweep would otherwise cancel them."""
    account = body["spec"]["accountRef"]["name"]
    obj = await runtime.kube.get("exchangeaccounts", namespace, account)
    if obj is None:
        return  # without the account there is no sweep of it either
    status = ExchangeAccountStatus.model_validate(obj.get("status") or {})
    prefix = client_id_prefix(body["metadata"]["uid"])
    if prefix not in status.orphanedPositions:
        kept = [*status.orphanedPositions, prefix][-ORPHANED_LIMIT:]
        await runtime.kube.patch_status("exchangeaccounts", namespace, account, {"orphanedPositions": kept})
