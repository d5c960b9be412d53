#!/usr/bin/env bash
# Restore the database cluster from the pgBackRest repository: to a point in time (--time), or to the end of the
# archived WAL (--latest: the last archived transaction, the disaster case). The cluster must be stopped. An empty
# (or missing) PGDATA is filled from the newest backup before the target, then PostgreSQL replays the archived WAL up
# to the target when it starts, and is promoted (it accepts writes, on a new timeline).
#
# Usage: deploy/backup/pg-pitr-restore.sh [-h] (--time 'YYYY-MM-DD HH:MM:SS[.ffffff]+00' | --latest) [--delta]
#   --time T    recover up to T (transactions committed after T are not replayed); give the UTC offset
#   --latest    recover everything the archive holds
#   --delta     PGDATA is not empty: keep its files that match the backup, replace the others (faster than
#               wiping; without it a non-empty PGDATA stops the restore)
# Environment: PGDATA (required), PGBR_CONFIG [/etc/pgbackrest/pgbackrest.conf], PGBR_STANZA [smart-trader],
#   PGBR_SET (a backup label to restore from; default: the newest one that can reach the target),
#   PGBR_TARGET_TIMELINE [latest] (current: the backup's own timeline), PG_OS_USER [postgres].
# Then: start PostgreSQL (pg_ctl start / the service), wait until it accepts connections, take a new full backup
# (deploy/backup/pgbackrest.sh backup full), then start Smart Trader (see the runbook in docs/deployment.md).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

config="${PGBR_CONFIG:-/etc/pgbackrest/pgbackrest.conf}"
stanza="${PGBR_STANZA:-smart-trader}"
target="" mode="" delta=0
while (($#)); do
  case "$1" in
    -h | --help) usage "$0" && exit 0 ;;
    --time)
      [[ $# -ge 2 ]] || die "--time needs a timestamp"
      mode=time target="$2"
      shift
      ;;
    --latest) mode=latest ;;
    --delta) delta=1 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
[[ -n "$mode" ]] || die "give --time T or --latest (see --help)"
[[ -n "${PGDATA:-}" ]] || die "PGDATA is not set"
if [[ "$mode" == time ]]; then
  [[ "$target" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}[\ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([+-][0-9]{2}(:?[0-9]{2})?|Z)$ ]] ||
    die "--time takes 'YYYY-MM-DD HH:MM:SS[.ffffff]+00' with its UTC offset, got '$target'"
fi
if [[ -f "$PGDATA/postmaster.pid" ]] && as_pg pg_ctl status -D "$PGDATA" >/dev/null 2>&1; then
  die "PostgreSQL is running on $PGDATA: stop it first (pg_ctl stop -D $PGDATA -m fast)"
fi
if [[ -d "$PGDATA" && -n "$(ls -A "$PGDATA")" && "$delta" != 1 ]]; then
  die "$PGDATA is not empty: wipe it (after copying it aside if it may still be needed) or pass --delta"
fi
if [[ ! -d "$PGDATA" ]]; then
  mkdir -p "$PGDATA"
  [[ $(id -u) -ne 0 ]] || chown "${PG_OS_USER:-postgres}:" "$PGDATA"
fi
as_pg chmod 700 "$PGDATA"

args=(--config="$config" --stanza="$stanza" --pg1-path="$PGDATA")
[[ "$delta" == 1 ]] && args+=(--delta)
[[ -n "${PGBR_SET:-}" ]] && args+=(--set="$PGBR_SET")
if [[ "$mode" == time ]]; then
  # latest: follow the timeline history to the newest timeline (T may lie before or after an earlier restore's
  # switch); PGBR_TARGET_TIMELINE=current keeps to the backup's own timeline (an abandoned branch)
  args+=(--type=time --target="$target" --target-action=promote --target-timeline="${PGBR_TARGET_TIMELINE:-latest}")
fi
started=$SECONDS
as_pg pgbackrest "${args[@]}" restore
log "restored $PGDATA from stanza $stanza (${mode}${target:+ $target}) in $((SECONDS - started)) s: start PostgreSQL now"
