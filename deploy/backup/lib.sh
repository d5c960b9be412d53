# shellcheck shell=bash
# Shared helpers of the backup scripts (sourced, never run): logging, the libpq form of DATABASE_URL, running a
# command as the PostgreSQL OS user, checksums and retention. Usage: source "$(dirname "$0")/lib.sh"

log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# The script's usage text: the comment block at the top of the file (from line 2 up to the first non-comment line).
usage() {
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$1"
}

# DATABASE_URL as libpq understands it: SQLAlchemy's driver suffix (postgresql+psycopg://) and postgres:// dropped.
libpq_url() {
  local url="$1"
  url="${url/#postgresql+psycopg:\/\//postgresql://}"
  url="${url/#postgresql+psycopg2:\/\//postgresql://}"
  url="${url/#postgres:\/\//postgresql://}"
  [[ "$url" == postgresql://* ]] || die "not a PostgreSQL URL (postgresql://user@host:port/db): ${url%%://*}://..."
  printf '%s' "$url"
}

# The database name in a libpq URL (the path after the host, without the query string).
url_dbname() {
  local rest="${1#*://}"
  rest="${rest#*/}"
  printf '%s' "${rest%%\?*}"
}

# The same URL on another database of the server (e.g. the maintenance database `postgres`).
url_with_db() {
  local url="$1" db="$2" base query=""
  [[ "$url" == *\?* ]] && query="?${url#*\?}"
  base="${url%%\?*}"
  printf '%s/%s%s' "${base%/*}" "$db" "$query"
}

# Run a command as the PostgreSQL OS user (PG_OS_USER, default postgres) when we are root: the server, initdb and
# pgBackRest refuse to run as root. As any other user, run it as that user (it must own PGDATA and the repository).
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u "${PG_OS_USER:-postgres}" -- "$@"
  else
    "$@"
  fi
}

# Write FILE.sha256 (sha256sum format, the file's base name) beside FILE.
write_sha256() {
  (cd "$(dirname "$1")" && sha256sum -- "$(basename "$1")" >"$(basename "$1").sha256")
}

# Check FILE against FILE.sha256; dies when the checksum file is missing or does not match.
check_sha256() {
  [[ -f "$1.sha256" ]] || die "no checksum file $1.sha256: refusing to restore an unverified backup"
  (cd "$(dirname "$1")" && sha256sum --quiet --strict -c -- "$(basename "$1").sha256") ||
    die "checksum mismatch for $1: the backup is damaged or was changed"
}

# Retention: among the entries of DIR matching GLOB (files or folders), delete those older than DAYS days, but always
# keep the KEEP newest. Names must sort by time (they carry a UTC timestamp), so the newest are the last.
prune() {
  local dir="$1" glob="$2" days="$3" keep="$4"
  local -a entries=()
  local entry n i
  [[ "$days" =~ ^[0-9]+$ && "$keep" =~ ^[0-9]+$ ]] || die "retention must be whole numbers (days=$days keep=$keep)"
  mapfile -t entries < <(find "$dir" -mindepth 1 -maxdepth 1 -name "$glob" -print | LC_ALL=C sort)
  n=${#entries[@]}
  for ((i = 0; i < n - keep; i++)); do
    entry="${entries[i]}"
    if [[ -n $(find "$entry" -maxdepth 0 -mmin "+$((days * 1440))" -print) ]]; then
      log "retention: deleting $entry (older than $days days)"
      rm -rf -- "$entry" "$entry.sha256"
    fi
  done
}

stamp() { date -u +%Y%m%dT%H%M%SZ; }
