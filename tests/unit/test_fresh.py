"""A pass reads its Position fresh unless kopf's body is already at the version this replica last wrote or read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from controller.handlers.positions import fresh
from controller.handlers.runtime import Runtime


@dataclass
class CountingKube:
    """Stand-in for the API server's GET: the object at its current version, and how often it was read."""

    version: str = "10"
    reads: list[str] = field(default_factory=list)

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(name)
        return {"metadata": {"uid": "u1", "name": name, "resourceVersion": self.version}}


def body(version: str) -> dict[str, Any]:
    return {"metadata": {"uid": "u1", "name": "p", "resourceVersion": version}}


async def test_a_version_read_once_is_not_read_again_and_a_newer_one_is() -> None:
    kube = CountingKube()
    runtime = Runtime(kube=cast(Any, kube), audit=cast(Any, None))
    assert (await fresh(runtime, "ns", "p", body("9")))["metadata"]["resourceVersion"] == "10"  # kopf lags: read
    assert (await fresh(runtime, "ns", "p", body("10"))) == body("10") and kube.reads == ["p"]  # caught up
    kube.version = "11"  # someone changed it (a spec edit): the watch brings it, and the pass reads it
    assert (await fresh(runtime, "ns", "p", body("11")))["metadata"]["resourceVersion"] == "11"
    runtime.known_version["u1"] = "12"  # this replica's own status write
    assert (await fresh(runtime, "ns", "p", body("12"))) == body("12") and kube.reads == ["p", "p"]
