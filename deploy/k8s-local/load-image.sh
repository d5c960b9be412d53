#!/usr/bin/env bash
# Copy an image from the local Docker engine (deploy/tools/dockerd.sh) into the local cluster's containerd, where
# the kubelet finds it with imagePullPolicy Never (there is no registry on this machine).
# Usage: deploy/k8s-local/load-image.sh [IMAGE] [DIR]   (IMAGE defaults to smart-trader:dev, DIR to .deploy-tools/k8s)
#   DOCKER_HOST defaults to the engine of deploy/tools/dockerd.sh (unix://.deploy-tools/docker/docker.sock).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGE="${1:-smart-trader:dev}"
DIR="$(realpath -m "${2:-$ROOT/.deploy-tools/k8s}")"
SOCK="$DIR/run/containerd/containerd.sock"
export DOCKER_HOST="${DOCKER_HOST:-unix://$ROOT/.deploy-tools/docker/docker.sock}"
[[ -S $SOCK ]] || { echo "load-image.sh: the cluster's containerd is not running ($SOCK): run up.sh" >&2; exit 1; }
docker image inspect "$IMAGE" >/dev/null
docker save "$IMAGE" | ctr --address "$SOCK" -n k8s.io images import -
echo "load-image.sh: $IMAGE loaded into the cluster's containerd"
