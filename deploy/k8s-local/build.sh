#!/usr/bin/env bash
# Build a single-node Kubernetes 1.20.2 for this machine, from Debian's own `kubernetes` source package (no registry,
# no download outside the Debian archive). Idempotent: every step is skipped when its result already exists.
# Usage: deploy/k8s-local/build.sh [DIR]      (DIR defaults to .deploy-tools/k8s, git-ignored; needs root for apt)
# Produces: DIR/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl},
#           DIR/pause/pause (static, from the tarball's build/pause/linux/pause.c) and DIR/pause.tar (OCI image).
# Cost measured here (2 cores shared with other work): 17 min from cold (11 min of CPU), seconds when built.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="$(realpath -m "${1:-$ROOT/.deploy-tools/k8s}")"
mkdir -p "$DIR/bin" "$DIR/src"
BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

# --- Debian packages: Go toolchain, etcd, containerd, CNI plugins, C compiler for pause, iptables, socat ---
want=()
command -v go >/dev/null || want+=(golang-go)
command -v etcd >/dev/null || want+=(etcd-server etcd-client)
command -v containerd >/dev/null || want+=(containerd)
command -v runc >/dev/null || want+=(runc)
[[ -x /usr/lib/cni/bridge ]] || want+=(containernetworking-plugins)
command -v gcc >/dev/null || want+=(gcc libc6-dev)
command -v iptables >/dev/null || want+=(iptables)
command -v conntrack >/dev/null || want+=(conntrack)
command -v socat >/dev/null || want+=(socat)
if ((${#want[@]})); then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# --- the source: Debian's kubernetes 1.20.2 orig tarball (it carries vendor/), fetched with a throwaway deb-src list ---
SRC="$DIR/src/kubernetes"
if [[ ! -f "$SRC/Makefile" ]]; then
  APT="$DIR/apt"
  mkdir -p "$APT/sources.list.d" "$APT/lists/partial"
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$APT/sources.list.d/debian-src.sources"
  aptopts=(-o "Dir::Etc::SourceParts=$APT/sources.list.d" -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::State::Lists=$APT/lists")
  apt-get "${aptopts[@]}" update -qq >/dev/null
  (cd "$DIR/src" && apt-get "${aptopts[@]}" source --download-only -qq kubernetes >/dev/null)
  tarballs=("$DIR"/src/kubernetes_*.orig.tar.gz)
  tarball="${tarballs[0]}"
  mkdir -p "$SRC"
  tar xzf "$tarball" -C "$SRC" --strip-components=1
fi

# --- Go build in GOPATH mode (1.20 predates modules-only builds): GOPATH/src/k8s.io/kubernetes -> the source ---
missing=()
for b in "${BINS[@]}"; do [[ -x "$DIR/bin/$b" ]] || missing+=("cmd/$b"); done
if ((${#missing[@]})); then
  mkdir -p "$SRC/.go/src/k8s.io"
  ln -sfn ../../.. "$SRC/.go/src/k8s.io/kubernetes"
  (
    cd "$SRC/.go/src/k8s.io/kubernetes"
    export GOPATH="$SRC/.go" GOCACHE="$DIR/cache/go-build" CGO_ENABLED=0 GOFLAGS=
    make WHAT="${missing[*]}"
  )
  for b in "${BINS[@]}"; do
    [[ -x "$DIR/bin/$b" ]] || cp "$SRC/_output/local/bin/linux/amd64/$b" "$DIR/bin/$b"
  done
fi

# --- images made here (no registry): the pause image from the tarball's pause.c (static C), and the smoke-test
#     web server (static Go, smoke/main.go); each one file in a one-layer image archive for `ctr images import` ---
HERE="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [[ ! -f "$DIR/images/pause.tar" ]]; then
  mkdir -p "$DIR/images" "$work/pause"
  gcc -Os -static -o "$work/pause/pause" "$SRC/build/pause/linux/pause.c"
  strip "$work/pause/pause"
  python3 "$HERE/oci_image.py" "$work/pause" "$DIR/images/pause.tar" --ref k8s.local/pause:3.4.1 \
    --entrypoint /pause --user 65535:65535
fi
if [[ ! -f "$DIR/images/smoke.tar" ]]; then
  mkdir -p "$DIR/images" "$work/smoke"
  (cd "$HERE/smoke" && CGO_ENABLED=0 GO111MODULE=off GOCACHE="$DIR/cache/go-build" \
    go build -trimpath -ldflags=-s -o "$work/smoke/smoke" main.go)
  python3 "$HERE/oci_image.py" "$work/smoke" "$DIR/images/smoke.tar" --ref k8s.local/smoke:1 \
    --entrypoint /smoke --user 65534:65534
fi
echo "build.sh: Kubernetes binaries in $DIR/bin, images in $DIR/images"
