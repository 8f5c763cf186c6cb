"""Leader election on a ``coordination.k8s.io/v1`` Lease: exactly one replica acts.

kopf keeps watching in every replica (so a standby takes over with warm caches), but only the holder of the
Lease reconciles, talks to exchanges or writes status. A holder that cannot renew stops acting on its own
*before* the lease could expire (``renew_deadline`` < ``duration``), measured on the monotonic clock, which
keeps running while a process is paused (SIGSTOP) — so a paused leader that wakes up finds itself expired.
Each acquisition increments ``leaseTransitions``; that number is the epoch written into every audit event.
On a clean shutdown the holder stops acting and hands the Lease back (no holder, as client-go's
``ReleaseOnCancel`` does), so a standby takes over at its next retry instead of after the lease duration.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from controller.api.vocabulary import EventType
from controller.metrics import LEADER, LEASE_TRANSITIONS
from controller.settings import LeaseSettings

log = logging.getLogger("warden.leader")


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


Announce = Callable[[EventType, str, int], Awaitable[None]]


@dataclass
class Leadership:
    identity: str
    settings: LeaseSettings
    announce: Announce | None = None
    epoch: int | None = None
    _renewed_at: float = -math.inf  # monotonic time of the last successful acquire/renew (-inf: never)
    _api: Any = None
    _stopping: bool = False
    # One lease operation at a time: a renewal still in flight must not re-take a lease just released.
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The lease's own thread: in the default executor its renewals queued behind a thousand Positions' API calls
    # and missed the renew deadline (a ramp of 1,000 entries lost the lease over and over).
    _thread: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="lease"))
    gained: asyncio.Event = field(default_factory=asyncio.Event)
    """Pulsed (set, then cleared) when this replica starts a term: what waits on it acts at once."""

    def may_act(self) -> bool:
        """True only while this replica holds a lease it renewed within the renew deadline."""
        return self.epoch is not None and time.monotonic() - self._renewed_at < self.settings.renew_deadline_s

    async def _call(self, operation: Callable[[], bool]) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._thread, operation)

    def api(self) -> Any:
        if self._api is None:
            self._api = kubernetes.client.CoordinationV1Api()
        return self._api

    async def run(self) -> None:
        """Acquire, renew, and step down when renewal fails; until ``release``."""
        while not self._stopping:
            async with self._turn:
                if self._stopping:
                    return
                await self._turn_once()
            await asyncio.sleep(self.settings.retry_s)

    async def _turn_once(self) -> None:
        before = self.epoch
        try:
            held = await self._call(self._try_acquire_or_renew)
        except Exception as error:  # the API server is unreachable: keep trying, never act on stale state
            log.warning("lease %s: %s", self.settings.name, error)
            held = False
        if held and self.epoch != before and self.epoch is not None:
            # Wake the waiters, before the announcement's audit write: set then clear wakes each exactly once.
            self.gained.set()
            self.gained.clear()
            if self.announce is not None:
                await self.announce(
                    EventType.LEADERSHIP_ACQUIRED, f"{self.identity} holds {self.settings.name}", self.epoch
                )
        if not held and self.epoch is not None and not self.may_act():
            await self._step_down("the lease could not be renewed in time")

    async def release(self) -> None:
        """Shutting down: stop acting and contending, hand the Lease back if this replica holds it, then record
        it. Called once kopf has returned, so nothing of this replica is in flight any more."""
        async with self._turn:
            self._stopping = True
            epoch, self.epoch = self.epoch, None
            if epoch is None:
                return
            LEADER.set(0)
            why = "released on shutdown"
            try:
                if not await self._call(self._give_back):
                    why = "shutting down; the lease was no longer this replica's"
            except Exception as error:  # the lease then expires on its own after its duration
                why = f"shutting down; the lease was not released ({error})"
            log.info("leadership ended (epoch %d): %s", epoch, why)
            if self.announce is not None:
                await self.announce(EventType.LEADERSHIP_LOST, why, epoch)

    async def _step_down(self, why: str) -> None:
        epoch, self.epoch = self.epoch, None
        LEADER.set(0)
        log.error("leadership lost (epoch %s): %s", epoch, why)
        if self.announce is not None and epoch is not None:
            await self.announce(EventType.LEADERSHIP_LOST, why, epoch)

    def _give_back(self) -> bool:
        s = self.settings
        lease = self.api().read_namespaced_lease(s.name, s.namespace)
        if lease.spec.holder_identity != self.identity:
            return False  # it expired and someone else holds it now
        now = _now()
        body = self._body(_parse(lease.spec.acquire_time) or now, now, lease.spec.lease_transitions or 0)
        # No holder and a one-second duration: free at once for whoever asks next; the transitions count stays.
        body["spec"].update(holderIdentity=None, leaseDurationSeconds=1)
        body["metadata"]["resourceVersion"] = lease.metadata.resource_version
        try:
            self.api().replace_namespaced_lease(s.name, s.namespace, body)
        except ApiException as error:
            if error.status == 409:
                return False  # changed since the read: no longer ours to give
            raise
        return True

    def _try_acquire_or_renew(self) -> bool:
        s = self.settings
        started = time.monotonic()
        now = _now()
        try:
            lease = self.api().read_namespaced_lease(s.name, s.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            body = self._body(now, now, transitions=1)
            self.api().create_namespaced_lease(s.namespace, body)
            return self._won(started, 1)
        spec = lease.spec
        holder = spec.holder_identity
        renewed = _parse(spec.renew_time) or _parse(spec.acquire_time)
        duration = timedelta(seconds=spec.lease_duration_seconds or s.duration_s)
        transitions = spec.lease_transitions or 0
        restarted = holder == self.identity and self.epoch is None
        if holder == self.identity and self.epoch == transitions:
            body = self._body(_parse(spec.acquire_time) or now, now, transitions)
        elif holder and renewed is not None and renewed + duration > now and not restarted:
            return False  # someone else holds an unexpired lease (or took it from this replica: step down)
        else:
            # Free, expired, or held under this replica's own name by its previous, now dead, process (replica
            # names are unique per process: a pod name, or host and pid): a new term either way.
            transitions += 1
            body = self._body(now, now, transitions)
        body["metadata"]["resourceVersion"] = lease.metadata.resource_version  # lose races, never overwrite
        try:
            self.api().replace_namespaced_lease(s.name, s.namespace, body)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return self._won(started, transitions)

    def _won(self, started: float, transitions: int) -> bool:
        # Count the deadline from before the request: the lease was at least this fresh then.
        self._renewed_at = started
        if self.epoch != transitions:
            self.epoch = transitions
            LEADER.set(1)
            LEASE_TRANSITIONS.inc()
            log.info("leadership acquired: %s holds %s (epoch %d)", self.identity, self.settings.name, transitions)
        return True

    def _body(self, acquired: datetime, renewed: datetime, transitions: int) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.settings.name, "namespace": self.settings.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.settings.duration_s),
                "acquireTime": _micro(acquired),
                "renewTime": _micro(renewed),
                "leaseTransitions": transitions,
            },
        }
