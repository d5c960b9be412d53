#!/usr/bin/env bash
# Blue-green deployment of Smart Trader: the new version runs beside the serving one, is checked, then takes all
# traffic at once; the old colour stays installed so that the way back is one selector switch.
#
# Usage: deploy/scripts/blue-green-deploy.sh ENV TAG
#   ENV  dev | staging | prod      TAG  the image tag to run (image.tag)
# Steps:
#   1. the serving release is read from the public Service's selector (COLOUR_LABEL, <RELEASE>-api by default);
#      the new colour is the other one: <RELEASE>-green, or <RELEASE>-blue when green serves
#   2. helm upgrade --install <RELEASE>-<colour> at TAG --atomic --wait, with its own Ingress off (COLOUR_SET)
#   3. gate on the new colour's own Service: /health, /ready, and its 5xx ratio in Prometheus (no traffic yet passes)
#   4. switch: the public Service's selector goes to the new colour (annotations remember active and previous)
#   5. after OBSERVE_SECONDS (120) of real traffic: /health, /ready and the 5xx ratio through the public Service
# A failed step 2-3 deletes the new colour; a failed step 5 switches the selector back (and the annotations to what
# they were) and deletes the new colour.
# INT/TERM (a cancelled or timed-out CI job) does the same for the step it interrupts, then exits 130.
# Exit: 0 switched and healthy, 1 failed (traffic on the old colour), 2 bad arguments.
# Settings (environment): PROMETHEUS_URL is required; COLOUR_SET (helm args for a colour release, default
# "--set ingress.enabled=false"), OBSERVE_SECONDS; the rest in deploy/scripts/lib.sh.
set -euo pipefail
USAGE="usage: ${0##*/} ENV TAG    (ENV: dev|staging|prod; needs PROMETHEUS_URL; settings in lib.sh)"
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ "${1:-}" == -h || "${1:-}" == --help ]] && {
  printf '%s\n' "$USAGE"
  exit 0
}
(($# == 2)) || usage_error "expected 2 arguments, got $#"
parse_env "$1"
TAG="$2"
check_tag "$TAG"
OBSERVE_SECONDS="${OBSERVE_SECONDS:-120}"
[[ "$OBSERVE_SECONDS" =~ ^[0-9]+$ ]] || usage_error "OBSERVE_SECONDS must be a whole number"
read -r -a COLOUR_ARGS <<<"${COLOUR_SET:---set ingress.enabled=false}"
require_prometheus
check_chart

serving="$(serving_release)" || die "cannot read the public Service $PUBLIC_SERVICE in $NAMESPACE (deploy.sh first)"
[[ -n "$serving" ]] || die "$PUBLIC_SERVICE has no '$COLOUR_LABEL' selector: set COLOUR_LABEL"
if [[ "$serving" == "$RELEASE-green" ]]; then colour=blue; else colour=green; fi
new="$RELEASE-$colour"
before="$(previous_release)" || before=""
log "serving: $serving; deploying $TAG as $new"

discard_new() {
  log "deleting the new colour $new"
  hm uninstall "$new" --wait --timeout "$HELM_TIMEOUT" >/dev/null || log "helm uninstall $new failed: remove it by hand"
}

phase=installing
# shellcheck disable=SC2329 # invoked by the trap below
on_signal() {
  trap - INT TERM
  stop_pause
  log "interrupted while $phase"
  if [[ "$phase" == switched ]]; then
    switch_traffic "$serving" "$before" || {
      log "switch back to $serving failed: $new still serves, operator action needed"
      exit 130
    }
  fi
  discard_new
  exit 130
}
trap on_signal INT TERM

if ! helm_deploy "$new" "$TAG" "${COLOUR_ARGS[@]}"; then
  release_exists "$new" && discard_new
  die "helm install of $new at $TAG failed; traffic stays on $serving"
fi

new_svc="$(api_service "$new")"
if ! { health_gate "$new_svc" && error_rate_gate "$new_svc"; }; then
  discard_new
  die "$new at $TAG failed its checks before the switch; traffic stays on $serving"
fi

phase=switched
switch_traffic "$new" "$serving"
log "observing $PUBLIC_SERVICE for ${OBSERVE_SECONDS}s"
pause "$OBSERVE_SECONDS"
if health_gate "$PUBLIC_SERVICE" && url_gate && error_rate_gate "$PUBLIC_SERVICE"; then
  trap - INT TERM
  log "$new at $TAG serves $NAMESPACE; $serving kept for rollback (rollback.sh $ENV_NAME)"
  exit 0
fi

trap - INT TERM
log "$new failed under traffic: switching back to $serving"
switch_traffic "$serving" "$before" || die "switch back to $serving failed: $new still serves, operator action needed"
discard_new
if ! health_gate "$PUBLIC_SERVICE"; then
  log "$serving is not healthy either after the switch back: operator action needed"
fi
die "$new at $TAG was rolled back; traffic on $serving"
