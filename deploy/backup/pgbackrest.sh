#!/usr/bin/env bash
# Physical backups of the Smart Trader database with pgBackRest: render its configuration, create the stanza, take
# full / differential / incremental backups, check that WAL archiving works, list the backups. Runs pgBackRest as the
# PostgreSQL OS user when started as root. Point-in-time restore: deploy/backup/pg-pitr-restore.sh.
#
# Usage: deploy/backup/pgbackrest.sh [-h] COMMAND
#   render-config        write $PGBR_CONFIG from pgbackrest.conf.template (PGBR_REPO_TYPE=posix) or
#                        pgbackrest-s3.conf.template (PGBR_REPO_TYPE=s3), and $PGBR_ARCHIVE_CONF, the WAL archiving
#                        lines for postgresql.conf (archive_mode, archive_command, archive_timeout)
#   stanza-create        create the stanza in the repository (once, with the server running and archiving)
#   check                force a WAL switch and wait until that segment is in the repository
#   backup [full|diff|incr]   take a backup (default incr; pgBackRest makes a full one when there is none)
#   info                 the backups and the WAL range in the repository
#   expire               apply the retention now (a backup does it by itself)
# Environment (defaults in brackets):
#   PGBR_CONFIG [/etc/pgbackrest/pgbackrest.conf]  PGBR_STANZA [smart-trader]  PGBR_REPO_TYPE [posix]
#   PGDATA (render-config: required)  PGPORT [5432]  PGBR_PG_SOCKET [/var/run/postgresql]  PGBR_PG_USER [postgres]
#   PGBR_CIPHER_PASS (render-config: required, 32+ characters; e.g. `openssl rand -base64 48`)
#   PGBR_REPO_PATH [/var/lib/pgbackrest; s3: /pgbackrest]  PGBR_S3_BUCKET, PGBR_S3_REGION (s3: required)
#   PGBR_RETENTION_FULL [2]  PGBR_RETENTION_DIFF [6]  PGBR_PROCESS_MAX [2]  PGBR_ARCHIVE_TIMEOUT [60] (seconds)
#   PGBR_SPOOL_PATH [/var/spool/pgbackrest]  PGBR_LOG_PATH [/var/log/pgbackrest]  PGBR_LOCK_PATH [/tmp/pgbackrest]
#   PGBR_ARCHIVE_CONF [<config folder>/postgresql-archive.conf]  PG_OS_USER [postgres]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

export PGBR_CONFIG="${PGBR_CONFIG:-/etc/pgbackrest/pgbackrest.conf}"
export PGBR_STANZA="${PGBR_STANZA:-smart-trader}"

# Replace every ${NAME} in template $1 by the environment variable NAME; dies naming any that is unset or empty.
render() {
  local line name value out="" missing=()
  while IFS= read -r line || [[ -n "$line" ]]; do
    while [[ "$line" =~ \$\{([A-Z_][A-Z0-9_]*)\} ]]; do
      name="${BASH_REMATCH[1]}"
      value="${!name:-}"
      if [[ -z "$value" ]]; then
        missing+=("$name")
        value="<unset>"
      fi
      line="${line//"\${$name}"/$value}"
    done
    out+="$line"$'\n'
  done <"$1"
  ((${#missing[@]} == 0)) || die "set ${missing[*]} to render $(basename "$1")"
  printf '%s' "$out"
}

render_config() {
  local type="${PGBR_REPO_TYPE:-posix}" template conf_dir archive_conf
  case "$type" in
    posix) template="$HERE/pgbackrest.conf.template" && export PGBR_REPO_PATH="${PGBR_REPO_PATH:-/var/lib/pgbackrest}" ;;
    s3) template="$HERE/pgbackrest-s3.conf.template" && export PGBR_REPO_PATH="${PGBR_REPO_PATH:-/pgbackrest}" ;;
    *) die "PGBR_REPO_TYPE must be posix or s3, got '$type'" ;;
  esac
  [[ -n "${PGBR_CIPHER_PASS:-}" ]] || die "set PGBR_CIPHER_PASS (the repository's encryption passphrase, 32+ characters)"
  ((${#PGBR_CIPHER_PASS} >= 32)) || die "PGBR_CIPHER_PASS is too short: 32 characters or more"
  export PGPORT="${PGPORT:-5432}" PGBR_PG_SOCKET="${PGBR_PG_SOCKET:-/var/run/postgresql}"
  export PGBR_PG_USER="${PGBR_PG_USER:-postgres}" PGBR_RETENTION_FULL="${PGBR_RETENTION_FULL:-2}"
  export PGBR_RETENTION_DIFF="${PGBR_RETENTION_DIFF:-6}" PGBR_PROCESS_MAX="${PGBR_PROCESS_MAX:-2}"
  export PGBR_SPOOL_PATH="${PGBR_SPOOL_PATH:-/var/spool/pgbackrest}" PGBR_LOG_PATH="${PGBR_LOG_PATH:-/var/log/pgbackrest}"
  export PGBR_LOCK_PATH="${PGBR_LOCK_PATH:-/tmp/pgbackrest}" PGBR_ARCHIVE_TIMEOUT="${PGBR_ARCHIVE_TIMEOUT:-60}"
  if ! [[ "$PGBR_ARCHIVE_TIMEOUT" =~ ^[0-9]+$ ]] || ((PGBR_ARCHIVE_TIMEOUT < 1 || PGBR_ARCHIVE_TIMEOUT > 299)); then
    die "PGBR_ARCHIVE_TIMEOUT must be 1-299 seconds (it bounds the data loss; the target is under 5 minutes)"
  fi
  conf_dir="$(dirname "$PGBR_CONFIG")"
  archive_conf="${PGBR_ARCHIVE_CONF:-$conf_dir/postgresql-archive.conf}"
  local config archive
  config="$(render "$template")"
  archive="$(render "$HERE/postgresql-archive.conf.template")"
  mkdir -p "$conf_dir"
  (umask 027 && printf '%s\n' "$config" >"$PGBR_CONFIG.new" && printf '%s\n' "$archive" >"$archive_conf")
  mv -- "$PGBR_CONFIG.new" "$PGBR_CONFIG"
  if [[ $(id -u) -eq 0 ]]; then
    chown "root:$(id -gn "${PG_OS_USER:-postgres}")" "$PGBR_CONFIG" "$archive_conf"
    local d
    for d in "$PGBR_SPOOL_PATH" "$PGBR_LOG_PATH" "$PGBR_LOCK_PATH"; do
      mkdir -p "$d" && chown "${PG_OS_USER:-postgres}:" "$d" && chmod 750 "$d"
    done
    if [[ "$type" == posix ]]; then
      mkdir -p "$PGBR_REPO_PATH" && chown "${PG_OS_USER:-postgres}:" "$PGBR_REPO_PATH" && chmod 750 "$PGBR_REPO_PATH"
    fi
  fi
  log "wrote $PGBR_CONFIG ($type repository, stanza $PGBR_STANZA) and $archive_conf (include it from postgresql.conf)"
}

pgbr() {
  [[ -r "$PGBR_CONFIG" ]] || die "no readable $PGBR_CONFIG: run render-config first"
  as_pg pgbackrest --config="$PGBR_CONFIG" --stanza="$PGBR_STANZA" "$@"
}

case "${1:-}" in
  -h | --help) usage "$0" ;;
  render-config) render_config ;;
  stanza-create | check | info | expire) pgbr "$1" ;;
  backup)
    type="${2:-incr}"
    [[ "$type" =~ ^(full|diff|incr)$ ]] || die "backup type must be full, diff or incr, got '$type'"
    started=$SECONDS
    pgbr backup --type="$type"
    log "$type backup of stanza $PGBR_STANZA done in $((SECONDS - started)) s"
    ;;
  "") die "give a command (see --help)" ;;
  *) die "unknown command '$1' (see --help)" ;;
esac
