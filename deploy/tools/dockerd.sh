#!/usr/bin/env bash
# Start, stop or query a local Docker engine for the deployment kit's real checks, where no init system runs one
# (development machines, CI). Idempotent: `start` does nothing when the engine already answers. Its state (images,
# containers, logs) lives under DIR (default: .deploy-tools/docker in the repository, git-ignored, whatever the
# current folder; or $DOCKERD_DIR); its socket is DIR/docker.sock.
#
# Usage: deploy/tools/dockerd.sh start|stop|status|env [DIR]
#   eval "$(deploy/tools/dockerd.sh start)"   starts the engine and exports DOCKER_HOST for this shell
#   eval "$(deploy/tools/dockerd.sh env)"     only exports DOCKER_HOST (the engine may or may not be running)
#   deploy/tools/dockerd.sh stop              stops the engine this script started (by its pid file)
# `start` and `env` print one line on stdout: export DOCKER_HOST=unix://DIR/docker.sock; messages go to stderr.
# Needs root and Debian's docker.io (deploy/tools/install.sh installs it).
set -euo pipefail

cmd="${1:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$(realpath -m "${2:-${DOCKERD_DIR:-$ROOT/.deploy-tools/docker}}")"
SOCK="$DIR/docker.sock"
PIDFILE="$DIR/dockerd.pid"
LOG="$DIR/dockerd.log"
export DOCKER_HOST="unix://$SOCK"

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

case "$cmd" in
  start)
    if answers; then
      echo "dockerd.sh: engine already running on $SOCK" >&2
    else
      command -v dockerd >/dev/null || { echo "dockerd.sh: dockerd missing: run deploy/tools/install.sh" >&2; exit 1; }
      mkdir -p "$DIR/data" "$DIR/exec"
      # a stale socket or pid file from a killed engine would make dockerd refuse to start
      if [[ -f "$PIDFILE" ]] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then rm -f "$PIDFILE" "$SOCK"; fi
      # the bridge network gets its own subnet so it never overlaps a host's 172.17/16 (e.g. another engine)
      setsid dockerd --host "unix://$SOCK" --data-root "$DIR/data" --exec-root "$DIR/exec" \
        --pidfile "$PIDFILE" --bip 172.31.250.1/24 --default-address-pool base=172.31.0.0/17,size=24 \
        --storage-driver overlay2 >"$LOG" 2>&1 </dev/null &
      for _ in $(seq 1 60); do
        answers && break
        sleep 1
      done
      answers || { echo "dockerd.sh: engine did not answer within 60 s; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1; }
      echo "dockerd.sh: engine $(docker version --format '{{.Server.Version}}') running on $SOCK (log $LOG)" >&2
    fi
    echo "export DOCKER_HOST=$DOCKER_HOST"
    ;;
  env)
    echo "export DOCKER_HOST=$DOCKER_HOST"
    ;;
  status)
    if answers; then echo "running on $SOCK"; else echo "not running"; exit 1; fi
    ;;
  stop)
    if [[ -f "$PIDFILE" ]]; then
      pid="$(cat "$PIDFILE")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
      done
      echo "dockerd.sh: engine stopped" >&2
    else
      echo "dockerd.sh: no engine started from $DIR" >&2
    fi
    ;;
  *)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
