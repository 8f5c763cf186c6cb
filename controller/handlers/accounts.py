"""kopf handlers for ExchangeAccount: a periodic readiness check (credentials, reachability, markets)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import ccxt
import kopf

from controller.api.v1alpha1 import GROUP, VERSION, ConditionStatus, ExchangeAccountStatus
from controller.api.vocabulary import ConditionType, EventType, Reason
from controller.exchange.errors import describe
from controller.handlers.runtime import AccountNotReady, Runtime
from controller.reconcile.status import set_condition

READY_CHECK_SECONDS = 15.0


@kopf.timer(GROUP, VERSION, "exchangeaccounts", interval=READY_CHECK_SECONDS)
async def account_ready(
    namespace: str | None, name: str, body: kopf.Body, status: kopf.Status, meta: kopf.Meta, memo: kopf.Memo, **_: Any
) -> None:
    runtime: Runtime = memo["runtime"]
    assert namespace is not None, "Warden's resources are namespaced"
    if not runtime.may_act():
        return
    ok, reason, message = True, Reason.READY, "credentials found, exchange reachable, markets loaded"
    try:
        account = await runtime.account(namespace, name)
        gateway = account.gateway
        await gateway.load_markets()
        # The observer's timed reads are signed: one within two of their intervals proves the credentials.
        answered = runtime.observed_at.get(f"{namespace}/{name}", -math.inf)
        if time.monotonic() - answered > max(READY_CHECK_SECONDS, 2 * account.observer.interval()):
            await gateway.client.fetch_balance()  # no signed read proved the credentials lately: one of its own
    except AccountNotReady as problem:
        ok, reason, message = False, problem.reason, problem.message
    except ccxt.BaseError as error:
        ok, reason, message = False, Reason.EXCHANGE_UNREACHABLE, describe(error)
    current = ExchangeAccountStatus.model_validate(dict(status))
    flag = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
    previous = next((c for c in current.conditions if c.type == ConditionType.READY), None)
    if previous is not None and previous.status is flag and previous.reason == reason:
        return
    conditions = set_condition(
        current.conditions, ConditionType.READY, flag, reason, message, meta.get("generation", 1), datetime.now(UTC)
    )
    updated = current.model_copy(update={"conditions": conditions, "observedGeneration": meta.get("generation")})
    await runtime.kube.patch_status(
        "exchangeaccounts", namespace, name, updated.model_dump(mode="json", exclude_none=True)
    )
    (kopf.info if ok else kopf.warn)(body, reason=reason, message=message)
    await runtime.audit_event(
        EventType.ACCOUNT_READY if ok else EventType.ACCOUNT_NOT_READY,
        message,
        namespace=namespace,
        name=name,
        reason=reason,
    )
