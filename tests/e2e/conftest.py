"""Real components for end-to-end tests: kube-apiserver + etcd, Postgres, the paper exchange, the controller."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from devtools.localenv.processes import Service
from devtools.localenv.stack import PaperAccount, Stack, exchange_account_manifest
from paper.models import VenueName
from tests.e2e import audit_proof

MARK = "65000"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("stack")
    environment = Stack(workdir)
    try:
        environment.start()
        yield environment
        for controller in environment.controllers:
            controller.stop()  # what they did is final before it is checked
        check_the_whole_session(environment)
    finally:
        environment.stop()


def check_the_whole_session(environment: Stack) -> None:
    """See tests/e2e/audit_proof.py."""
    rows = asyncio.run(audit_proof.audit_rows(environment.postgres.url))
    if seen_file := os.environ.get("WARDEN_E2E_SEEN_TYPES"):
        Path(seen_file).write_text("\n".join(sorted({r["type"] for r in rows})) + "\n")
    unknown = audit_proof.uncatalogued(rows)
    assert not unknown, f"audit event types missing from EventType (controller/api/vocabulary.py): {unknown}"
    requests = environment.paper_admin("/_paper/requests")
    assert isinstance(requests, list)
    unaudited = audit_proof.unaudited_exchange_calls(requests, rows)
    assert not unaudited, f"orders or cancels sent without an audit row: {unaudited}"
    listed = json.loads(environment.kubectl("get", "positions", "-A", "-o", "json").stdout)["items"]
    phases = {p["metadata"]["uid"]: (p.get("status") or {}).get("phase", "") for p in listed}
    broken = audit_proof.broken_phase_chains(rows, phases)
    assert not broken, "phase changes missing from the audit store:\n" + "\n".join(broken)


QUICK = {"WARDEN_SWEEP_INTERVAL": "3", "WARDEN_SWEEP_STREAMING_INTERVAL": "3", "WARDEN_PNL_REFRESH": "1"}
"""Sweeps every few seconds (with the stream alive too) and values open Positions every second, so the tests of
the sweep and of the unrealized PnL need not wait long (production: every 30 s, 300 s and 15 s)."""


@pytest.fixture(scope="session")
def controller(stack: Stack) -> Iterator[Service]:
    service = stack.start_controller("controller", **QUICK)
    yield service
    service.stop()


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, service: Service | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if service is not None and not service.alive():
            raise AssertionError(f"{service.name} died while waiting for {what}:\n{service.tail()}")
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    detail = f"\ncontroller log:\n{service.tail(60)}" if service is not None else ""
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}{detail}")


@dataclass
class Trader:
    """One namespace with a paper account, as a trader would set it up."""

    stack: Stack
    namespace: str
    account: PaperAccount

    def apply(self, manifest: dict[str, Any]) -> None:
        self.stack.kubectl("apply", "-n", self.namespace, "-f", "-", stdin=json.dumps(manifest))

    def position(self, name: str) -> dict[str, Any] | None:
        done = self.stack.kubectl("get", "position", name, "-n", self.namespace, "-o", "json", check=False)
        if done.returncode != 0:
            return None
        obj: dict[str, Any] = json.loads(done.stdout)
        return obj

    def status(self, name: str) -> dict[str, Any]:
        obj = self.position(name)
        return (obj or {}).get("status") or {}

    def wait_phase(self, name: str, phase: str, service: Service | None = None, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status(name)
            if status.get("phase") == "Failed" and phase != "Failed":
                raise AssertionError(f"position {name} failed: {status}")
            return status if status.get("phase") == phase else None

        result: dict[str, Any] = wait_for(f"{name} to be {phase}", reached, timeout, service)
        return result

    def orders(self) -> list[dict[str, Any]]:
        every = self.stack.paper_admin(f"/_paper/orders?apiKey={self.account.api_key}")
        assert isinstance(every, list)
        return every

    def uid(self, name: str) -> str:
        obj = self.position(name)
        assert obj is not None, f"position {name} does not exist"
        return str(obj["metadata"]["uid"])

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        patch = json.dumps({"spec": spec})
        self.stack.kubectl("patch", "position", name, "-n", self.namespace, "--type=merge", "-p", patch)

    def exchange_position(self) -> Decimal:
        """The account's net BTCUSDT position on the paper exchange (signed)."""
        rows = self.stack.paper_admin(f"/_paper/positions?apiKey={self.account.api_key}&symbol=BTCUSDT")
        assert isinstance(rows, list)
        return sum((Decimal(r["positionAmt"]) for r in rows), Decimal(0))

    def cancel_stop(self, client_id: str) -> None:
        """The venue cancels the stop ``client_id`` by itself (``/_paper/cancel-algo``, in the venue's id field)."""
        field = "orderLinkId" if self.account.venue is VenueName.BYBIT else "clientAlgoId"
        self.stack.paper_admin(
            "/_paper/cancel-algo", {"apiKey": self.account.api_key, "symbol": "BTCUSDT", field: client_id}
        )

    def requests(self, since: int | None = None) -> list[dict[str, Any]]:
        """The account's exchange requests as the paper exchange logged them, oldest first."""
        query = f"apiKey={self.account.api_key}" + (f"&since={since}" if since is not None else "")
        log = self.stack.paper_admin(f"/_paper/requests?{query}")
        assert isinstance(log, list)
        return sorted(log, key=lambda r: int(r["seq"]))


async def audit_types(stack: Stack, uid: str) -> list[str]:
    """The Position's audit event types in the order they were written."""
    conn = await asyncpg.connect(stack.postgres.url)
    try:
        rows = await conn.fetch(
            "SELECT type FROM events WHERE position_uid = $1 ORDER BY occurred_at, seq", uuid.UUID(uid)
        )
        return [r["type"] for r in rows]
    finally:
        await conn.close()


def position_manifest(
    name: str, side: str = "long", amount: str = "0.010", stop: str = "63000", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "trading.warden.dev/v1alpha1",
        "kind": "Position",
        "metadata": {"name": name},
        "spec": {
            "accountRef": {"name": "paper"},
            "symbol": "BTC/USDT:USDT",
            "side": side,
            "amount": amount,
            "entry": {"type": "market"},
            "stopLoss": {"price": stop},
            **spec,
        },
    }


@pytest.fixture
def venue() -> VenueName:
    """The venue of ``trader``'s account: Binance unless a test runs on each venue (``EACH_VENUE``)."""
    return VenueName.BINANCE_USDM


EACH_VENUE = pytest.mark.parametrize("venue", list(VenueName), ids=str)
"""Runs a test once per venue (ids ``[binanceusdm]``, ``[bybit]``): its ``trader`` is on that venue's account."""


@pytest.fixture
def trader(stack: Stack, venue: VenueName) -> Trader:
    return new_trader(stack, venue)


def new_trader(stack: Stack, venue: VenueName = VenueName.BINANCE_USDM) -> Trader:
    """A fresh namespace with the Secret `paper-credentials` and the ExchangeAccount `paper` on a new paper account
    of ``venue``."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    stack.kubectl("create", "namespace", namespace)
    account = stack.create_paper_account(venue=venue)
    stack.paper_admin("/_paper/price", {"symbol": "BTCUSDT", "price": MARK})
    result = Trader(stack, namespace, account)
    result.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "paper-credentials"},
            "stringData": {"apiKey": account.api_key, "secret": account.secret},
        }
    )
    result.apply(exchange_account_manifest(stack.paper_url, venue))
    return result
