#!/usr/bin/env bash
# Entrypoint of the redis:7 stand-in, as the upstream image's: options alone run redis-server with them; as root it
# fixes the owner of /data and runs the server as redis; without a config file, protected mode is off (a container's
# network is not the loopback: set --requirepass, as compose.yaml does).
# Usage (as the image's ENTRYPOINT): docker-entrypoint.sh redis-server [--option value]...
set -euo pipefail

if [[ "${1:-}" == -* || "${1:-}" == *.conf ]]; then set -- redis-server "$@"; fi
if [[ "${1:-}" == redis-server ]]; then
  if [[ "${2:-}" != *.conf ]]; then set -- "$1" --protected-mode no "${@:2}"; fi
  if [[ "$(id -u)" == 0 ]]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
