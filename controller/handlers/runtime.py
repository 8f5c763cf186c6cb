"""What every handler shares: Kubernetes access, the audit store, and one exchange client per account."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.api.v1alpha1 import ExchangeAccountSpec
from controller.audit.store import AuditEvent, AuditStore, AuditUnavailable
from controller.exchange.client import make_exchange
from controller.exchange.gateway import Gateway
from controller.handlers.kube import Kube

REPLICA_HEADER = "X-Warden-Replica"
PENDING_LIMIT = 1000
log = logging.getLogger("warden.runtime")


class AccountNotReady(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Runtime:
    kube: Kube
    audit: AuditStore
    replica: str = field(default_factory=lambda: os.environ.get("WARDEN_REPLICA_ID") or socket.gethostname())
    interval: float = float(os.environ.get("WARDEN_RECONCILE_INTERVAL", "1.0"))
    epoch: int | None = None
    """The leadership term this replica acts in (None until leader election assigns one)."""
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _gateways: dict[tuple[str, str], tuple[tuple[str, ...], Gateway]] = field(default_factory=dict)
    _pending: list[AuditEvent] = field(default_factory=list)

    async def audit_event(self, type_: str, message: str, namespace: str = "", name: str = "", **detail: Any) -> None:
        """An event about the controller or an account (not a Position). While the store is down these wait
        in memory (bounded) and go out with the next successful write."""
        event = AuditEvent(
            position_uid=None,
            namespace=namespace,
            name=name or self.replica,
            type=type_,
            occurred_at=datetime.now(UTC),
            message=message,
            detail=detail,
            key=datetime.now(UTC).isoformat(),
            epoch=self.epoch,
            replica=self.replica,
        )
        self._pending = [*self._pending, event][-PENDING_LIMIT:]
        try:
            await self.audit.record(self._pending)
        except AuditUnavailable as error:
            log.warning("%s not yet audited (%d waiting): %s", type_, len(self._pending), error)
            return
        self._pending = []

    def lock(self, uid: str) -> asyncio.Lock:
        """Serializes the daemon and the deletion handler of one Position."""
        return self.locks.setdefault(uid, asyncio.Lock())

    async def gateway(self, namespace: str, account_name: str) -> Gateway:
        """The account's exchange client; rebuilt when the account or its Secret changes."""
        account = await self.kube.get("exchangeaccounts", namespace, account_name)
        if account is None:
            raise AccountNotReady("AccountNotFound", f"ExchangeAccount {account_name!r} not found in {namespace}")
        spec = ExchangeAccountSpec.model_validate(account["spec"])
        try:
            secret = await self.kube.secret(namespace, spec.credentialsSecretRef.name)
        except Exception as error:
            status = getattr(error, "status", None)
            raise AccountNotReady(
                "CredentialsNotFound",
                f"Secret {spec.credentialsSecretRef.name!r} could not be read (HTTP {status})",
            ) from None
        data = secret.data or {}
        if "apiKey" not in data or "secret" not in data:
            raise AccountNotReady("CredentialsInvalid", "the Secret must have the keys `apiKey` and `secret`")
        version = (account["metadata"]["resourceVersion"], secret.metadata.resource_version)
        cached = self._gateways.get((namespace, account_name))
        if cached is not None and cached[0] == version:
            return cached[1]
        if cached is not None:
            await cached[1].close()
        client = make_exchange(
            spec.exchange,
            base64.b64decode(data["apiKey"]).decode(),
            base64.b64decode(data["secret"]).decode(),
            base_url=spec.apiBaseUrl,
            headers={REPLICA_HEADER: self.replica},
        )
        gateway = Gateway(client)
        self._gateways[(namespace, account_name)] = (version, gateway)
        return gateway

    async def close(self) -> None:
        for _, gateway in self._gateways.values():
            await gateway.close()
        self._gateways.clear()
        await self.audit.close()
