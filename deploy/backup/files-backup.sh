#!/usr/bin/env bash
# Backup of the platform's files: the Parquet folders under SMART_TRADER_HOME (market-data: the market-data store;
# audit-archive: the audit trail's retention files) and an export of the audit trail (`smart-trader audit export`,
# JSON Lines, checked with `audit verify --file`), into one snapshot folder with a SHA-256 manifest of every file.
#
# Usage: deploy/backup/files-backup.sh [-h]
#   SMART_TRADER_HOME  the platform's home folder                                                   required
#   BACKUP_DIR         snapshots go to $BACKUP_DIR/files/<UTC time>/                       default ./backups
#   FILES_DIRS         folders of the home to copy (missing ones are skipped)  default "market-data audit-archive"
#   AUDIT_EXPORT       1: export and verify the audit trail too (needs DATABASE_URL)  default 1 when DATABASE_URL set
#   SMART_TRADER       the smart-trader command                                                default smart-trader
#   RETENTION_DAYS / KEEP_MIN  delete snapshots older than this, keeping this many newest     default 30 / 3
# Prints the snapshot folder on stdout. Restore with deploy/backup/files-restore.sh SNAPSHOT.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage "$0"
  exit 0
fi
[[ $# -eq 0 ]] || die "unexpected argument $1 (see --help)"
home="${SMART_TRADER_HOME:-}"
[[ -n "$home" && -d "$home" ]] || die "SMART_TRADER_HOME is not set or not a folder (see --help)"
default_export=0
[[ -n "${DATABASE_URL:-}" ]] && default_export=1
audit_export="${AUDIT_EXPORT:-$default_export}"
smart_trader="${SMART_TRADER:-smart-trader}"
read -r -a dirs <<<"${FILES_DIRS:-market-data audit-archive}"

root="${BACKUP_DIR:-./backups}/files"
mkdir -p "$root"
chmod 700 "$root"
umask 077
snap="$root/$(stamp)"
[[ ! -e "$snap" ]] || die "$snap exists already"
work="$snap.partial"
rm -rf -- "$work"
mkdir -p "$work"
started=$SECONDS

for d in "${dirs[@]}"; do
  [[ "$d" =~ ^[A-Za-z0-9._-]+$ && "$d" != . && "$d" != .. ]] || die "FILES_DIRS entries are folder names: '$d'"
  if [[ -d "$home/$d" ]]; then
    # the store replaces each file whole (os.replace), so every copied file is one version of it
    cp -a -- "$home/$d" "$work/$d"
  else
    log "skipping $home/$d (absent)"
  fi
done

if [[ "$audit_export" == 1 ]]; then
  [[ -n "${DATABASE_URL:-}" ]] || die "AUDIT_EXPORT=1 needs DATABASE_URL"
  mkdir -p "$work/audit"
  "$smart_trader" audit export --out "$work/audit/audit-export.jsonl" >&2
  "$smart_trader" audit verify --file "$work/audit/audit-export.jsonl" >&2 ||
    die "the audit export does not verify: the audit trail needs attention before it is backed up"
fi

(cd "$work" && find . -type f ! -name MANIFEST.sha256 -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) \
  >"$work/MANIFEST.sha256"
mv -- "$work" "$snap"
log "files backup: $snap ($(wc -l <"$snap/MANIFEST.sha256") files, $(du -sh "$snap" | cut -f1), $((SECONDS - started)) s)"
prune "$root" "20*Z" "${RETENTION_DAYS:-30}" "${KEEP_MIN:-3}"
printf '%s\n' "$snap"
