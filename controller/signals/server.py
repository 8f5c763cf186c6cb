"""The receiver: ``POST /v1/signals/{namespace}/{source}``, answered within 3 s (TradingView gives up after that).

Checks run cheapest first and an unknown source is answered exactly as a wrong token is, so sources cannot be probed:
413 (size), 422 (not JSON), 401 (token or signature), 429 (rate), 422 (fields), 409 (stale), 422 (symbol, limit,
the Position the API server would refuse), then 201 / 200 / 202. A 5xx only when the API server (or the venue, for a
price) cannot be reached: TradingView resends then, and the Position's name makes the resend safe.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import ssl
import time
import uuid
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from controller.api.v1alpha1 import (
    Condition,
    ConditionStatus,
    DesiredState,
    ExchangeAccountSpec,
    SignalSourceSpec,
    SignalSourceStatus,
)
from controller.api.vocabulary import ConditionType, EventType, Reason, SignalOutcome, SignalReason
from controller.audit.store import AuditEvent, AuditStore, AuditUnavailable
from controller.kube import Kube
from controller.metrics import SIGNALS
from controller.settings import Settings
from controller.signals.wire import (
    MAX_BODY,
    SIGNATURE_HEADER,
    SOURCE_LABEL,
    Refusal,
    Signal,
    SignalAction,
    authentic,
    needs_price,
    opening,
    over_limit,
    parse,
    signal_from,
    source_label,
    stale,
    unified_symbol,
)

_T = TypeVar("_T")
log = logging.getLogger("warden.signals")
ANSWER_WITHIN_S = 2.5
"""Under TradingView's 3 s, with room for the audit write and the network."""
AUDIT_WITHIN_S = 0.3
BINANCE_USDM = "https://fapi.binance.com"
SOURCE_CACHE_LIMIT = 1024
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_NO_TOKEN = "no token: compared against anyway, so a missing one costs what a wrong one does"
_EVENT = {
    SignalOutcome.ACCEPTED: EventType.SIGNAL_ACCEPTED,
    SignalOutcome.DUPLICATE: EventType.SIGNAL_DUPLICATE,
    SignalOutcome.REFUSED: EventType.SIGNAL_REFUSED,
}
_CODES = {
    SignalReason.CREATED: 201,
    SignalReason.CLOSED: 200,
    SignalReason.DUPLICATE: 200,
    SignalReason.DRY_RUN: 202,
    SignalReason.UNAUTHORIZED: 401,
    SignalReason.TOO_LARGE: 413,
    SignalReason.STALE: 409,
    SignalReason.MALFORMED: 422,
    SignalReason.INVALID: 422,
    SignalReason.UNKNOWN_SYMBOL: 422,
    SignalReason.OVER_LIMIT: 422,
    SignalReason.RATE_LIMITED: 429,
    SignalReason.UNAVAILABLE: 503,
}


class Unreachable(Exception):
    """The API server or the venue did not answer: 503, and TradingView resends."""


@dataclass(frozen=True)
class Source:
    namespace: str
    name: str
    spec: SignalSourceSpec
    token: str | None
    """None: the Secret or its key ``token`` is missing (every signal is refused, the status says why)."""
    problem: str = ""


@dataclass
class Answer:
    reason: SignalReason
    message: str
    body: dict[str, Any] = field(default_factory=dict)
    source: Source | None = None
    signal: Signal | None = None
    positions: list[str] = field(default_factory=list)
    symbol: str | None = None

    @property
    def code(self) -> int:
        return _CODES[self.reason]


@dataclass
class Tally:
    """A source's counts not yet written to its status."""

    accepted: int = 0
    refused: int = 0
    duplicate: int = 0
    last: datetime | None = None
    problem: str | None = None


class Receiver:
    def __init__(self, settings: Settings, kube: Kube, audit: AuditStore | None) -> None:
        self.settings = settings
        self.kube = kube
        self.audit = audit
        self._sources: dict[tuple[str, str], tuple[float, Source | None]] = {}
        self._recent: dict[tuple[str, str], deque[float]] = {}
        self._tallies: dict[tuple[str, str], Tally] = {}
        self._http: aiohttp.ClientSession | None = None

    # --- the route -------------------------------------------------------------------------------------

    async def receive(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["source"]
        found: list[Source] = []  # the source, once known: every answer at a real source counts in its status
        try:
            async with asyncio.timeout(ANSWER_WITHIN_S):
                answer = await self.decide(request, namespace, name, found)
        except TimeoutError:
            answer = Answer(SignalReason.UNAVAILABLE, "the API server did not answer in time; send it again")
        except Refusal as refusal:
            answer = Answer(refusal.reason, refusal.message)
        except Unreachable as error:
            answer = Answer(SignalReason.UNAVAILABLE, f"{error}; send it again")
        answer.source = found[0] if found else None
        await self.account_for(namespace, name, answer)
        body = {"code": answer.code, "reason": answer.reason.value, "message": answer.message, **answer.body}
        return web.json_response(body, status=answer.code)

    async def decide(self, request: web.Request, namespace: str, name: str, found: list[Source]) -> Answer:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refusal(SignalReason.TOO_LARGE, f"the body is over {MAX_BODY} bytes") from None
        source = await self.source(namespace, name)
        found.extend([source] if source is not None else [])
        # Parsed before the token is checked (it is in the body): malformed is 422 whether the source exists or not.
        data = parse(body)
        if source is None:
            # The work a wrong token costs, so an unknown source cannot be told apart by its answer's time either.
            authentic(body, data, request.headers.get(SIGNATURE_HEADER), _NO_TOKEN, signature_only=False)
        if source is None or not self.trusted(request, body, data, source):
            raise Refusal(SignalReason.UNAUTHORIZED, "wrong or missing token or signature")
        return await self.decide_for(source, data)

    async def decide_for(self, source: Source, data: dict[str, Any]) -> Answer:
        spec = source.spec
        if not self.within_rate(source):
            return Answer(SignalReason.RATE_LIMITED, f"over this source's limits.perMinute ({spec.limits.perMinute})")
        signal = signal_from(data)
        if stale(signal, spec.maxAge, datetime.now(UTC)):
            return Answer(SignalReason.STALE, f"time: {signal.time.isoformat()} is older than maxAge", signal=signal)
        symbol = unified_symbol(signal.symbol, spec.allowedSymbols)
        try:
            if signal.action is SignalAction.CLOSE:
                answer = await self.close(source, signal, symbol)
            else:
                answer = await self.open(source, signal, symbol)
        except Refusal as refusal:
            answer = Answer(refusal.reason, refusal.message)
        answer.signal, answer.symbol = signal, symbol
        return answer

    def trusted(self, request: web.Request, body: bytes, data: dict[str, Any], source: Source) -> bool:
        if not self.client_certificate_ok(request):
            return False
        signature = request.headers.get(SIGNATURE_HEADER)
        ok = authentic(body, data, signature, source.token or _NO_TOKEN, signature_only=source.spec.requireSignature)
        return ok and source.token is not None

    def client_certificate_ok(self, request: web.Request) -> bool:
        if self.settings.signals.client_ca is None:
            return True
        peer = request.transport.get_extra_info("peercert") if request.transport is not None else None
        subject = dict(pair for rdn in (peer or {}).get("subject", ()) for pair in rdn)
        return subject.get("commonName") == self.settings.signals.client_cn

    def within_rate(self, source: Source) -> bool:
        """A sliding minute per source (per receiver process)."""
        per_minute = source.spec.limits.perMinute
        now = time.monotonic()
        recent = self._recent.setdefault((source.namespace, source.name), deque())
        while recent and now - recent[0] >= 60:
            recent.popleft()
        if len(recent) >= per_minute:
            return False
        recent.append(now)
        return True

    # --- open and close ----------------------------------------------------------------------------------

    async def open(self, source: Source, signal: Signal, symbol: str) -> Answer:
        made = opening(source.namespace, source.name, source.spec, signal, symbol)
        price = await self.price(source, symbol) if needs_price(made.spec, source.spec) else None
        if (why := over_limit(made.spec, source.spec, price)) is not None:
            return Answer(SignalReason.OVER_LIMIT, why)
        dry = source.spec.dryRun
        where = {"namespace": source.namespace, "name": made.name}
        created = await self.call(self.kube.create("positions", source.namespace, made.manifest, dry_run=dry))
        if not created:
            return Answer(SignalReason.DUPLICATE, "the signal's Position exists already", where, positions=[made.name])
        if dry:
            body = {**where, "position": made.manifest}
            return Answer(SignalReason.DRY_RUN, "dry run: this Position would be created", body, positions=[made.name])
        return Answer(SignalReason.CREATED, "Position created", where, positions=[made.name])

    async def close(self, source: Source, signal: Signal, symbol: str) -> Answer:
        side = signal.position_side()
        selector = f"{SOURCE_LABEL}={source_label(source.name)}"
        listed = await self.call(self.kube.list("positions", source.namespace, selector))
        names = [
            p["metadata"]["name"]
            for p in listed
            if p["spec"]["symbol"] == symbol
            and (side is None or p["spec"]["side"] == side.value)
            and p["spec"].get("state", DesiredState.OPEN.value) != DesiredState.CLOSED.value
        ]
        body = {"namespace": source.namespace, "names": names}
        if not names:
            return Answer(SignalReason.DUPLICATE, f"no open Position of this source on {symbol} to close", body)
        if source.spec.dryRun:
            return Answer(SignalReason.DRY_RUN, "dry run: these Positions would be closed", body, positions=names)
        for name in names:
            patch = {"spec": {"state": DesiredState.CLOSED.value}}
            await self.call(self.kube.patch("positions", source.namespace, name, patch))
        return Answer(SignalReason.CLOSED, f"closing {len(names)} Position(s)", body, positions=names)

    async def call(self, pending: Awaitable[_T]) -> _T:
        """An API server call; its refusal of a Position is the signal's (422, in its own words)."""
        try:
            return await pending
        except ApiException as error:
            if error.status in (400, 422):
                raise Refusal(SignalReason.INVALID, _api_message(error)) from None
            if error.status in (401, 403, 404):
                # The receiver may not act in this namespace, or it is gone: as for an unknown source.
                raise Refusal(SignalReason.UNAUTHORIZED, "wrong or missing token or signature") from None
            raise Unreachable(f"the API server answered {error.status}") from None
        except OSError as error:
            raise Unreachable(f"the API server cannot be reached ({type(error).__name__})") from None
        except Exception as error:  # urllib3's errors (MaxRetryError, ...) are not OSErrors
            if type(error).__module__.startswith("urllib3"):
                raise Unreachable(f"the API server cannot be reached ({type(error).__name__})") from None
            raise

    async def price(self, source: Source, symbol: str) -> Decimal:
        """The venue's mark price, public (no credentials), for the source's notional limit."""
        account = await self.call(self.kube.get("exchangeaccounts", source.namespace, source.spec.accountRef.name))
        if account is None:
            raise Refusal(
                SignalReason.INVALID, f"accountRef: ExchangeAccount {source.spec.accountRef.name!r} not found"
            )
        base = ExchangeAccountSpec.model_validate(account["spec"]).apiBaseUrl or BINANCE_USDM
        market = symbol.split(":", 1)[0].replace("/", "")
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0))
        try:
            async with self._http.get(f"{base.rstrip('/')}/fapi/v1/premiumIndex", params={"symbol": market}) as got:
                got.raise_for_status()
                index = json.loads(await got.read(), parse_float=Decimal)
            return Decimal(str(index["markPrice"]))
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as error:
            raise Unreachable(f"the venue's price cannot be read ({type(error).__name__})") from None

    # --- sources -----------------------------------------------------------------------------------------

    async def source(self, namespace: str, name: str) -> Source | None:
        """The SignalSource and its token, through a short cache (a flood costs no API calls)."""
        scope = self.settings.scope.namespace
        if (scope is not None and namespace != scope) or not (_NAMESPACE.match(namespace) and _NAME.match(name)):
            return None  # no such object can exist: the API server is not asked
        key = (namespace, name)
        cached = self._sources.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.settings.signals.source_cache_s:
            return cached[1]
        found = await self.read_source(namespace, name)
        if len(self._sources) >= SOURCE_CACHE_LIMIT:
            self._sources.clear()  # bounded, whatever names are probed
        self._sources[key] = (time.monotonic(), found)
        return found

    async def read_source(self, namespace: str, name: str) -> Source | None:
        try:
            obj = await self.call(self.kube.get("signalsources", namespace, name))
        except Refusal:
            return None
        if obj is None:
            return None
        try:
            spec = SignalSourceSpec.model_validate(obj["spec"])
        except ValidationError:
            return None  # the API server validated it; an older schema's object is not trusted
        secret = spec.secretRef.name
        try:
            found = await self.call(self.kube.secret(namespace, secret))
        except Refusal:
            return Source(namespace, name, spec, None, f"Secret {secret!r} could not be read")
        encoded = (found.data or {}).get("token")
        if not encoded:
            return Source(namespace, name, spec, None, f"Secret {secret!r} has no key 'token'")
        return Source(namespace, name, spec, base64.b64decode(encoded).decode())

    # --- what is recorded: audit, metrics, the source's status ------------------------------------------

    async def account_for(self, namespace: str, name: str, answer: Answer) -> None:
        outcome = answer.reason.outcome
        known = answer.source is not None
        SIGNALS.labels(namespace if known else "", name if known else "", outcome.value, answer.reason.value).inc()
        # %r: the names come from the URL, and a newline in them must not forge a log line.
        log.info("signal for %r/%r: %s %s %s", namespace, name, answer.code, answer.reason, ",".join(answer.positions))
        if answer.source is not None:
            tally = self._tallies.setdefault((namespace, name), Tally())
            setattr(tally, outcome.value, getattr(tally, outcome.value) + 1)
            tally.last = datetime.now(UTC)
            tally.problem = answer.source.problem
        await self.record(namespace, name, answer)

    async def record(self, namespace: str, name: str, answer: Answer) -> None:
        if self.audit is None:
            return
        signal = answer.signal
        detail = {
            "source": name,
            "reason": answer.reason.value,
            "code": answer.code,
            "signalId": signal.id if signal else None,
            "action": signal.action.value if signal else None,
            "side": signal.side if signal else None,
            "positions": answer.positions,
        }
        # An accepted signal's event is keyed by its Position: written twice (a crash, a resend), it is one row.
        key = f"signal/{','.join(answer.positions)}" if answer.reason is SignalReason.CREATED else str(uuid.uuid4())
        event = AuditEvent(
            position_uid=None,
            namespace=namespace[:253],
            name=(answer.positions[0] if len(answer.positions) == 1 else name)[:253],
            type=_EVENT[answer.reason.outcome],
            occurred_at=datetime.now(UTC),
            account=answer.source.spec.accountRef.name if answer.source else None,
            symbol=answer.symbol,
            message=f"{answer.code} {answer.message}"[:1024],
            detail=detail,
            key=key,
        )
        try:
            async with asyncio.timeout(AUDIT_WITHIN_S):
                await self.audit.record([event])
        except (AuditUnavailable, TimeoutError) as error:
            log.warning("signal audit event not stored: %s", type(error).__name__)

    async def keep_status(self) -> None:
        """Write each source's new counts to its status, at most every status interval."""
        while True:
            await asyncio.sleep(self.settings.signals.status_interval_s)
            for key in list(self._tallies):
                tally = self._tallies.pop(key)
                try:
                    await self.write_status(*key, tally)
                except (ApiException, Unreachable, Refusal, OSError) as error:
                    log.warning("status of SignalSource %s/%s not written: %s", *key, type(error).__name__)
                    newer = self._tallies.get(key)
                    self._tallies[key] = tally if newer is None else _merged(tally, newer)

    async def write_status(self, namespace: str, name: str, tally: Tally) -> None:
        for _ in range(3):  # another receiver may write between the read and the write: read again
            obj = await self.call(self.kube.get("signalsources", namespace, name))
            if obj is None:
                return
            status = SignalSourceStatus.model_validate(obj.get("status") or {})
            now = datetime.now(UTC)
            ready = Condition(
                type=ConditionType.READY,
                status=ConditionStatus.FALSE if tally.problem else ConditionStatus.TRUE,
                reason=Reason.CREDENTIALS_NOT_FOUND if tally.problem else Reason.READY,
                message=tally.problem or "receiving signals",
                observedGeneration=obj["metadata"].get("generation"),
                lastTransitionTime=now,
            )
            previous = next((c for c in status.conditions if c.type == ConditionType.READY), None)
            if previous is not None and previous.status is ready.status:
                ready = ready.model_copy(update={"lastTransitionTime": previous.lastTransitionTime})
            updated = status.model_copy(
                update={
                    "observedGeneration": obj["metadata"].get("generation"),
                    "accepted": status.accepted + tally.accepted,
                    "refused": status.refused + tally.refused,
                    "duplicate": status.duplicate + tally.duplicate,
                    "lastSignalTime": tally.last,
                    "conditions": [*(c for c in status.conditions if c.type != ConditionType.READY), ready],
                }
            )
            try:
                version = obj["metadata"]["resourceVersion"]
                await self.kube.patch_status(
                    "signalsources", namespace, name, updated.model_dump(mode="json", exclude_none=True), version
                )
                return
            except ApiException as error:
                if error.status != 409:
                    raise

    async def close_http(self) -> None:
        if self._http is not None:
            await self._http.close()


def _merged(older: Tally, newer: Tally) -> Tally:
    return Tally(
        older.accepted + newer.accepted,
        older.refused + newer.refused,
        older.duplicate + newer.duplicate,
        newer.last or older.last,
        newer.problem if newer.problem is not None else older.problem,
    )


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)


def app(receiver: Receiver) -> web.Application:
    application = web.Application(client_max_size=MAX_BODY)
    application.router.add_post("/v1/signals/{namespace}/{source}", receiver.receive)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    application.router.add_get("/healthz", healthz)
    return application


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    signals = settings.signals
    if signals.tls_cert is None or signals.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(signals.tls_cert, signals.tls_key)
    if signals.client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(signals.client_ca)
    return context
