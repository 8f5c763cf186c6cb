"""kopf handlers for Position: one daemon per Position reconciles; deletion closes first."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from controller.api.v1alpha1 import GROUP, VERSION, Phase, PositionSpec, PositionStatus
from controller.handlers.reconciler import Reconciler, Target
from controller.handlers.runtime import Runtime
from controller.reconcile.planner import PAUSE_ANNOTATION, TERMINAL

TERMINAL_RECHECK_SECONDS = 30.0
log = logging.getLogger("warden.positions")


async def reconcile(runtime: Runtime, namespace: str, name: str, body: Any, deleting: bool) -> PositionStatus | None:
    """One pass, serialized per Position. Reads the object fresh so a crash never acts on a stale status."""
    uid = body["metadata"]["uid"]
    async with runtime.lock(uid):
        obj = await runtime.kube.get("positions", namespace, name)
        if obj is None:
            return None
        status = PositionStatus.model_validate(obj.get("status") or {})
        if deleting and status.entryOrder is None and not status.auditBacklog:
            # The intent is recorded before any order is sent, so nothing exists on the exchange:
            # deletion needs neither the account nor the exchange.
            return status.model_copy(update={"phase": Phase.CLOSED})
        try:
            spec = PositionSpec.model_validate(obj["spec"])
        except ValidationError as error:
            message = f"invalid spec: {error.errors()[0]['msg']}"
            kopf.warn(body, reason="PositionRejected", message=message)
            await runtime.kube.patch_status(
                "positions", namespace, name, {"phase": Phase.FAILED.value, "exitReason": "InvalidSpec"}
            )
            return status.model_copy(update={"phase": Phase.FAILED})
        annotations = obj["metadata"].get("annotations") or {}
        paused = annotations.get(PAUSE_ANNOTATION) == "true"
        target = Target(namespace, name, uid, obj["metadata"].get("generation", 1), spec, body, paused)
        return await Reconciler(runtime, target).run(status, deleting)


@kopf.daemon(GROUP, VERSION, "positions", cancellation_timeout=5.0)
async def position_daemon(
    stopped: kopf.DaemonStopped, namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    runtime: Runtime = memo["runtime"]
    assert namespace is not None, "Warden's resources are namespaced"
    while not stopped:
        if not runtime.may_act():  # a standby watches but never acts
            await stopped.wait(runtime.interval)
            continue
        try:
            status = await reconcile(runtime, namespace, name, body, deleting=False)
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed pass is retried on the next tick; the error is logged with its trace
            log.exception("reconcile of %s/%s failed", namespace, name)
            status = None
        done = status is not None and status.phase in TERMINAL and not status.auditBacklog
        await stopped.wait(TERMINAL_RECHECK_SECONDS if done else runtime.interval)


@kopf.on.delete(GROUP, VERSION, "positions")
async def position_deleted(namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """The finalizer holds the object until the exchange is flat and the leftover stop is gone."""
    runtime: Runtime = memo["runtime"]
    assert namespace is not None, "Warden's resources are namespaced"
    if not runtime.may_act():
        raise kopf.TemporaryError("this replica is not the leader; the leader closes the Position", delay=2)
    status = await reconcile(runtime, namespace, name, body, deleting=True)
    if status is not None and status.phase not in TERMINAL:
        raise kopf.TemporaryError(f"closing before deletion (phase {status.phase.value})", delay=1)
    if status is not None and status.auditBacklog:
        # The backlog lives in this object's status: it must reach the audit store before the object goes.
        raise kopf.TemporaryError(f"{len(status.auditBacklog)} audit records wait for the audit store", delay=2)
