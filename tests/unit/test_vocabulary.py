"""The named vocabulary: members are their strings (what status, the audit and the metrics hold), and the tables
built on it leave nothing out."""

from __future__ import annotations

import json

from controller.api.vocabulary import ConditionType, EventType, ExitReason, Reason, RiskLimit
from controller.audit.catalogue import CATALOGUE
from controller.handlers.reconciler import _EXCHANGE_FAILURE
from controller.reconcile.model import Outcome


def test_members_serialize_as_the_strings_they_replaced() -> None:
    assert json.dumps([ConditionType.READY, Reason.STOP_MISSING, ExitReason.STOP_LOSS, EventType.STOP_PLACED]) == (
        '["Ready", "StopMissing", "StopLoss", "StopPlaced"]'
    )
    assert f"{RiskLimit.DAILY_LOSS_LIMIT}: x" == "dailyLossLimit: x"
    assert "/".join(["uid", EventType.PHASE_CHANGED]) == "uid/PhaseChanged"  # the audit event id's input


def test_a_condition_reason_names_one_thing() -> None:
    assert not {r.value for r in Reason} & {r.value for r in ExitReason}


def test_the_catalogue_is_the_event_enum() -> None:
    assert list(CATALOGUE.values()) == list(EventType)
    assert all(event.group and event.meaning for event in EventType)


def test_every_exchange_outcome_has_a_synced_reason() -> None:
    assert set(_EXCHANGE_FAILURE) == set(Outcome)
    assert {o: r.value for o, r in _EXCHANGE_FAILURE.items()} == {o: f"Exchange{o.value.title()}" for o in Outcome}
