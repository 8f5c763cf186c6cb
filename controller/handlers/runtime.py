"""What every handler shares: Kubernetes access, the audit store, and one exchange client per account."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ccxt

from controller.api.v1alpha1 import ExchangeAccountSpec, PositionMode, Side
from controller.api.vocabulary import EventType, Reason
from controller.audit.store import AuditEvent, AuditUnavailable
from controller.exchange.client import make_exchange
from controller.exchange.gateway import VenueGateway
from controller.exchange.registry import VENUES
from controller.handlers.leader import Leadership
from controller.handlers.marks import MarkFeed
from controller.handlers.observer import AccountObserver, ValuationBudget
from controller.handlers.ports import AuditLog, KubeApi
from controller.metrics import EXCHANGE_REQUESTS, WEIGHT_BUDGET, WEIGHT_USED
from controller.settings import ObservationSettings, Settings

REPLICA_HEADER = "X-Warden-Replica"
EPOCH_HEADER = "X-Warden-Epoch"  # the leadership term a request is sent in (the chaos checker's evidence)
PENDING_LIMIT = 1000
RETIRE_AFTER_SECONDS = 30.0  # longer than any one reconcile pass
ACCOUNT_CACHE_SECONDS = 5.0  # how long an account's object and Secret are reused before reading them again
UNREADY_CACHE_SECONDS = 1.0  # how long an account found not ready is the answer without reading it again
log = logging.getLogger("warden.runtime")


class NotLeader(ccxt.NetworkError):  # type: ignore[misc]
    """Refused before sending: this replica may not act. A network-class error, so its outcome counts as
    unknown (nothing was sent; the next leader looks the order up by its client id)."""


@dataclass(frozen=True)
class Account:
    spec: ExchangeAccountSpec
    gateway: VenueGateway
    observer: AccountObserver


class AccountNotReady(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Runtime:
    kube: KubeApi
    audit: AuditLog
    settings: Settings = field(default_factory=Settings)
    leadership: Leadership | None = None
    """None runs without leader election (a single replica, e.g. ``make run``)."""
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _accounts: dict[tuple[str, str], tuple[tuple[str, ...], float, Account]] = field(default_factory=dict)
    """(namespace, name) -> (generation and Secret version, monotonic time its read began, the account)."""
    _unready: dict[tuple[str, str], tuple[float, AccountNotReady]] = field(default_factory=dict)
    """(namespace, name) -> when its last read found it not ready, and why: the answer for a second."""
    _retiring: set[asyncio.Task[None]] = field(default_factory=set)
    _rereads: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    """(namespace, name) -> the background re-read of an account whose cached copy is served meanwhile."""
    _reread_failed: set[tuple[str, str]] = field(default_factory=set)
    _feeds: dict[tuple[str, str | None], MarkFeed] = field(default_factory=dict)
    """(venue, API base URL) -> its mark-price stream, shared by the accounts there."""
    """Accounts whose background re-read failed: the next pass reads them itself, and meets the failure."""
    wakes: dict[str, asyncio.Event] = field(default_factory=dict)
    """Position uid -> set when its slice of the account changed (or it must look again)."""
    acted_at: dict[str, float] = field(default_factory=dict)
    """Position uid -> monotonic time of its last exchange action: its next observation must be newer."""
    known_version: dict[str, str] = field(default_factory=dict)
    """Position uid -> the resourceVersion this replica last wrote or read: kopf's body at that version is as fresh
    as a read, and its watch event is no news."""
    suspected_untracked: dict[str, frozenset[tuple[str, Side]]] = field(default_factory=dict)
    """Account label -> untracked exchange positions the last sweep saw (the next one confirms them)."""
    reported: set[str] = field(default_factory=set)
    """Standing sweep findings already reported by this replica."""
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Position uid -> the object as the watch last delivered it (fed by ``positions.position_changed``): what
    the fleet gauges and the sweep read, instead of listing a thousand objects every few seconds (the sweep lists
    them only to confirm an order or a position they do not explain: the watch may not have delivered its owner)."""
    _pending: list[AuditEvent] = field(default_factory=list)
    filled_at: dict[str, float] = field(default_factory=dict)
    """Position uid -> monotonic time its entry fill was seen, until its stop rests (for the latency metric)."""
    unsent_stops: dict[str, tuple[int | None, set[str]]] = field(default_factory=dict)
    """Position uid -> the leadership term, and its pre-recorded stops (``reconciler.pre_recorded``) known in that term
    not to be on the exchange (recorded by this process and not sent since, or looked up and absent): not looked up
    again (``Reconciler.unsent``). Another term starts it over: a leader in between may have sent them."""
    observed_at: dict[str, float] = field(default_factory=dict)
    """Account label -> monotonic time of its last successful signed exchange response."""
    replica: str = field(init=False)
    """This process's name (``settings.scope.replica``), fixed at start."""
    valuations: ValuationBudget = field(init=False)
    """Shared by the account observers: the status writes that only refresh an unrealized PnL, a second."""

    def __post_init__(self) -> None:
        self.replica = self.settings.scope.replica
        self.valuations = ValuationBudget(self.observation.pnl_writes_per_s)

    @property
    def observation(self) -> ObservationSettings:
        return self.settings.observation

    async def audit_event(
        self, type_: EventType, message: str, namespace: str = "", name: str = "", **detail: Any
    ) -> None:
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
        batch = self._pending = [*self._pending, event][-PENDING_LIMIT:]
        try:
            await self.audit.record(batch)
        except AuditUnavailable as error:
            log.warning("%s not yet audited (%d waiting): %s", type_, len(self._pending), error)
            return
        # Drop only what this write carried: a concurrent call may have added an event since (and failed).
        written = {id(e) for e in batch}
        self._pending = [e for e in self._pending if id(e) not in written]

    def positions_in(self, namespace: str | None) -> list[dict[str, Any]]:
        return [p for p in self.positions.values() if namespace is None or p["metadata"]["namespace"] == namespace]

    def lock(self, uid: str) -> asyncio.Lock:
        """Serializes the daemon and the deletion handler of one Position."""
        return self.locks.setdefault(uid, asyncio.Lock())

    def account_lock(self, namespace: str, account_name: str) -> asyncio.Lock:
        """Serializes entry decisions per account, so two Positions cannot both pass a limit only one fits."""
        return self.locks.setdefault(f"account/{namespace}/{account_name}", asyncio.Lock())

    def wake(self, uid: str) -> asyncio.Event:
        return self.wakes.setdefault(uid, asyncio.Event())

    def forget(self, uid: str) -> None:
        """The Position's daemon ended: drop what this replica kept about it."""
        for _, _, account in self._accounts.values():
            account.observer.unwatch(uid)
        for kept in (self.wakes, self.acted_at, self.known_version, self.filled_at, self.unsent_stops):
            kept.pop(uid, None)

    async def account(self, namespace: str, account_name: str, *, fresh: bool = False) -> Account:
        """The account, its exchange client and its observer. Rebuilt when the account or its Secret changes;
        both are re-read at most every few seconds, however many Positions use the account (``fresh``: read
        after this call began). An account last read fine is served at once while an older copy is re-read in the
        background: two API server round trips every few seconds stay off the path of a stop or a cancel. A
        re-read that fails is met by the next pass, which reads the account itself."""
        key = (namespace, account_name)
        cached = self._accounts.get(key)
        if not fresh and cached is not None and key not in self._unready and key not in self._reread_failed:
            if cached[1] <= time.monotonic() - ACCOUNT_CACHE_SECONDS and key not in self._rereads:
                task = asyncio.create_task(self._reread(key), name=f"account-reread/{namespace}/{account_name}")
                self._rereads[key] = task
                task.add_done_callback(lambda _: self._rereads.pop(key, None))
            return cached[2]
        return await self._read(key, fresh)

    async def _reread(self, key: tuple[str, str]) -> None:
        try:
            await self._read(key, fresh=False)
        except AccountNotReady:
            pass  # kept in _unready: the next pass's call raises it
        except Exception as error:
            log.warning("re-reading account %s/%s failed: %s", *key, error)
            self._reread_failed.add(key)

    async def _read(self, key: tuple[str, str], fresh: bool) -> Account:
        """Read (and if changed, rebuild) the account unless a read newer than the cache's age or ``fresh``'s start
        already did."""
        namespace, account_name = key
        since = time.monotonic() - (0.0 if fresh else ACCOUNT_CACHE_SECONDS)
        cached = self._accounts.get(key)
        if cached is not None and cached[1] > since:
            return cached[2]
        # One read (and build) of an account at a time: after a failover every Position of the account asks at
        # once, and each would read the account and its Secret, build clients, load markets and start an
        # observer of its own that nothing stops.
        async with self.locks.setdefault(f"account-read/{namespace}/{account_name}", asyncio.Lock()):
            cached = self._accounts.get(key)
            if cached is not None and cached[1] > since:
                return cached[2]
            # A Position whose account is not ready looks again within a second; its account's others ask too.
            unready = self._unready.get(key)
            if unready is not None and unready[0] > max(since, time.monotonic() - UNREADY_CACHE_SECONDS):
                raise unready[1].with_traceback(None)
            try:
                account = await self._read_account(key, cached)
            except AccountNotReady as problem:
                self._unready[key] = (time.monotonic(), problem)
                raise
            self._unready.pop(key, None)
            self._reread_failed.discard(key)
            return account

    async def _read_account(
        self, key: tuple[str, str], cached: tuple[tuple[str, ...], float, Account] | None
    ) -> Account:
        namespace, account_name = key
        read_at = time.monotonic()
        obj = await self.kube.get("exchangeaccounts", namespace, account_name)
        if obj is None:
            raise AccountNotReady(
                Reason.ACCOUNT_NOT_FOUND, f"ExchangeAccount {account_name!r} not found in {namespace}"
            )
        spec = ExchangeAccountSpec.model_validate(obj["spec"])
        try:
            secret = await self.kube.secret(namespace, spec.credentialsSecretRef.name)
        except Exception as error:
            status = getattr(error, "status", None)
            raise AccountNotReady(
                Reason.CREDENTIALS_NOT_FOUND,
                f"Secret {spec.credentialsSecretRef.name!r} could not be read (HTTP {status})",
            ) from None
        data = secret.data or {}
        if "apiKey" not in data or "secret" not in data:
            raise AccountNotReady(Reason.CREDENTIALS_INVALID, "the Secret must have the keys `apiKey` and `secret`")
        # The spec's generation, not the resourceVersion: status writes and kopf's annotations change the
        # latter every few seconds, and each rebuild would start the account's observation over.
        version = (str(obj["metadata"].get("generation")), secret.metadata.resource_version)
        if cached is not None and cached[0] == version:
            self._accounts[key] = (version, read_at, cached[2])
            return cached[2]
        label = f"{namespace}/{account_name}"
        credentials = (base64.b64decode(data["apiKey"]).decode(), base64.b64decode(data["secret"]).decode())

        def client(pro: bool) -> Any:
            made = make_exchange(
                spec.exchange, *credentials, base_url=spec.apiBaseUrl, headers={REPLICA_HEADER: self.replica}, pro=pro
            )
            self._fence(made, label, VENUES[spec.exchange].gateway.budget.per_minute)
            return made

        gateway = VENUES[spec.exchange].gateway(client(pro=False), hedged=spec.positionMode is PositionMode.HEDGE)
        observer = AccountObserver(
            label,
            gateway,
            self.may_act,
            weight_per_minute=self.observation.weight_per_minute,
            floor_seconds=self.observation.interval_s,
            stream_client=client(pro=True) if self.observation.user_stream else None,
            marks=self._feed(spec) if self.observation.user_stream else None,
            safety_weight_per_minute=self.observation.safety_weight_per_minute,
            keepalive_s=self.observation.stream_keepalive_s,
            valuations=self.valuations,
        )
        if cached is not None:
            for uid, watcher in cached[2].observer.watchers.items():
                observer.watch(uid, watcher)
            retired = asyncio.create_task(self._retire(cached[2]))
            self._retiring.add(retired)
            retired.add_done_callback(self._retiring.discard)
        account = Account(spec, gateway, observer)
        self._accounts[key] = (version, read_at, account)
        return account

    def _feed(self, spec: ExchangeAccountSpec) -> MarkFeed | None:
        venue = VENUES[spec.exchange]
        method = venue.gateway.stream.marks
        if method is None:
            return None
        key = (spec.exchange, spec.apiBaseUrl)
        if key not in self._feeds:
            label = f"{spec.exchange} marks"
            made = make_exchange(
                spec.exchange, "", "", base_url=spec.apiBaseUrl, headers={REPLICA_HEADER: self.replica}, pro=True
            )
            self._fence(made, label, venue.gateway.budget.per_minute)  # its market list is a REST read
            self._feeds[key] = MarkFeed(label, made, method, self.may_act, self.observation.interval_s)
        return self._feeds[key]

    async def _retire(self, account: Account) -> None:
        """Close a replaced account's clients once the passes that still hold them are done with them."""
        try:
            await account.observer.close()
            await asyncio.sleep(RETIRE_AFTER_SECONDS)
        finally:
            await account.gateway.close()

    def _fence(self, client: Any, account: str, budget_per_minute: int) -> None:
        """Every exchange request checks leadership right before it leaves, so a replica that lost (or never
        held) the lease sends nothing, even from a pass that began while it was leader. Also counts requests
        and reads the exchange's own weight counter."""
        send = client.fetch
        WEIGHT_BUDGET.labels(account).set(budget_per_minute)
        for result in ("ok", "error"):
            EXCHANGE_REQUESTS.labels(account, result)  # present from the start, so increase() sees the first

        async def fenced(*args: Any, **kwargs: Any) -> Any:
            if not self.may_act():
                raise NotLeader(f"replica {self.replica} does not hold the leader lease")
            if self.epoch is not None:
                client.headers[EPOCH_HEADER] = str(self.epoch)
            try:
                response = await send(*args, **kwargs)
            except Exception:
                EXCHANGE_REQUESTS.labels(account, "error").inc()
                raise
            EXCHANGE_REQUESTS.labels(account, "ok").inc()
            headers = kwargs.get("headers", args[2] if len(args) > 2 else None) or {}
            if client.apiKey and client.apiKey in headers.values():  # signed (ccxt.fetch(url, method, headers, body))
                self.observed_at[account] = time.monotonic()
            used = (client.last_response_headers or {}).get("X-MBX-USED-WEIGHT-1M")
            if used is not None:
                WEIGHT_USED.labels(account).set(int(used))
            return response

        client.fetch = fenced

    def may_act(self) -> bool:
        return self.leadership is None or self.leadership.may_act()

    @property
    def epoch(self) -> int | None:
        return None if self.leadership is None else self.leadership.epoch

    async def stop_observing(self) -> None:
        """Shutting down, once no handler runs: every account's observation ends (reads under way and user-data
        streams included), all at once: each ccxt client's close pauses a quarter of a second."""
        feeds, self._feeds = list(self._feeds.values()), {}  # closed once: ``close`` follows
        await asyncio.gather(
            *(account.observer.close() for _, _, account in self._accounts.values()),
            *(feed.close() for feed in feeds),
        )

    async def close(self) -> None:
        for task in [*self._retiring, *self._rereads.values()]:
            task.cancel()
        await asyncio.gather(*self._retiring, *self._rereads.values(), return_exceptions=True)
        for _, _, account in self._accounts.values():
            await account.observer.close()
            await account.gateway.close()
        self._accounts.clear()
        for feed in self._feeds.values():
            await feed.close()
        self._feeds.clear()
        await self.audit.close()
