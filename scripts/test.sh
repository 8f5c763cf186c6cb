#!/usr/bin/env bash
# The whole test suite: lint, types, CRD drift, unit, paper exchange and end-to-end tests on real components.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> [test] ruff"
.venv/bin/ruff check controller paper devtools tests bench
.venv/bin/ruff format --check controller paper devtools tests bench
echo "==> [test] mypy --strict"
.venv/bin/mypy controller paper devtools bench
# A directory of its own: pytest prunes all but the newest three under /tmp/pytest-of-$USER, which would remove
# a running session's Postgres if another session started beside it.
basetemp="$(mktemp -d -t warden-test-XXXXXX)"
# Every test runs with the monotonic clock of a machine that booted 10 s ago, as CI's may have: a "last time"
# that starts at 0.0 means "at boot", not "never", and only a young clock shows the difference. A time namespace
# shifts CLOCK_MONOTONIC and CLOCK_BOOTTIME for pytest and everything it starts (Postgres, the control plane,
# the paper exchange, controllers); the wall clock is untouched.
shift=$(( $(cut -d. -f1 /proc/uptime) - 10 ))
young=(unshare --time --monotonic "-$shift" --boottime "-$shift")
[ "$(id -u)" = 0 ] || young=(unshare --user --map-root-user --time --monotonic "-$shift" --boottime "-$shift")
if [ "$shift" -le 0 ]; then
  young=()
elif ! "${young[@]}" true; then
  echo "make test needs a time namespace (root, or unprivileged user namespaces): ${young[*]} failed" >&2
  exit 1
fi
echo "==> [test] pytest (monotonic clock at $(${young[@]+"${young[@]}"} python3 -c 'import time; print(round(time.monotonic()))') s)"
# One worker per core (WARDEN_TEST_WORKERS= changes it; 0 runs in this process). Each worker that draws an
# end-to-end test starts its own control plane, Postgres and paper exchange on free ports, so nothing is shared;
# tests are handed out one by one as workers free up, because the slowest files take minutes each.
workers="${WARDEN_TEST_WORKERS:-auto}"
status=0
${young[@]+"${young[@]}"} .venv/bin/pytest -m "not slow" --basetemp="$basetemp" --numprocesses "$workers" \
  --dist worksteal --durations 25 "$@" || status=$?
if [ "$status" -eq 0 ]; then rm -rf "$basetemp"; else echo "logs and data of the failed run: $basetemp"; fi
exit "$status"
