"""A pass reads its Position fresh unless kopf's body is already at the version this replica last wrote or read."""

from __future__ import annotations

from typing import Any, cast

from controller.handlers.positions import fresh
from controller.handlers.runtime import Runtime
from tests.fakes import FakeKube


def body(version: str) -> dict[str, Any]:
    return {"metadata": {"uid": "u1", "name": "p", "resourceVersion": version}}


async def test_a_version_read_once_is_not_read_again_and_a_newer_one_is() -> None:
    kube = FakeKube()
    kube.objects["positions", "ns", "p"] = body("10")
    runtime = Runtime(kube=kube, audit=cast(Any, None))
    assert (await fresh(runtime, "ns", "p", body("9")))["metadata"]["resourceVersion"] == "10"  # kopf lags: read
    assert (await fresh(runtime, "ns", "p", body("10"))) == body("10") and kube.reads == ["p"]  # caught up
    kube.objects["positions", "ns", "p"] = body(
        "11"
    )  # someone changed it (a spec edit): the watch brings it, and the pass reads it
    assert (await fresh(runtime, "ns", "p", body("11")))["metadata"]["resourceVersion"] == "11"
    runtime.known_version["u1"] = "12"  # this replica's own status write
    assert (await fresh(runtime, "ns", "p", body("12"))) == body("12") and kube.reads == ["p", "p"]
