#!/usr/bin/env bash
# Logical backup of the platform database: pg_dump in the custom format (-Fc: compressed, restorable table by
# table), its SHA-256 beside it, a read-back of its table of contents, then retention.
#
# Usage: deploy/backup/pg-dump.sh [-h]
#   DATABASE_URL    the database to dump (postgresql://user@host:5432/db; +psycopg is accepted)   required
#   BACKUP_DIR      where backups go; the dump lands in $BACKUP_DIR/logical/               default ./backups
#   RETENTION_DAYS  delete dumps older than this many days ...                              default 30
#   KEEP_MIN        ... but always keep this many newest dumps                              default 3
# Prints the dump's path on stdout. The password, if any, comes from the URL, PGPASSWORD or ~/.pgpass.
# Restore with deploy/backup/pg-restore.sh FILE.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage "$0"
  exit 0
fi
[[ $# -eq 0 ]] || die "unexpected argument $1 (see --help)"
[[ -n "${DATABASE_URL:-}" ]] || die "DATABASE_URL is not set (see --help)"
url="$(libpq_url "$DATABASE_URL")"
out_dir="${BACKUP_DIR:-./backups}/logical"
mkdir -p "$out_dir"
chmod 700 "$out_dir"
db="$(url_dbname "$url")"
file="$out_dir/${db:-db}-$(stamp).dump"

umask 077
started=$SECONDS
pg_dump --format=custom --compress=6 --no-password --file="$file.partial" --dbname="$url"
# a dump whose table of contents cannot be read back is no backup
pg_restore --list "$file.partial" >/dev/null || die "pg_restore cannot read the dump just written ($file.partial)"
mv -- "$file.partial" "$file"
write_sha256 "$file"
log "logical backup of $db: $file ($(du -h "$file" | cut -f1), $((SECONDS - started)) s)"
prune "$out_dir" "*.dump" "${RETENTION_DAYS:-30}" "${KEEP_MIN:-3}"
printf '%s\n' "$file"
