"""On a machine booted moments ago the monotonic clock reads a few seconds: "never" must not be 0.0 (= at boot).

CI machines boot minutes before the tests run. A "last read at" of 0.0 there is a read a few seconds ago, and the
first timed read of an observer whose interval is longer than the uptime waited for it. Each module under test is
given the clock of a machine booted 5 s ago (the event loop keeps the real one)."""

from __future__ import annotations

import asyncio
import time
from types import ModuleType, SimpleNamespace
from typing import Any, cast

import pytest

from controller.api.v1alpha1 import Side
from controller.handlers import leader as leader_module
from controller.handlers import observer as observer_module
from controller.handlers.leader import Leadership
from controller.handlers.observer import _BURST_CYCLES, AccountObserver, Watcher, cycle_weight
from controller.reconcile.model import client_id_prefix
from controller.settings import LeaseSettings
from tests.fakes import FakeGateway

BTC = "BTC/USDT:USDT"
UPTIME = 5.0


def booted_moments_ago(monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> Any:
    """The monotonic clock of a machine booted ``UPTIME`` seconds ago, as these modules see it."""
    offset = time.monotonic() - UPTIME

    def clock() -> float:
        return time.monotonic() - offset

    for module in modules:
        monkeypatch.setattr(module, "time", SimpleNamespace(monotonic=clock))
    return clock


def test_a_fresh_observer_has_never_read_peeked_or_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = booted_moments_ago(monkeypatch, observer_module)
    # An hour between timed reads and, at 8 weight a minute, 15 s between peeks: both longer than the uptime.
    obs = AccountObserver("ns/paper", FakeGateway(), lambda: True, weight_per_minute=8, floor_seconds=3600)
    assert obs._tokens_now() == _BURST_CYCLES * cycle_weight(0)  # a full bucket, not one refilled since boot
    assert obs._timed_due() <= clock()  # the first timed read is due now
    assert obs._last_peek + obs._peek_interval([BTC]) <= clock()  # and so is the first peek


async def test_a_fresh_observers_first_timed_read_does_not_wait_for_an_interval_after_boot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway = FakeGateway(clock=booted_moments_ago(monkeypatch, observer_module))
    obs = AccountObserver("ns/paper", cast(Any, gateway), lambda: True, floor_seconds=3600)
    obs.watch("uid-a", Watcher(BTC, Side.LONG, client_id_prefix("uid-a"), None, asyncio.Event()))
    try:
        # At once; the bound only keeps a regression from hanging the suite (it would wait an hour).
        await asyncio.wait_for(gateway.read.wait(), 30)
    finally:
        await obs.close()


def test_a_replica_that_never_renewed_its_lease_may_not_act_moments_after_boot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    booted_moments_ago(monkeypatch, leader_module)
    leadership = Leadership("replica-a", LeaseSettings(renew_deadline_s=10.0), epoch=3)
    try:
        assert not leadership.may_act()  # "renewed at boot" would be within the renew deadline
    finally:
        leadership._thread.shutdown()
