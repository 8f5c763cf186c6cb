"""``python -m devtools.chaos run --seed S --positions N --kills K`` runs a seeded chaos schedule on a fresh
local environment, then checks the invariants; ``check --evidence FILE`` checks a saved run again.
Both print the report and exit 1 on any violation."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from devtools.chaos.checker import Config, Report, check
from devtools.chaos.evidence import Evidence
from devtools.chaos.runner import Chaos
from devtools.chaos.schedule import make_plan


def report_text(report: Report, summary: dict[str, object] | None) -> str:
    head = [] if summary is None else [f"{key}: {json.dumps(value, sort_keys=True)}" for key, value in summary.items()]
    return "\n".join([*head, report.text()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.chaos", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a seeded schedule, then check it")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--positions", type=int, default=50)
    run.add_argument("--kills", type=int, default=200)
    run.add_argument("--duration", type=float, default=None, help="seconds of faults (default: from the counts)")
    run.add_argument("--workdir", type=Path, default=None, help="where logs and the evidence go")
    checking = commands.add_parser("check", help="check the evidence a run saved")
    checking.add_argument("--evidence", type=Path, required=True)
    for sub in (run, checking):
        sub.add_argument("--bound-ms", type=int, default=Config.protection_bound_ms, help="protection bound")
    args = parser.parse_args(argv)
    config = Config(protection_bound_ms=args.bound_ms)

    if args.command == "check":
        report = check(Evidence.load(args.evidence), config)
        print(report.text())
        return 1 if report.violations else 0

    workdir: Path = args.workdir or Path(tempfile.mkdtemp(prefix=f"warden-chaos-{args.seed}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    plan = make_plan(args.seed, args.positions, args.kills, duration=args.duration)
    started = time.monotonic()
    evidence, summary = Chaos(plan, workdir, say=lambda line: print(line, flush=True)).run()
    evidence.save(workdir / "evidence.json")
    report = check(evidence, config)
    for venue, tally in summary["venues"].items():
        tally["violations"] = report.violations_by_venue[venue]
    summary = {**summary, "wall_seconds": round(time.monotonic() - started)}
    text = report_text(report, summary)
    (workdir / "report.txt").write_text(text + "\n")
    print(text)
    print(f"evidence: {workdir / 'evidence.json'}  (re-check: python -m devtools.chaos check --evidence FILE)")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
