"""What the shell needs of the world, as ``Protocol``s: the Kubernetes API, the audit store, an account's exchange
gateway (the venue port) and observer, and the clock. The runtime passes the real ones; the unit tests pass fakes
(``tests/fakes.py``), so a pass is tested without an API server, a database or an exchange."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from controller.api.v1alpha1 import ExchangeAccountSpec
from controller.audit.store import AuditEvent, Fill
from controller.exchange.port import VenuePort
from controller.handlers.observer import Watcher
from controller.reconcile.model import Snapshot
from controller.settings import ObservationSettings


class KubeApi(Protocol):
    """The Kubernetes API calls Warden makes itself (kopf does the watching)."""

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def list(self, plural: str, namespace: str | None) -> list[dict[str, Any]]: ...

    async def create(self, plural: str, namespace: str, body: dict[str, Any]) -> bool: ...

    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> str: ...

    async def secret(self, namespace: str, name: str) -> Any: ...


class AuditLog(Protocol):
    """The audit store: raises ``AuditUnavailable`` at once while it knows it is down."""

    @property
    def available_soon(self) -> bool: ...

    async def record(self, events: list[AuditEvent]) -> None: ...

    async def record_fills(self, fills: list[Fill]) -> None: ...

    async def close(self) -> None: ...


class AccountWatch(Protocol):
    """An account's shared observation, as one Position uses it."""

    def watch(self, uid: str, watcher: Watcher) -> None: ...

    def interval(self) -> float: ...

    async def snapshot(
        self, symbol: str, newer_than: float, acted_at: float = ..., answered: bool = ..., regular: bool = ...
    ) -> Snapshot: ...

    def acted(self, uid: str) -> None: ...

    def placing_regular(self, uid: str) -> None: ...

    def sending(self, client_id: str, placing: bool) -> None: ...

    def revaluing(self, uid: str) -> bool: ...

    def spent(self, weight: int) -> None: ...


class AccountPort(Protocol):
    @property
    def spec(self) -> ExchangeAccountSpec: ...

    @property
    def gateway(self) -> VenuePort:
        """The account's exchange, through the venue port (``controller.exchange.port``)."""
        ...

    @property
    def observer(self) -> AccountWatch: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time (UTC): what records and conditions carry."""
        ...

    def monotonic(self) -> float:
        """For intervals: never goes back."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class Shell(Protocol):
    """What one reconcile pass needs of the runtime it runs in."""

    @property
    def kube(self) -> KubeApi: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def replica(self) -> str: ...

    @property
    def epoch(self) -> int | None: ...

    @property
    def acted_at(self) -> dict[str, float]: ...

    @property
    def filled_at(self) -> dict[str, float]: ...

    @property
    def unsent_stops(self) -> dict[str, tuple[int | None, set[str]]]: ...

    @property
    def positions(self) -> dict[str, dict[str, Any]]:
        """Position uid -> the object as the watch last delivered it."""
        ...

    @property
    def known_version(self) -> dict[str, str]: ...

    @property
    def observation(self) -> ObservationSettings: ...

    def may_act(self) -> bool: ...

    async def account(self, namespace: str, account_name: str, *, fresh: bool = False) -> AccountPort: ...

    def account_lock(self, namespace: str, account_name: str) -> asyncio.Lock: ...

    def wake(self, uid: str) -> asyncio.Event: ...
