#!/usr/bin/env bash
# Run the paper-exchange tests (tests/paper) against one ccxt release, in a venv cached under ~/.cache/warden/.
#
#   scripts/ccxt-matrix.sh VERSION [pytest args...]   e.g. 4.5.85, or
#   scripts/ccxt-matrix.sh lock                       the version pinned in requirements.lock
#   scripts/ccxt-matrix.sh newest                     the newest ccxt on PyPI
#
# Each version gets its own venv (everything else exactly as uv.lock has it, then ccxt pinned); a second run
# of the same version reuses it. Not part of `make test`: it needs PyPI the first time and takes a minute per version.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${1:?usage: scripts/ccxt-matrix.sh VERSION|lock|newest [pytest args...]}"
shift
case "$version" in
  lock) version="$(sed -n 's/^ccxt==\([^ ;\\]*\).*/\1/p' "$root/requirements.lock")" ;;
  newest) version="$("${PYTHON:-python3}" -m pip index versions ccxt 2>/dev/null | sed -n 's/^ccxt (\(.*\))$/\1/p')" ;;
esac
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "ccxt-matrix: cannot tell which ccxt version to use (got '$version')" >&2
  exit 2
fi
venv="${WARDEN_CACHE:-$HOME/.cache/warden}/ccxt-$version"
installed() { "$venv/bin/python" -c "import ccxt, sys; sys.exit(ccxt.__version__ != '$version')" 2>/dev/null; }
if ! installed || [ ! -x "$venv/bin/pytest" ]; then
  echo "==> [ccxt-matrix] building $venv"
  source "$root/scripts/uv.sh"
  T=$(mktemp -d)
  (cd "$root" && uv export --frozen --no-hashes --no-emit-project --quiet) | grep -v '^ccxt==' > "$T/requirements.txt"
  uv venv --quiet --clear "$venv"
  uv pip install --quiet --python "$venv/bin/python" -r "$T/requirements.txt" "ccxt==$version"
  uv pip install --quiet --python "$venv/bin/python" --no-deps -e "$root"
  rm -rf "$T"
  installed
fi
echo "==> [ccxt-matrix] tests/paper with ccxt $("$venv/bin/python" -c 'import ccxt; print(ccxt.__version__)')"
cd "$root"
exec "$venv/bin/python" -m pytest tests/paper -q -p no:cacheprovider "$@"
