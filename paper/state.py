"""``--state FILE``: the venue's state survives restarts.

The whole venue (accounts, orders, trades, marks, id counters) and the clock are written as JSON, atomically
(temp file, fsync, rename, fsync of the directory), shortly after every mutating request or price move and on
shutdown, and loaded at start. The encoding is generic over the dataclasses of :mod:`paper.models`
(Decimals as strings, shared records written once and referenced after), so new fields with defaults load from
old files.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from paper import models
from paper.venue import Venue

log = logging.getLogger(__name__)

FORMAT = 1
DEBOUNCE_S = 0.1
# Venue attributes that are configuration or wiring, not state.
NOT_STATE = frozenset({"markets", "clock", "listeners"})
_RECORDS: dict[str, type[Any]] = {
    name: cls for name, cls in inspect.getmembers(models, inspect.isclass) if dataclasses.is_dataclass(cls)
}


class _Encoder:
    def __init__(self) -> None:
        self._seen: dict[int, int] = {}

    def encode(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return {"$dec": str(value)}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            ref = self._seen.get(id(value))
            if ref is not None:
                return {"$ref": ref}
            name = type(value).__name__
            if _RECORDS.get(name) is not type(value):
                raise TypeError(f"cannot save a {name}")
            self._seen[id(value)] = len(self._seen)
            fields = {f.name: self.encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return {"$type": name, "fields": fields}
        if isinstance(value, dict):
            return {"$map": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        if isinstance(value, list | tuple):
            return [self.encode(v) for v in value]
        if value is None or isinstance(value, str | int | float | bool):
            return value
        raise TypeError(f"cannot save a {type(value).__name__}")


class _Decoder:
    def __init__(self) -> None:
        self._objects: list[Any] = []

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "$dec" in value:
            return Decimal(value["$dec"])
        if "$ref" in value:
            return self._objects[value["$ref"]]
        if "$map" in value:
            return {self.decode(k): self.decode(v) for k, v in value["$map"]}
        cls = _RECORDS[value["$type"]]
        slot = len(self._objects)
        self._objects.append(None)  # keeps reference numbers in encoding order
        tuples = {f.name for f in dataclasses.fields(cls) if isinstance(f.default, tuple)}  # JSON has only lists
        known = {f.name for f in dataclasses.fields(cls)}
        decoded = {k: self.decode(v) for k, v in value["fields"].items() if k in known}
        obj = cls(**{k: tuple(v) if k in tuples else v for k, v in decoded.items()})
        self._objects[slot] = obj
        return obj


def snapshot(venue: Venue) -> dict[str, Any]:
    encoder = _Encoder()
    state = {name: encoder.encode(value) for name, value in vars(venue).items() if name not in NOT_STATE}
    return {"format": FORMAT, "clock": venue.clock.snapshot(), "venue": state}


def restore(venue: Venue, saved: dict[str, Any]) -> None:
    """Load a :func:`snapshot` into a fresh venue; markets added since keep their initial marks."""
    if saved.get("format") != FORMAT:
        raise ValueError(f"unsupported state format {saved.get('format')!r}")
    venue.clock.restore(saved["clock"])
    decoder = _Decoder()
    values = {name: decoder.decode(encoded) for name, encoded in saved["venue"].items()}  # all: refs count in order
    current = vars(venue)
    for name, value in values.items():
        if name in NOT_STATE or name not in current:
            continue
        if name in ("marks", "stats"):  # per market: keep markets added since, drop markets removed since
            current[name].update((symbol, v) for symbol, v in value.items() if symbol in venue.markets)
        else:
            current[name] = value


def write_atomically(path: Path, text: str) -> None:
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a crash
    finally:
        os.close(dir_fd)


class StateStore:
    """Keeps ``path`` in step with ``venue``: :meth:`mark_dirty` schedules a debounced write."""

    def __init__(self, venue: Venue, path: Path) -> None:
        self.venue = venue
        self.path = path
        self._dirty = asyncio.Event()

    def load(self) -> bool:
        """Restore the venue from the file if there is one; returns whether it did."""
        if not self.path.exists():
            return False
        restore(self.venue, json.loads(self.path.read_text(encoding="utf-8")))
        log.info("paper exchange: state loaded from %s", self.path)
        return True

    def save(self) -> None:
        self._dirty.clear()
        write_atomically(self.path, json.dumps(snapshot(self.venue), separators=(",", ":")))

    def mark_dirty(self) -> None:
        self._dirty.set()

    async def _writer(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(DEBOUNCE_S)  # one write for a burst of changes
            self.save()

    async def run(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: write while serving, and once more on shutdown."""
        task = asyncio.create_task(self._writer())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.save()

    def middleware(self) -> Middleware:
        @web.middleware
        async def save_after_changes(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                return await handler(request)
            finally:
                if request.method != "GET":
                    self.mark_dirty()

        return save_after_changes
