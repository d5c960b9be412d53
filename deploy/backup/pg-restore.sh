#!/usr/bin/env bash
# Restore a logical backup made by pg-dump.sh: checks its SHA-256 first, then pg_restore in one transaction (all or
# nothing), stopping at the first error. Owners and grants of the source are not restored (--no-owner
# --no-privileges): the objects belong to the user of the target URL, as on a fresh managed database.
#
# Usage: deploy/backup/pg-restore.sh [-h] DUMP_FILE
#   TARGET_DATABASE_URL  the database to restore into (default DATABASE_URL)                        required
#   CREATE_DB=1          create the target database first (connecting to the server's `postgres` database);
#                        refused when it already exists
#   CLEAN=1              the target database may hold the platform's tables: the dump is restored into a new
#                        database beside it, which then takes the target's name; the old one is kept, renamed
#                        <db>_before_<UTC time> (drop it once the restore is checked). Needs the CREATEDB right and
#                        no session on the target. Without CLEAN=1 a target that has tables is refused
#                        (nothing is overwritten by mistake)
# Stop every Smart Trader process on the target database first; start them again after the restore.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage "$0"
  exit 0
fi
[[ $# -eq 1 ]] || die "give one dump file (see --help)"
dump="$1"
[[ -f "$dump" ]] || die "no such dump file: $dump"
target="${TARGET_DATABASE_URL:-${DATABASE_URL:-}}"
[[ -n "$target" ]] || die "TARGET_DATABASE_URL (or DATABASE_URL) is not set (see --help)"
url="$(libpq_url "$target")"
db="$(url_dbname "$url")"
[[ "$db" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "target database name must be a plain identifier, got '$db'"

check_sha256 "$dump"
admin="$(url_with_db "$url" postgres)"
q() { psql --no-password -X -At -v ON_ERROR_STOP=1 "$@"; }
started=$SECONDS
if [[ "${CREATE_DB:-0}" == 1 ]]; then
  [[ -z "$(q -d "$admin" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]] ||
    die "database $db already exists (CREATE_DB=1 creates a new one; use CLEAN=1 to replace)"
  q -d "$admin" -c "CREATE DATABASE \"$db\""
  log "created database $db"
fi
tables="$(q -d "$url" -c "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")"
args=(--no-password --exit-on-error --single-transaction --no-owner --no-privileges)
if [[ "$tables" == 0 ]]; then
  pg_restore "${args[@]}" --dbname="$url" "$dump"
else
  [[ "${CLEAN:-0}" == 1 ]] || die "database $db already has $tables tables: set CLEAN=1 to replace them"
  # not pg_restore --clean: it cannot drop the constraints of partitioned tables (the audit log), and a failure half
  # way would leave neither the old state nor the new one. Restore beside it, then swap the names.
  suffix="$(date -u +%Y%m%d%H%M%S)"
  fresh="${db:0:40}_restoring_$suffix" aside="${db:0:40}_before_$suffix"
  q -d "$admin" -c "CREATE DATABASE \"$fresh\""
  if ! pg_restore "${args[@]}" --dbname="$(url_with_db "$url" "$fresh")" "$dump"; then
    q -d "$admin" -c "DROP DATABASE \"$fresh\""
    die "pg_restore failed: $db is unchanged"
  fi
  q -d "$admin" -c "ALTER DATABASE \"$db\" RENAME TO \"$aside\"" ||
    die "cannot rename $db (sessions still connected? stop Smart Trader): the restored copy is database $fresh"
  q -d "$admin" -c "ALTER DATABASE \"$fresh\" RENAME TO \"$db\""
  log "the previous $db is kept as $aside: drop it once the restore is checked"
fi
log "restored $dump into $db ($((SECONDS - started)) s)"
