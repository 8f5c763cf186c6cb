#!/usr/bin/env bash
# The whole test suite: lint, types, CRD drift, unit, paper exchange and end-to-end tests on real components.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> [test] ruff"
.venv/bin/ruff check controller tests
.venv/bin/ruff format --check controller tests
echo "==> [test] mypy --strict"
.venv/bin/mypy controller
echo "==> [test] pytest"
exec .venv/bin/pytest -m "not slow" "$@"
