"""Tools and a real kube-apiserver for the chart, alert and Dockerfile tests.

promtool, hadolint, helm and kubectl come from ``make setup`` (``~/.cache/warden/bin``); a missing tool is a
failure, not a skip.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.localenv.controlplane import ControlPlane
from devtools.localenv.stack import bin_dir

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "warden"


def tool(name: str) -> str:
    path = bin_dir() / name
    assert path.is_file(), f"{name} is missing from {bin_dir()}: run `make setup`"
    return str(path)


def run(args: Sequence[str], stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output if it fails."""
    done = subprocess.run(list(args), input=stdin, capture_output=True, text=True, cwd=cwd, timeout=240)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done


def helm_template(
    *sets: str, namespace: str = "warden-system", release: str = "warden", extra: Sequence[str] = ()
) -> str:
    args = [tool("helm"), "template", release, str(CHART), "--namespace", namespace, *extra]
    for item in sets:
        args += ["--set", item]
    return run(args).stdout


def manifests(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


class Cluster:
    """A real kube-apiserver + etcd with Warden's CRDs installed."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [tool("kubectl"), "--kubeconfig", str(self.plane.kubeconfig), *args]
        if check:
            return run(command, stdin=stdin)
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    plane = ControlPlane(tmp_path_factory.mktemp("chart-kube"), bin_dir())
    try:
        plane.start()
        result = Cluster(plane)
        result.kubectl("apply", "-f", str(REPO / "crds"))
        result.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        yield result
    finally:
        plane.stop()
