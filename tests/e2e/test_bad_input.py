"""Every manifest of the bad-input catalogue (tests/badinput), applied as a trader would, shows its message.

The API server refuses most of them (no controller needed). The rest are accepted, applied in one batch, and Warden
fails them (or holds them) before sending any order.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from controller.reconcile.model import Purpose, client_order_id
from devtools.localenv.processes import Service
from devtools.localenv.stack import Stack
from tests.badinput.catalogue import Case, cases
from tests.e2e.conftest import MARK, Trader, new_trader, wait_for

REFUSED = [c for c in cases() if c.expect == "refused"]
ACCEPTED = [c for c in cases() if c.expect != "refused"]
SOL_MARK = "150"


def _ids(case: Case) -> str:
    return case.name


def _apply(stack: Stack, namespace: str, text: str) -> Any:
    return stack.kubectl("apply", "-n", namespace, "-f", "-", stdin=text, check=False)


@pytest.fixture(scope="module")
def scratch(stack: Stack) -> str:
    namespace = f"bad-{uuid.uuid4().hex[:10]}"
    stack.kubectl("create", "namespace", namespace)
    return namespace


@pytest.mark.parametrize("case", REFUSED, ids=_ids)
def test_the_api_server_refuses_it_with_the_message(stack: Stack, scratch: str, case: Case) -> None:
    *setup, last = case.texts(stack.paper_url)
    for text in setup:
        done = _apply(stack, scratch, text)
        assert done.returncode == 0, f"the step before the refused one failed: {done.stderr}"
    done = _apply(stack, scratch, last)
    assert done.returncode != 0, f"accepted: {done.stdout}"
    for message in case.messages:
        assert message in done.stderr


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), None)


def _settled(case: Case, status: dict[str, Any]) -> bool:
    if case.expect == "failed":
        return status.get("phase") == "Failed"
    synced = _condition(status, "Synced")
    return synced is not None and synced["status"] == "False"


@pytest.fixture(scope="module")
def accepted(stack: Stack, controller: Service) -> Trader:
    """Every accepted case applied at once, in a namespace of its own, and left until Warden has decided."""
    trader = new_trader(stack)
    stack.paper_admin("/_paper/price", {"symbol": "BTCUSDT", "price": MARK})
    stack.paper_admin("/_paper/price", {"symbol": "SOLUSDT", "price": SOL_MARK})
    batch = [text for case in ACCEPTED for text in case.texts(stack.paper_url)]
    stack.kubectl("apply", "-n", trader.namespace, "-f", "-", stdin="\n---\n".join(batch))

    def unsettled() -> list[str]:
        return [c.name for c in ACCEPTED if not _settled(c, trader.status(c.name))]

    try:
        wait_for("Warden to decide every accepted case", lambda: not unsettled(), 120, controller)
    except AssertionError as timeout:
        raise AssertionError(f"still undecided: {unsettled()}") from timeout
    return trader


@pytest.mark.parametrize("case", ACCEPTED, ids=_ids)
def test_warden_refuses_it_before_any_order(accepted: Trader, case: Case) -> None:
    obj = accepted.position(case.name)
    assert obj is not None
    status = obj["status"]
    if case.expect == "failed":
        assert status["phase"] == "Failed"
        condition = _condition(status, "Ready")
    else:
        assert status.get("phase", "Pending") == "Pending"
        condition = _condition(status, "Synced")
    assert condition is not None and condition["status"] == "False"
    for message in case.messages:
        assert message in condition["message"]
    ours = client_order_id(obj["metadata"]["uid"], Purpose.ENTRY).rsplit("-", 1)[0]
    assert [o for o in accepted.orders() if o["clientOrderId"].startswith(ours)] == []


def test_no_accepted_case_sent_any_order(accepted: Trader) -> None:
    assert accepted.orders() == []
