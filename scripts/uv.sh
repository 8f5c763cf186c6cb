#!/usr/bin/env bash
# Runs the pinned uv (installed once from PyPI into the cache): the one tool that resolves, locks and installs
# Warden's Python dependencies. Sourced by setup.sh and lock.sh; `bash scripts/uv.sh ARGS` runs it.
UV_VERSION=0.13.9
WARDEN_CACHE=${WARDEN_CACHE:-$HOME/.cache/warden}
UV_HOME=$WARDEN_CACHE/uv-$UV_VERSION
export UV_CACHE_DIR=$WARDEN_CACHE/uv-cache UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
# The interpreter every venv is made with: never one uv would fetch.
export UV_PYTHON=${PYTHON:-python3}

uv() {
  if [ ! -x "$UV_HOME/bin/uv" ] || [ "$("$UV_HOME/bin/uv" --version 2>/dev/null)" != "uv $UV_VERSION" ]; then
    rm -rf "$UV_HOME"
    "$UV_PYTHON" -m venv "$UV_HOME"
    "$UV_HOME/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
  fi
  "$UV_HOME/bin/uv" "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  uv "$@"
fi
