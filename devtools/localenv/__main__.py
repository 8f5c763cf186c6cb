"""``python -m devtools.localenv up|down|run``: the local Warden environment behind ``make up/down/run``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devtools.localenv.processes import free_port, stop_pid
from devtools.localenv.stack import REPO, Stack, bin_dir
from paper.models import VenueName

LOCAL = REPO / ".local"
STATE = LOCAL / "state.json"
ENV_FILE = LOCAL / "env"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _state() -> dict[str, Any] | None:
    if not STATE.exists():
        return None
    state: dict[str, Any] = json.loads(STATE.read_text())
    return state


def up() -> dict[str, str]:
    state = _state()
    if state is not None and all(_alive(pid) for pid in state["pids"].values()):
        print(f"==> already up; environment in {ENV_FILE}")
        env: dict[str, str] = state["env"]
        return env
    if state is not None:
        print("==> a previous environment is partly down; cleaning it up first")
        down()
    stack = Stack(LOCAL, detach=True)
    stack.start(progress=True)
    account = stack.create_paper_account()
    bybit = stack.create_paper_account(venue=VenueName.BYBIT)
    metrics_port = free_port()
    print("==> starting the Warden controller")
    controller = stack.start_controller(WARDEN_METRICS_PORT=str(metrics_port))
    print("==> starting the signal receiver")
    signals, signals_url = stack.start_signals()
    env = {
        "KUBECONFIG": str(stack.kubeconfig),
        "WARDEN_DATABASE_URL": stack.postgres.url,
        "WARDEN_PAPER_URL": stack.paper_url,
        "WARDEN_METRICS_URL": f"http://127.0.0.1:{metrics_port}/metrics",
        "WARDEN_PAPER_API_KEY": account.api_key,
        "WARDEN_PAPER_API_SECRET": account.secret,
        "WARDEN_PAPER_BYBIT_API_KEY": bybit.api_key,
        "WARDEN_PAPER_BYBIT_API_SECRET": bybit.secret,
        "WARDEN_SIGNALS_URL": signals_url,
    }
    services = [*stack.control_plane.services, *stack.postgres.services, stack.paper, controller, signals]
    pids = {s.name: s.pid for s in services if s is not None}
    STATE.write_text(json.dumps({"pids": pids, "env": env}, indent=2))
    ENV_FILE.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
    print(f"==> up. KUBECONFIG={stack.kubeconfig}")
    print(f"    environment: {ENV_FILE}   (source it, then: kubectl get positions)")
    return env


def down() -> None:
    state = _state()
    if state is None:
        print("==> nothing to stop")
    else:
        # Controller first, so it never sees its dependencies vanish mid-step.
        for name in ("signals", "controller", "paper", "postgres", "kube-apiserver", "etcd"):
            if name in state["pids"]:
                stop_pid(state["pids"][name])
        print("==> stopped")
    shutil.rmtree(LOCAL, ignore_errors=True)


def _apply(stack_kubectl: list[str], path: Path, env: dict[str, str]) -> None:
    text = string.Template(path.read_text()).substitute(env)
    subprocess.run([*stack_kubectl, "apply", "-f", "-"], input=text, text=True, check=True)


# The sample Positions `make run` trades, one per venue front of the paper exchange, and their ExchangeAccounts.
SAMPLES = {
    "btc-long": ("paper-account.yaml", "position.yaml"),
    "btc-short-bybit": ("bybit-account.yaml", "bybit-position.yaml"),
}


def _field(kubectl: list[str], name: str, jsonpath: str) -> str:
    done = subprocess.run(
        [*kubectl, "get", "position", name, "-o", f"jsonpath={jsonpath}"], capture_output=True, text=True
    )
    return done.stdout.strip()


def _watch_until(kubectl: list[str], name: str, phases: set[str], seen: list[str], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = _field(kubectl, name, "{.status.phase}")
        if phase and (not seen or seen[-1] != phase):
            seen.append(phase)
            print(f"    {name} phase: {phase}")
        if phase in phases:
            return phase
        time.sleep(0.3)
    raise TimeoutError(f"position did not reach {phases} in {timeout:.0f}s (seen {seen})")


def _trade(kubectl: list[str], name: str) -> None:
    """Watch the sample Position ``name`` to Protected, close it, and watch it to Closed."""
    seen: list[str] = []
    if _watch_until(kubectl, name, {"Protected", "Failed"}, seen) == "Failed":
        print(f"    {name} failed:", _field(kubectl, name, "{.status.conditions}"))
        return
    print("    stop order:", _field(kubectl, name, "{.status.stopOrder}"))
    print(f"==> closing {name}: spec.state = Closed")
    subprocess.run(
        [*kubectl, "patch", "position", name, "--type=merge", "-p", '{"spec":{"state":"Closed"}}'],
        check=True,
    )
    _watch_until(kubectl, name, {"Closed", "Failed"}, seen)
    print("    exit reason:", _field(kubectl, name, "{.status.exitReason}"))
    print("    realized PnL (USDT, net of fees):", _field(kubectl, name, "{.status.display.realizedPnl}"))


def run() -> int:
    stopping = False

    def interrupt(*_: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        env = up()
        kubectl = [str(bin_dir() / "kubectl")]
        kubectl += ["--kubeconfig", env["KUBECONFIG"]]
        for name, (account, position) in SAMPLES.items():
            print(f"==> applying examples/{account} and examples/{position}")
            _apply(kubectl, REPO / "examples" / account, env)
            _apply(kubectl, REPO / "examples" / position, env)
            _trade(kubectl, name)
        print(f"\nWarden is running. KUBECONFIG={env['KUBECONFIG']}; in another terminal:")
        print(f"    source {ENV_FILE}; export PATH={kubectl[0].rsplit('/', 1)[0]}:$PATH; kubectl get positions")
        print("Press Ctrl-C to stop everything.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\n==> stopping")
    finally:
        down()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["up", "down", "run"])
    args = parser.parse_args(argv)
    if args.command == "up":
        up()
    elif args.command == "down":
        down()
    else:
        return run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
