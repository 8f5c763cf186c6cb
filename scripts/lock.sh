#!/usr/bin/env bash
# Regenerates the lock from pyproject.toml: uv.lock pins every package the tests and the image install (runtime
# and the dev group), with hashes, for every platform; requirements.lock is its runtime part, exported for the
# Dockerfile (pip install --require-hashes, no uv in the image). Versions already locked stay unless pyproject.toml
# no longer allows them; `bash scripts/lock.sh --upgrade` moves everything to the newest allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/uv.sh
uv lock "$@"
uv export --frozen --no-dev --no-emit-project --quiet --output-file requirements.lock
echo "wrote uv.lock and requirements.lock ($(grep -c '^[A-Za-z]' requirements.lock) runtime packages)"
