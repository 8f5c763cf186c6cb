"""Invalid manifests are refused by the API server with a message a trader understands."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.localenv.stack import Stack
from tests.e2e.conftest import Trader, position_manifest


def refused(stack: Stack, namespace: str, manifest: dict[str, Any]) -> str:
    done = stack.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(manifest), check=False)
    assert done.returncode != 0, f"accepted: {manifest}"
    return done.stderr


def without_stop() -> dict[str, Any]:
    manifest = position_manifest("bad")
    del manifest["spec"]["stopLoss"]
    return manifest


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (position_manifest("bad", amount="-1"), 'must be a plain decimal string such as "0.01": no sign'),
        (position_manifest("bad", amount="0.0000000000000000001"), "at most 18 decimals"),
        (position_manifest("bad", amount="0"), 'spec.amount: Invalid value: "string": must be greater than zero'),
        (
            position_manifest("bad", amount=0.01),
            'spec.amount: Invalid value: "number": spec.amount in body must be of type string',
        ),
        (without_stop(), "spec.stopLoss: Required value"),
        (position_manifest("bad", side="sideways"), 'spec.side: Unsupported value: "sideways"'),
        (position_manifest("bad", stop="0.0"), "must be greater than zero"),
        (position_manifest("bad", symbol="BTCUSDT"), "spec.symbol in body should match"),
    ],
    ids=[
        "negative-amount",
        "too-many-decimals",
        "zero-amount",
        "float-amount",
        "missing-stop",
        "unknown-side",
        "zero-stop",
        "bad-symbol",
    ],
)
def test_invalid_manifest_refused(trader: Trader, manifest: dict[str, Any], message: str) -> None:
    assert message in refused(trader.stack, trader.namespace, manifest)


def test_symbol_is_immutable(trader: Trader) -> None:
    trader.apply(position_manifest("fixed", state="Closed"))
    changed = position_manifest("fixed", state="Closed", symbol="ETH/USDT:USDT")
    assert "symbol cannot be changed after creation" in refused(trader.stack, trader.namespace, changed)


def test_unknown_field_refused(trader: Trader) -> None:
    manifest = position_manifest("bad")
    manifest["spec"]["stopLos"] = {"price": "1"}
    assert 'unknown field "spec.stopLos"' in refused(trader.stack, trader.namespace, manifest)
