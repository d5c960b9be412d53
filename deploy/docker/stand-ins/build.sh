#!/usr/bin/env bash
# Build local stand-ins for the upstream images the kit names (python:3.11-slim, postgres:15, redis:7,
# prom/prometheus, prom/alertmanager, grafana/grafana, nginx), for machines that reach no container registry but
# do reach Debian's packages. Each is tagged with the upstream name and honours the conventions compose.yaml relies on
# (environment variables, config paths, data paths, ports), so the same compose.yaml runs against the real images.
# Idempotent: the base is skipped when its tag exists, each other stand-in when its image was built from the same
# files (a label holds their hash); FORCE=1 rebuilds.
#
# Usage: deploy/docker/stand-ins/build.sh [all|base|postgres|redis|prometheus|alertmanager|grafana|nginx]...
#   needs a running engine (eval "$(deploy/tools/dockerd.sh start)"), root and mmdebstrap for the base.
# Where a registry is reachable, do not run this: `docker compose pull` fetches the real images.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FORCE="${FORCE:-0}"

# the upstream tags compose.yaml uses: keep in step with deploy/compose/compose.yaml
BASE_TAG="python:3.11-slim"
declare -A TAGS=(
  [postgres]="postgres:15"
  [redis]="redis:7"
  [prometheus]="prom/prometheus:v2.53.3"
  [alertmanager]="prom/alertmanager:v0.27.0"
  [grafana]="grafana/grafana:11.3.1"
  [nginx]="nginx:1.27"
)
LABEL="org.smart-trader.stand-in=true"

exists() { [[ "$FORCE" != 1 ]] && docker image inspect "$1" >/dev/null 2>&1; }

build_base() {
  if exists "$BASE_TAG"; then
    echo "stand-ins: $BASE_TAG exists, skipped" >&2
    return
  fi
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  echo "stand-ins: $BASE_TAG from Debian bookworm (mmdebstrap minbase)" >&2
  # Debian's python3 (3.11.2, /usr/bin) with pip and venv; pip may install system-wide like in the upstream image.
  # The hooks run in a shell of mmdebstrap's where $1 is the new root: quoted here on purpose.
  # shellcheck disable=SC2016
  mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --customize-hook='rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    bookworm "$tmp/rootfs.tar"
  docker import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' \
    "$tmp/rootfs.tar" "$BASE_TAG-rootfs" >/dev/null
  # the host's CA bundle, so pip and apt inside builds work through an intercepting proxy (harmless elsewhere)
  cp /etc/ssl/certs/ca-certificates.crt "$tmp/ca-certificates.crt"
  printf 'FROM %s\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\nLABEL %s\n' \
    "$BASE_TAG-rootfs" "$LABEL" >"$tmp/Dockerfile"
  docker build --quiet -t "$BASE_TAG" "$tmp" >/dev/null
  docker image rm "$BASE_TAG-rootfs" >/dev/null
}

# a stand-in is rebuilt when its folder changed: the image carries the hash of the files it was built from
content_hash() { (cd "$HERE/$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

build_one() {
  local name="$1" tag="${TAGS[$1]}" hash built
  hash="$(content_hash "$name")"
  built="$(docker image inspect -f '{{index .Config.Labels "org.smart-trader.stand-in.hash"}}' "$tag" 2>/dev/null || true)"
  if [[ "$FORCE" != 1 && "$built" == "$hash" ]]; then
    echo "stand-ins: $tag is up to date, skipped" >&2
    return
  fi
  echo "stand-ins: $tag from $HERE/$name" >&2
  docker build --quiet --pull=false --label "$LABEL" --label "org.smart-trader.stand-in.hash=$hash" \
    -t "$tag" "$HERE/$name" >/dev/null
}

targets=("$@")
((${#targets[@]})) || targets=(all)
for target in "${targets[@]}"; do
  case "$target" in
    all)
      build_base
      for name in postgres redis prometheus alertmanager grafana nginx; do build_one "$name"; done
      ;;
    base) build_base ;;
    postgres | redis | prometheus | alertmanager | grafana | nginx)
      build_base
      build_one "$target"
      ;;
    *)
      sed -n '2,10p' "$0" >&2
      exit 2
      ;;
  esac
done
