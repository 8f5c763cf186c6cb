"""The Dockerfile, without a Docker engine: hadolint, its structure, and its install steps run for real.

The build stage's RUN commands are executed as written in a scratch directory that stands for the image's
file system (``/opt/warden`` and ``/src`` mapped into it, COPY done by copying), with the machine's Python 3.11
standing for python:3.11-slim. The only change is that ``--no-cache-dir`` is dropped so pip's local cache makes
reruns fast; what gets installed is the same. Then the installed Warden must import and start its CLI.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.chart.conftest import REPO, run, tool

DOCKERFILE = REPO / "Dockerfile"


@dataclass
class Instruction:
    op: str
    args: str


def instructions() -> list[Instruction]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, args = line.partition(" ")
            found.append(Instruction(op.upper(), args.strip()))
    return found


def stages() -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for ins in instructions():
        if ins.op == "FROM":
            result.append([])
        result[-1].append(ins)
    return result


def test_hadolint() -> None:
    run([tool("hadolint"), str(DOCKERFILE)])


def test_multi_stage_slim_non_root_entrypoint() -> None:
    build, final = stages()
    assert build[0].args == "python:3.11-slim AS build"
    assert final[0].args == "python:3.11-slim"
    assert [i.args for i in final if i.op == "COPY"] == ["--from=build /opt/warden /opt/warden"]
    [user] = [i.args for i in final if i.op == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "the image must run as a numeric non-root user (runAsNonRoot)"
    entrypoint = [i.args for i in final if i.op == "ENTRYPOINT"]
    cmd = [i.args for i in final if i.op == "CMD"]
    assert eval_exec_form(entrypoint[-1]) + eval_exec_form(cmd[-1]) == ["python", "-m", "controller", "run"]
    installs = " ".join(i.args for i in build if i.op == "RUN")
    assert "--require-hashes -r requirements.lock" in installs and "--no-deps ." in installs


def eval_exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list)
    return [str(v) for v in value]


def test_dockerignore_keeps_what_copy_needs() -> None:
    kept = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    build, _ = stages()
    for ins in build:
        if ins.op == "COPY":
            *sources, _ = shlex.split(ins.args)
            assert set(sources) <= kept, f"{sources} are excluded by .dockerignore"


def test_build_stage_installs_a_working_warden(tmp_path: Path) -> None:
    build, _ = stages()
    root = tmp_path / "image"
    mapping = {"/opt/warden": str(root / "opt" / "warden"), "/src": str(root / "src")}
    workdir = root
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PIP_NO_INPUT": "1"}
    env.pop("VIRTUAL_ENV", None)
    for ins in build[1:]:
        args = ins.args
        for image_path, local in mapping.items():
            args = args.replace(image_path, local)
        if ins.op == "WORKDIR":
            workdir = Path(args)
            workdir.mkdir(parents=True, exist_ok=True)
        elif ins.op == "ENV":
            key, _, value = args.partition("=")
            env[key] = value
        elif ins.op == "COPY":
            *sources, dest = shlex.split(args)
            for source in sources:
                target = workdir / dest if not dest.startswith("/") else Path(dest)
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(REPO / source, target)
        elif ins.op == "RUN":
            command = args.replace("--no-cache-dir", "")
            done = subprocess.run(
                ["bash", "-ec", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, f"RUN {ins.args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        else:
            raise AssertionError(f"the test does not know how to emulate {ins.op} in the build stage")
    python = root / "opt" / "warden" / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    probe = (
        "import controller, controller.handlers, paper.app, controller.audit.store, controller.metrics;"
        "import importlib.util, sys;"
        "assert 'site-packages' in controller.__file__, controller.__file__;"
        "assert 'site-packages' in paper.__file__, paper.__file__;"
        "assert importlib.util.find_spec('pytest') is None, 'dev tools in the image';"
        "assert importlib.util.find_spec('devtools') is None, 'the launcher and the chaos suite in the image'"
    )
    done = subprocess.run([str(python), "-c", probe], cwd=tmp_path, env=clean, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for module in ("controller", "paper"):
        done = subprocess.run(
            [str(python), "-m", module, "--help"], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"python -m {module} --help:\n{done.stderr}"
