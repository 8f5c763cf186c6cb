#!/usr/bin/env bash
# Builds (once) the cached venvs `make bench-peers` runs the peers from, under ~/.cache/warden/peers/:
#   freqtrade-2026.9 (Python 3.11) + matplotlib for the plot, nautilus-trader-1.231.0 (Python 3.12).
# Each comes from PyPI at its pinned version; nothing of a peer goes into the project's venv or the repository.
# Prints nothing on a second run. PY311= / PY312= choose the interpreters (default: pyenv's, then PATH).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/uv.sh"
FREQTRADE_VERSION=2026.9
NAUTILUS_VERSION=1.231.0
peers="${WARDEN_CACHE:-$HOME/.cache/warden}/peers"
mkdir -p "$peers"
pick() {  # pick MAJOR.MINOR: an interpreter of that version
  local v="$1" cand
  for cand in "$HOME"/.pyenv/versions/"$v".*/bin/python"$v" "$(command -v "python$v" || true)"; do
    if [ -x "$cand" ] && "$cand" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  echo "peers-venv: no Python $v found (set PY${v/./})" >&2; return 1
}
build() {  # build NAME PYTHON CHECK SPEC...
  local name="$1" py="$2" check="$3"; shift 3
  local venv="$peers/$name"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then return 0; fi
  echo "==> [bench-peers] building $venv from PyPI: $*"
  uv venv --quiet --clear --python "$py" "$venv"
  uv pip install --quiet --python "$venv/bin/python" "$@"
  "$venv/bin/python" -c "$check"
}
build "freqtrade-$FREQTRADE_VERSION" "${PY311:-$(pick 3.11)}" \
  "import freqtrade, matplotlib, sys; sys.exit(freqtrade.__version__ != '$FREQTRADE_VERSION')" \
  "freqtrade==$FREQTRADE_VERSION" matplotlib
build "nautilus-$NAUTILUS_VERSION" "${PY312:-$(pick 3.12)}" \
  "import importlib.metadata as m, sys; sys.exit(m.version('nautilus_trader') != '$NAUTILUS_VERSION')" \
  "nautilus-trader==$NAUTILUS_VERSION"
