#!/usr/bin/env bash
# Roll Smart Trader back in one environment: abort a canary, switch blue-green traffic back, or helm rollback.
#
# Usage: deploy/scripts/rollback.sh ENV [REVISION]
#   ENV       dev | staging | prod
#   REVISION  a Helm revision of RELEASE to return to (helm history RELEASE); default: the previous one
# ROLLBACK_MODE (environment) chooses what is undone; "auto" (the default) picks the first that applies:
#   canary  a canary release (<RELEASE>-canary) exists: its Ingress and release are removed, all traffic on stable
#   colour  the public Service remembers a previous release (blue-green): its selector goes back to it
#   helm    helm rollback RELEASE [REVISION] --wait (always this one when REVISION is given)
# Then /health and /ready of what serves are checked.
# Exit: 0 rolled back and healthy, 1 failed, 2 bad arguments. Settings: see deploy/scripts/lib.sh.
set -euo pipefail
USAGE="usage: ${0##*/} ENV [REVISION]    (ENV: dev|staging|prod; ROLLBACK_MODE=auto|canary|colour|helm)"
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

help_if_asked "$@"
(($# == 1 || $# == 2)) || usage_error "expected 1 or 2 arguments, got $#"
parse_env "$1"
REVISION="${2:-}"
[[ -z "$REVISION" || "$REVISION" =~ ^[1-9][0-9]*$ ]] || usage_error "REVISION must be a positive whole number"
MODE="${ROLLBACK_MODE:-auto}"
case "$MODE" in
  auto | canary | colour | helm) ;;
  *) usage_error "unknown ROLLBACK_MODE '$MODE' (auto, canary, colour or helm)" ;;
esac

if [[ "$MODE" == auto ]]; then
  if [[ -n "$REVISION" ]]; then
    MODE=helm
  elif release_exists "$CANARY_RELEASE"; then
    MODE=canary
  elif [[ -n "$(previous_release 2>/dev/null || true)" ]]; then
    MODE=colour
  else
    MODE=helm
  fi
fi
log "rollback in $NAMESPACE: mode $MODE"

case "$MODE" in
  canary)
    remove_canary || die "could not remove the canary"
    serving="$RELEASE"
    ;;
  colour)
    back="$(previous_release)" || die "cannot read $PUBLIC_SERVICE"
    [[ -n "$back" ]] || die "$PUBLIC_SERVICE remembers no previous release ($PREVIOUS_ANNOTATION): nothing to switch back to"
    release_exists "$back" || die "the previous release $back is gone: use ROLLBACK_MODE=helm"
    now="$(serving_release)" || die "cannot read $PUBLIC_SERVICE"
    switch_traffic "$back" "$now"
    serving="$back"
    ;;
  helm)
    args=(rollback "$RELEASE")
    [[ -n "$REVISION" ]] && args+=("$REVISION")
    log "helm ${args[*]}"
    hm "${args[@]}" --wait --timeout "$HELM_TIMEOUT" || die "helm rollback of $RELEASE failed"
    serving="$RELEASE"
    ;;
esac

# the public Service serves what was restored (colour), or the release's own api Service (helm, canary)
svc="$(api_service "$serving")"
[[ "$MODE" == colour ]] && svc="$PUBLIC_SERVICE"
if ! { health_gate "$svc" && url_gate; }; then
  die "rolled back ($MODE), but $svc is not healthy: operator action needed"
fi
log "rolled back ($MODE): $serving serves $NAMESPACE"
