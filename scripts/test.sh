#!/usr/bin/env bash
# The whole test suite: lint, types, CRD drift, unit, paper exchange and end-to-end tests on real components.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> [test] ruff"
.venv/bin/ruff check controller tests bench
.venv/bin/ruff format --check controller tests bench
echo "==> [test] mypy --strict"
.venv/bin/mypy controller bench
echo "==> [test] pytest"
# A directory of its own: pytest prunes all but the newest three under /tmp/pytest-of-$USER, which would remove
# a running session's Postgres if another session started beside it.
basetemp="$(mktemp -d -t warden-test-XXXXXX)"
status=0
.venv/bin/pytest -m "not slow" --basetemp="$basetemp" "$@" || status=$?
if [ "$status" -eq 0 ]; then rm -rf "$basetemp"; else echo "logs and data of the failed run: $basetemp"; fi
exit "$status"
