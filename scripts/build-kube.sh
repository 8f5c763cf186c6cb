#!/usr/bin/env bash
# Builds pinned kube-apiserver and etcd from the Go module proxy into $WARDEN_BIN (cached; reused when present).
# Why build: no registry here ships a kube-apiserver binary, and Docker is not available.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.34.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.4}
CACHE=${WARDEN_CACHE:-$HOME/.cache/warden}
OUT=${WARDEN_BIN:-$CACHE/bin}
mkdir -p "$OUT"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOMODCACHE=$CACHE/gomod GOCACHE=$CACHE/gobuild

# The committed go.mod/go.sum in scripts/kube-build/ pin every module hash.
PINNED=$(cd "$(dirname "$0")" && pwd)/kube-build

say() { echo "==> [build-kube] $*"; }

# Uses the committed go.mod/go.sum for a build module when present, so every build gets the same hashes;
# otherwise runs the generator ($2) and saves what it produced for committing.
prepare_module() {
  local name=$1 generate=$2
  if [ -f "$PINNED/$name/go.mod" ]; then
    cp "$PINNED/$name/go.mod" "$PINNED/$name/go.sum" .
  else
    $generate
    mkdir -p "$PINNED/$name"; cp go.mod go.sum "$PINNED/$name/"
  fi
}

generate_apiserver_module() {
  go mod init kasbuild >/dev/null 2>&1
  local up staging
  up=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  staging=v0.${K8S_VERSION#v1.}
  for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$up"); do
    go mod edit -replace="$m=$m@$staging"
  done
  go mod edit -go="$(awk '$1=="go"{print $2; exit}' "$up")"
  awk '$1=="godebug"{print; exit}' "$up" >> go.mod   # keep the GODEBUG defaults 1.34 was tested with
  go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION"
}

generate_etcd_module() {
  go mod init etcdbuild >/dev/null 2>&1
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
}

if [ -x "$OUT/kube-apiserver" ] && "$OUT/kube-apiserver" --version 2>/dev/null | grep -q "Kubernetes $K8S_VERSION"; then
  say "kube-apiserver $K8S_VERSION cached in $OUT"
else
  say "building kube-apiserver $K8S_VERSION from the Go module proxy (first time only: about 8 min on 2 cores)"
  W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
  (
    cd "$W"
    prepare_module apiserver generate_apiserver_module
    MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
    LDF="-s -w"
    for kv in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$MINOR" gitTreeState=clean \
              "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
      LDF="$LDF -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
    done
    go build -trimpath -ldflags "$LDF" -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
  )
  rm -rf "$W"; trap - EXIT
fi

if [ -x "$OUT/etcd" ] && "$OUT/etcd" --version 2>/dev/null | grep -q "etcd Version: ${ETCD_VERSION#v}"; then
  say "etcd $ETCD_VERSION cached in $OUT"
else
  say "building etcd $ETCD_VERSION from the Go module proxy"
  W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
  (
    cd "$W"
    prepare_module etcd generate_etcd_module
    go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
      -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$OUT/etcd.tmp" "$OUT/etcd"
  )
  rm -rf "$W"; trap - EXIT
fi
"$OUT/kube-apiserver" --version
"$OUT/etcd" --version | sed -n 1p
