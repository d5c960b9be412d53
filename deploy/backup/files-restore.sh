#!/usr/bin/env bash
# Restore a files snapshot made by files-backup.sh into SMART_TRADER_HOME: verifies the snapshot against its SHA-256
# manifest (every file listed, none missing, none extra), verifies the audit export inside it (`audit verify --file`),
# copies the folders back, then verifies the restored files against the manifest again.
#
# Usage: deploy/backup/files-restore.sh [-h] SNAPSHOT_DIR
#   SMART_TRADER_HOME  the platform's home folder (created when missing)                            required
#   FORCE=1            a folder to restore that exists and is not empty is moved aside to
#                      <folder>.before-restore-<UTC time> (without it such a folder stops the restore)
#   SMART_TRADER       the smart-trader command (checks the audit export)                  default smart-trader
# Stop the platform's processes that write these folders (the feed role) before restoring.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage "$0"
  exit 0
fi
[[ $# -eq 1 ]] || die "give one snapshot folder (see --help)"
snap="$(cd "$1" && pwd)" || die "no such snapshot folder: $1"
home="${SMART_TRADER_HOME:-}"
[[ -n "$home" ]] || die "SMART_TRADER_HOME is not set (see --help)"
smart_trader="${SMART_TRADER:-smart-trader}"
manifest="$snap/MANIFEST.sha256"
[[ -f "$manifest" ]] || die "no manifest in $snap: refusing to restore an unverified snapshot"
started=$SECONDS

# 1. the snapshot is whole: every listed file matches, and nothing unlisted lies beside them
(cd "$snap" && sha256sum --quiet --strict -c MANIFEST.sha256) || die "snapshot $snap does not match its manifest"
extra="$(cd "$snap" && comm -13 <(sed 's/^[0-9a-f]*  //' MANIFEST.sha256 | LC_ALL=C sort) \
  <(find . -type f ! -name MANIFEST.sha256 | LC_ALL=C sort))"
[[ -z "$extra" ]] || die "snapshot $snap holds files its manifest does not list: $extra"
log "snapshot verified: $(wc -l <"$manifest") files match the manifest"

# 2. the audit export is a chain that verifies on its own
if [[ -f "$snap/audit/audit-export.jsonl" ]]; then
  if command -v "$smart_trader" >/dev/null; then
    "$smart_trader" audit verify --file "$snap/audit/audit-export.jsonl" >&2 || die "the audit export does not verify"
  else
    log "warning: $smart_trader not found: the audit export was checked by its manifest only"
  fi
fi

# 3. copy the folders back (each first beside its place, then renamed into it)
mkdir -p "$home"
for src in "$snap"/*/; do
  d="$(basename "$src")"
  [[ "$d" == audit ]] && continue # the export is evidence, not a platform folder
  dest="$home/$d"
  if [[ -e "$dest" ]] && [[ -n "$(ls -A "$dest")" ]]; then
    [[ "${FORCE:-0}" == 1 ]] || die "$dest exists and is not empty: set FORCE=1 to move it aside"
    aside="$dest.before-restore-$(stamp)"
    mv -- "$dest" "$aside"
    log "moved $dest aside to $aside"
  fi
  rm -rf -- "$dest" "$dest.restoring"
  cp -a -- "$snap/$d" "$dest.restoring"
  mv -- "$dest.restoring" "$dest"
  log "restored $dest"
done

# 4. what landed in the home is what the manifest says
restored="$(grep -v '  \./audit/' "$manifest" || true)"
if [[ -n "$restored" ]]; then
  (cd "$home" && sha256sum --quiet --strict -c -) <<<"$restored" || die "restored files in $home do not match the manifest"
fi
log "files restore from $snap verified in $home ($((SECONDS - started)) s)"
