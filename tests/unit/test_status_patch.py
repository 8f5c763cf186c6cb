"""A status write is a JSON merge patch: what a step removed must be sent as null, or the API server keeps it."""

from __future__ import annotations

from typing import Any

import pytest

from controller.handlers.reconciler import merge_patch


@pytest.mark.parametrize(
    ("before", "after", "patch"),
    [
        ({"phase": "Protected"}, {"phase": "Closing"}, {"phase": "Closing"}),
        (
            {"phase": "Protected", "unrealizedPnl": "4"},
            {"phase": "Closing"},
            {"phase": "Closing", "unrealizedPnl": None},
        ),
        (
            {"display": {"entry": "65000.0", "unrealizedPnl": "4.00"}},
            {"display": {"entry": "65000.0", "realizedPnl": "3.74"}},
            {"display": {"entry": "65000.0", "realizedPnl": "3.74", "unrealizedPnl": None}},
        ),
        (
            {"conditions": [{"type": "A"}, {"type": "B"}]},
            {"conditions": [{"type": "A"}]},
            {"conditions": [{"type": "A"}]},
        ),
        ({}, {"retryAfter": "2026-12-06T12:00:00Z"}, {"retryAfter": "2026-12-06T12:00:00Z"}),
    ],
)
def test_merge_patch(before: dict[str, Any], after: dict[str, Any], patch: dict[str, Any]) -> None:
    assert merge_patch(before, after) == patch


def _apply(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies it."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _apply(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_applying_the_patch_gives_the_new_status() -> None:
    before = {"phase": "Protected", "retryAfter": "t", "display": {"stop": "63000.0", "unrealizedPnl": "1.00"}}
    after = {"phase": "Closed", "display": {"stop": "63000.0", "realizedPnl": "0.74"}, "realizedPnl": "0.7412"}
    assert _apply(before, merge_patch(before, after)) == after
