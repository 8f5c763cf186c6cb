"""Fault injection: rules that make the paper venue fail the way Binance does, and a log of every fault injected.

A rule targets an endpoint (``method`` + ``path``, ``*`` for any; a path ending in ``*`` is a prefix) and
optionally one ``apiKey``; it fires with ``probability`` (a seeded RNG, so a run is reproducible) and, with
``count``, only for the next N matching calls. Added latency stacks with whatever else fires; of the other rules
the first that fires (in the order added) decides the response. Modes and what the client sees:

* ``latency`` (``latencyMs``): the answer comes late.
* ``http_error`` (``status`` 500/502/503): a non-JSON gateway page; the request was not executed.
* ``disconnected``: HTTP 503 ``-1001``; not executed.
* ``timeout``: HTTP 408 ``-1007`` "execution status unknown"; with ``executed: true`` the request was executed first.
* ``drop``: the request is executed, then the connection is closed without any response.
* ``rate_limit`` / ``ban``: HTTP 429 / 418 ``-1003`` with ``Retry-After`` (``retryAfterS``).
* ``maintenance`` (``durationMs``): every matching request is refused with HTTP 503 for that window, starting now.
* ``truncated``: the request is executed; the JSON answer is cut off halfway (a proxy that lost the connection).
* ``missing_field`` (``field``): the request is executed; ``field`` is removed from every object of the JSON answer.
* ``wrong_type`` (``field``, ``value``): the request is executed; ``field`` holds ``value`` (any JSON, default
  ``null``) in every object of the JSON answer that has it, e.g. a number where Binance sends a string.

On Bybit's paths (``/v5/``) the same modes answer in Bybit's shapes (``_bybit_fault_response``): 10016 for
``disconnected``, HTTP 504 for ``timeout``, 10006 for ``rate_limit``, HTTP 403 for ``ban``, an HTTP 503 page for
``maintenance``.

Admin actions that break a position from outside (a stop cancelled by the venue, a position closed on the website)
are recorded here too (:meth:`FaultInjector.record`), so a test can assert on one log.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from paper.requestlog import BYBIT_PREFIX, RequestRecord, record_of

CORRUPTING_MODES = frozenset({"truncated", "missing_field", "wrong_type"})
"""Modes that execute the request and then spoil its answer."""
MODES = frozenset(
    {"latency", "http_error", "disconnected", "timeout", "drop", "rate_limit", "ban", "maintenance", *CORRUPTING_MODES}
)
HTTP_ERROR_STATUSES = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
ANY = "*"
_RULE_KEYS = frozenset(
    {
        "mode",
        "method",
        "path",
        "apiKey",
        "probability",
        "count",
        "latencyMs",
        "status",
        "executed",
        "retryAfterS",
        "durationMs",
        "field",
        "value",
    }
)

DISCONNECTED = {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
TIMEOUT = {
    "code": -1007,
    "msg": "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
}
# ccxt maps this message to OnMaintenance (an ExchangeNotAvailable); Binance answers maintenance with HTTP 503.
MAINTENANCE = {"code": 1, "msg": "System is under maintenance."}
# Bybit's shapes of the same faults (ccxt: 10016 ExchangeError, 504 RequestTimeout, 10006 and 403
# RateLimitExceeded, 503 ExchangeNotAvailable).
BYBIT_RESTARTING = (10016, "Service is restarting, please try again later")
BYBIT_TOO_MANY = (10006, "Too many visits!")


class FaultSpecError(ValueError):
    """A fault rule that cannot be understood (the admin API answers 400)."""


@dataclass
class FaultRule:
    id: int
    mode: str
    method: str = ANY
    path: str = ANY
    api_key: str | None = None
    probability: float = 1.0
    remaining: int | None = None  # calls left to fault; None: no limit
    latency_ms: int = 0
    status: int = 503
    executed: bool = False
    retry_after_s: int = 60
    until: int | None = None  # end of a maintenance window
    field: str | None = None  # the JSON key a corrupting mode removes or retypes
    value: Any = None  # what ``wrong_type`` puts there
    fired: int = 0

    def targets(self, method: str, path: str, api_key: str | None) -> bool:
        if self.method not in (ANY, method):
            return False
        if self.api_key is not None and self.api_key != api_key:
            return False
        if self.path.endswith(ANY):
            return path.startswith(self.path[:-1])
        return self.path == path

    def active(self, now: int) -> bool:
        if self.mode == "maintenance":
            return self.until is not None and now < self.until
        return self.remaining is None or self.remaining > 0

    def as_json(self, now: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "method": self.method,
            "path": self.path,
            "apiKey": self.api_key,
            "probability": self.probability,
            "remaining": self.remaining,
            "latencyMs": self.latency_ms,
            "status": self.status,
            "executed": self.executed,
            "retryAfterS": self.retry_after_s,
            "until": self.until,
            "field": self.field,
            "value": self.value,
            "fired": self.fired,
            "active": self.active(now),
        }


@dataclass(frozen=True)
class FaultEvent:
    time: int
    mode: str
    rule_id: int | None
    method: str | None = None
    path: str | None = None
    api_key: str | None = None
    client_order_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "mode": self.mode,
            "ruleId": self.rule_id,
            "method": self.method,
            "path": self.path,
            "apiKey": self.api_key,
            "clientOrderId": self.client_order_id,
            **self.detail,
        }


def _int(spec: dict[str, Any], name: str, default: int, minimum: int) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FaultSpecError(f"'{name}' must be an integer >= {minimum}")
    return value


class FaultInjector:
    def __init__(self, clock: Callable[[], int], seed: int = 0) -> None:
        self._clock = clock
        self._rng = random.Random(seed)
        self._next_id = 1
        self.rules: list[FaultRule] = []
        self.events: list[FaultEvent] = []
        self.counters: Counter[str] = Counter()

    def add(self, spec: dict[str, Any]) -> FaultRule:
        """Add a rule from its JSON/YAML form (see the module docstring); raises :class:`FaultSpecError`."""
        unknown = set(spec) - _RULE_KEYS
        if unknown:
            raise FaultSpecError(f"unknown fault rule keys: {sorted(unknown)}")
        mode = spec.get("mode")
        if mode not in MODES:
            raise FaultSpecError(f"'mode' must be one of {sorted(MODES)}")
        method, path, api_key = spec.get("method", ANY), spec.get("path", ANY), spec.get("apiKey")
        if not all(isinstance(v, str) for v in (method, path)) or not isinstance(api_key, str | None):
            raise FaultSpecError("'method', 'path' and 'apiKey' must be strings")
        probability = spec.get("probability", 1.0)
        if isinstance(probability, bool) or not isinstance(probability, int | float) or not 0 < probability <= 1:
            raise FaultSpecError("'probability' must be a number in (0, 1]")
        count = spec.get("count")
        status = _int(spec, "status", 503, 0)
        if mode == "http_error" and status not in HTTP_ERROR_STATUSES:
            raise FaultSpecError(f"'status' must be one of {sorted(HTTP_ERROR_STATUSES)}")
        executed = spec.get("executed", False)
        if not isinstance(executed, bool):
            raise FaultSpecError("'executed' must be true or false")
        if mode == "latency" and "latencyMs" not in spec:
            raise FaultSpecError("a latency rule needs 'latencyMs'")
        if mode == "maintenance" and "durationMs" not in spec:
            raise FaultSpecError("a maintenance rule needs 'durationMs'")
        field_name = spec.get("field")
        if mode in ("missing_field", "wrong_type") and not (isinstance(field_name, str) and field_name):
            raise FaultSpecError(f"a {mode} rule needs 'field' (a JSON key)")
        rule = FaultRule(
            id=self._next_id,
            mode=mode,
            method=method.upper(),
            path=path,
            api_key=api_key,
            probability=float(probability),
            remaining=None if count is None else _int(spec, "count", 1, 1),
            latency_ms=_int(spec, "latencyMs", 0, 0),
            status=status,
            executed=executed,
            retry_after_s=_int(spec, "retryAfterS", 60, 1),
            until=self._clock() + _int(spec, "durationMs", 0, 1) if mode == "maintenance" else None,
            field=field_name,
            value=spec.get("value"),
        )
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule, the log and the counters."""
        self.rules.clear()
        self.events.clear()
        self.counters.clear()

    def record(
        self, mode: str, rule: FaultRule | None = None, record: RequestRecord | None = None, **detail: Any
    ) -> None:
        """Log and count one injected fault (an HTTP fault of ``record``, or an admin action with ``detail``)."""
        self.events.append(
            FaultEvent(
                time=self._clock(),
                mode=mode,
                rule_id=rule.id if rule else None,
                method=record.method if record else None,
                path=record.path if record else None,
                api_key=record.api_key if record else detail.pop("api_key", None),
                client_order_id=record.client_order_id if record else detail.pop("client_order_id", None),
                detail=detail,
            )
        )
        self.counters[mode] += 1
        if rule is not None:
            rule.fired += 1
            if rule.remaining is not None:
                rule.remaining -= 1

    def _fires(self, rule: FaultRule, now: int, record: RequestRecord) -> bool:
        if not rule.active(now) or not rule.targets(record.method, record.path, record.api_key):
            return False
        # A maintenance window refuses everything it covers; other rules draw from the seeded RNG.
        return rule.mode == "maintenance" or rule.probability >= 1 or self._rng.random() < rule.probability

    def choose(self, record: RequestRecord) -> tuple[int, FaultRule | None]:
        """The latency to add and the rule that decides the response (``None``: answer normally)."""
        now = self._clock()
        latency = 0
        chosen: FaultRule | None = None
        for rule in self.rules:
            if rule.mode != "latency" and chosen is not None:
                continue
            if not self._fires(rule, now, record):
                continue
            self.record(rule.mode, rule, record, **({"executed": rule.executed} if rule.mode == "timeout" else {}))
            if rule.mode == "latency":
                latency += rule.latency_ms
            else:
                chosen = rule
        return latency, chosen

    def as_json(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "rules": [rule.as_json(now) for rule in self.rules],
            "log": [event.as_json() for event in self.events],
            "counters": dict(self.counters),
        }

    def middleware(self) -> Middleware:
        """Apply the rules to every exchange request (not to the admin API)."""

        @web.middleware
        async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
            record = record_of(request)
            if record is None:
                return await handler(request)
            latency_ms, rule = self.choose(record)
            if latency_ms:
                await asyncio.sleep(latency_ms / 1000)
            if rule is None:
                return await handler(request)
            record.fault = rule.mode
            if rule.mode in CORRUPTING_MODES:
                return corrupt(rule, await handler(request))
            if rule.mode == "drop" or (rule.mode == "timeout" and rule.executed):
                response = await handler(request)
                if rule.mode == "drop":
                    record.dropped = True
                    if request.transport is not None:
                        request.transport.abort()  # aiohttp then fails to write and sends nothing
                    return response
            if request.path.startswith(BYBIT_PREFIX):
                return _bybit_fault_response(rule, self._clock())
            return _fault_response(rule, request.remote or "", self._clock())

        return inject


def corrupt(rule: FaultRule, response: web.StreamResponse) -> web.StreamResponse:
    """The executed request's answer, spoilt as the rule says (JSON bodies only)."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    if response.content_type != "application/json":
        return response
    body = response.body
    if rule.mode == "truncated":
        response.body = body[: len(body) // 2]
    else:
        response.body = json.dumps(_rewrite(json.loads(body), rule)).encode()
    return response


def _rewrite(node: Any, rule: FaultRule) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, rule) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: _rewrite(value, rule) for key, value in node.items() if key != rule.field}
    if rule.mode == "wrong_type" and rule.field in node:
        rewritten[rule.field] = rule.value
    return rewritten


def _fault_response(rule: FaultRule, ip: str, now: int) -> web.Response:
    if rule.mode == "http_error":
        reason = HTTP_ERROR_STATUSES[rule.status]
        page = f"<html><body><h1>{rule.status} {reason}</h1></body></html>"
        return web.Response(status=rule.status, text=page, content_type="text/html")
    if rule.mode == "disconnected":
        return web.json_response(DISCONNECTED, status=503)
    if rule.mode == "timeout":
        return web.json_response(TIMEOUT, status=408)
    if rule.mode == "maintenance":
        return web.json_response(MAINTENANCE, status=503)
    retry = {"Retry-After": str(rule.retry_after_s)}
    if rule.mode == "rate_limit":
        msg = f"Too many requests; current limit of IP({ip}) is 2400 requests per minute."
        return web.json_response({"code": -1003, "msg": msg}, status=429, headers=retry)
    until = now + rule.retry_after_s * 1000
    msg = f"Way too many requests; IP({ip}) banned until {until}. Please use the websocket for live updates."
    return web.json_response({"code": -1003, "msg": msg}, status=418, headers=retry)


def _bybit_fault_response(rule: FaultRule, now: int) -> web.Response:
    if rule.mode in ("disconnected", "rate_limit"):
        code, msg = BYBIT_RESTARTING if rule.mode == "disconnected" else BYBIT_TOO_MANY
        body = {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": now}
        return web.json_response(body)
    status, text = {
        "http_error": (rule.status, HTTP_ERROR_STATUSES.get(rule.status, "")),
        "timeout": (504, "Gateway Timeout"),
        "maintenance": (503, "Service Unavailable"),
        "ban": (403, "access too frequent"),
    }[rule.mode]
    return web.Response(
        status=status, text=f"<html><body><h1>{status} {text}</h1></body></html>", content_type="text/html"
    )


def read_rules(text: str) -> list[dict[str, Any]]:
    """Fault rules from a YAML (or JSON) document: a list of rules, or a mapping with a ``rules`` list."""
    data = yaml.safe_load(text)
    rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
        raise FaultSpecError("a faults file holds a list of rules, or a mapping with a 'rules' list")
    return rules
