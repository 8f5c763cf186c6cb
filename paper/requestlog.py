"""Every exchange request the paper venue receives, as ``GET /_paper/requests`` reports it.

The outermost middleware opens a :class:`RequestRecord` before anything else runs (rate limits and faults read
its parsed parameters) and closes it with the status that was actually sent — ``None`` when a fault
dropped the response — and, on Bybit's paths, the answer's ``retCode``: Bybit refuses with HTTP 200 and a
``retCode`` other than 0, so the status alone does not say whether a Bybit request was refused.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Self

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from paper.auth import parse_params
from paper.models import VenueName

REPLICA_HEADER = "X-Warden-Replica"
EPOCH_HEADER = "X-Warden-Epoch"
ADMIN_PREFIX = "/_paper/"
# Where a request names its order: new orders, look-ups/cancels, algo orders (DELETE spells it in lower case),
# Bybit's orderLinkId.
CLIENT_ID_PARAMS = ("newclientorderid", "origclientorderid", "clientalgoid", "orderlinkid")
# Where the API key travels: Binance, Bybit.
API_KEY_HEADERS = ("X-MBX-APIKEY", "X-BAPI-API-KEY")
# Bybit's paths: their answers carry the ``retCode`` envelope.
BYBIT_PREFIX = "/v5/"
# The log's JSON names of the fields whose Python names differ.
_ROW_KEYS = {"api_key": "apiKey", "client_order_id": "clientOrderId", "ret_code": "retCode"}


@dataclass
class RequestRecord:
    seq: int
    time: int
    method: str
    path: str
    api_key: str | None
    replica: str | None
    client_order_id: str | None
    params: dict[str, str] = field(repr=False)
    weight: int = 0  # set by the rate limiter
    status: int | None = None
    dropped: bool = False
    fault: str | None = None
    epoch: int | None = None  # the sender's leadership term (``X-Warden-Epoch``)
    answered: int | None = None  # when the answer was ready (late, under a ``latency`` fault)
    ret_code: int | None = None  # Bybit's ``retCode`` (None: not a Bybit answer, or not JSON)

    def as_json(self) -> dict[str, Any]:
        kept = {f.name: getattr(self, f.name) for f in fields(LoggedRequest) if f.name != "symbol"}
        return LoggedRequest(**kept, symbol=self.params.get("symbol")).to_row()


@dataclass(frozen=True)
class LoggedRequest:
    """One exchange request as ``/_paper/requests`` reports it (``RequestRecord.as_json``), for the log's readers:
    the chaos checker's evidence and the benchmark. ``time`` is its arrival on the exchange clock."""

    seq: int
    time: int
    method: str
    path: str
    api_key: str | None
    replica: str | None
    client_order_id: str | None
    status: int | None
    dropped: bool
    fault: str | None
    # Absent from older logs:
    epoch: int | None = None
    symbol: str | None = None
    weight: int = 0
    answered: int | None = None  # when the answer was ready
    ret_code: int | None = None  # Bybit's ``retCode``: 0 is success, anything else a refusal

    def to_row(self) -> dict[str, Any]:
        return {_ROW_KEYS.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        values = {}
        for f in fields(cls):
            key = _ROW_KEYS.get(f.name, f.name)
            values[f.name] = row[key] if f.default is MISSING else row.get(key, f.default)
        return cls(**values)

    @property
    def ok(self) -> bool:
        """Answered with success: a 2xx status and, on Bybit, ``retCode`` 0."""
        return self.status is not None and 200 <= self.status < 300 and not self.ret_code


RECORD: web.RequestKey[RequestRecord] = web.RequestKey("paper_request_record", RequestRecord)


def record_of(request: web.Request) -> RequestRecord | None:
    """The record of an exchange request; ``None`` for the admin API."""
    return request.get(RECORD)


def _client_order_id(params: dict[str, str]) -> str | None:
    lowered = {name.lower(): value for name, value in params.items()}
    return next((lowered[name] for name in CLIENT_ID_PARAMS if lowered.get(name)), None)


def request_params(raw_query: str, raw_body: str) -> dict[str, str]:
    """A request's parameters as text: query and form body (Binance), or query and JSON object body (Bybit)."""
    if raw_body.lstrip().startswith("{"):
        try:
            body = json.loads(raw_body)
        except ValueError:
            body = None
        if isinstance(body, dict):
            params = {k: json.dumps(v) if isinstance(v, bool | dict | list) else str(v) for k, v in body.items()}
            return {**params, **parse_params(raw_query, "")}
    return parse_params(raw_query, raw_body)


def venue_of_path(path: str) -> VenueName:
    """Which venue's API a request path is."""
    return VenueName.BYBIT if path.startswith(BYBIT_PREFIX) else VenueName.BINANCE_USDM


def _ret_code(response: web.StreamResponse) -> int | None:
    """The ``retCode`` of a Bybit JSON answer (every one: the front's, its rate limiter's, an injected fault's)."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    if response.content_type != "application/json":
        return None
    try:
        body = json.loads(response.body)
    except ValueError:  # a ``truncated`` fault's cut body
        return None
    code = body.get("retCode") if isinstance(body, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _epoch(header: str | None) -> int | None:
    """The sender's leadership term (Warden's ``X-Warden-Epoch``); absent or malformed: None."""
    return int(header) if header is not None and header.isdigit() else None


class RequestLog:
    """The newest ``capacity`` requests, oldest first."""

    def __init__(self, clock: Callable[[], int], capacity: int = 100_000) -> None:
        self._clock = clock
        self._entries: deque[RequestRecord] = deque(maxlen=capacity)
        self._seq = 0

    async def open(self, request: web.Request) -> RequestRecord:
        params = request_params(request.rel_url.raw_query_string, await request.text())
        self._seq += 1
        return RequestRecord(
            seq=self._seq,
            time=self._clock(),
            method=request.method,
            path=request.path,
            api_key=next((request.headers[h] for h in API_KEY_HEADERS if h in request.headers), None),
            replica=request.headers.get(REPLICA_HEADER),
            epoch=_epoch(request.headers.get(EPOCH_HEADER)),
            client_order_id=_client_order_id(params),
            params=params,
        )

    def append(self, record: RequestRecord) -> None:
        self._entries.append(record)

    def entries(self, api_key: str | None = None, since: int | None = None) -> list[RequestRecord]:
        return [
            r for r in self._entries if (api_key is None or r.api_key == api_key) and (since is None or r.time >= since)
        ]

    def clear(self) -> None:
        self._entries.clear()

    def middleware(self) -> Middleware:
        @web.middleware
        async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(ADMIN_PREFIX):
                return await handler(request)
            record = await self.open(request)
            request[RECORD] = record
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                record.status = exc.status
                raise
            finally:
                record.answered = self._clock()
                self.append(record)
            if not record.dropped:
                record.status = response.status
                if request.path.startswith(BYBIT_PREFIX):
                    record.ret_code = _ret_code(response)
            return response

        return log_requests
