#!/usr/bin/env bash
# Blue-green deployment of Smart Trader: the new version's api runs beside the serving one, is checked, then takes all
# traffic at once; only after it has served well does the rest of the platform (feed, workers, migrations) follow.
#
# Usage: deploy/scripts/blue-green-deploy.sh ENV TAG
#   ENV  dev | staging | prod      TAG  the image tag to run (image.tag)
# The stable release RELEASE owns everything but a colour: the public Service and Ingress, the one feed (the database
# runtime lock allows one), the workers, the migration hook, the shared SMART_TRADER_HOME claim, the service account.
# A colour (<RELEASE>-green or <RELEASE>-blue) is an api-only release (lib.sh api_only_args): feed, workers,
# migrations, Ingress off; the stable release's home claim and service account.
# Steps:
#   1. the serving release is read from the public Service's selector (COLOUR_LABEL, <RELEASE>-api by default);
#      the new colour is the other one: <RELEASE>-green, or <RELEASE>-blue when green serves
#   2. helm upgrade --install <RELEASE>-<colour> at TAG --atomic --wait, api only (+ COLOUR_SET)
#   3. gate on the new colour's own Service: /health, /ready, and its 5xx ratio in Prometheus (no traffic yet passes)
#   4. switch: the public Service's selector goes to the new colour (annotations remember active and previous)
#   5. after OBSERVE_SECONDS (120) of real traffic: /health, /ready and the 5xx ratio through the public Service
#   6. promote: helm upgrade of RELEASE to TAG (--atomic --wait): feed, workers and the migration hook move to TAG,
#      and Helm puts the public Service's selector back on RELEASE's own api pods, now at TAG (during that rolling
#      update the public Service selects RELEASE's api pods, old and new, as a rolling update does); the colour
#      annotations are cleared; /health and /ready through the public Service (and HEALTH_URL)
#   7. every colour release is uninstalled: RELEASE alone serves TAG
# A failed step 2-3 deletes the new colour; a failed step 5 switches the selector back (and the annotations to what
# they were) and deletes the new colour; a failed step 6 leaves RELEASE at its previous version (helm --atomic, or
# rollback.sh in helm mode after a failed check) and deletes the new colour. After step 7, `rollback.sh ENV` is a
# helm rollback of RELEASE to its previous revision (every role).
# INT/TERM (a cancelled or timed-out CI job) undoes the step it interrupts (steps 2-5), then exits 130; during step 6
# it leaves helm's --atomic to restore RELEASE and keeps the colour (it may serve): check `helm history`.
# Exit: 0 promoted and healthy, 1 failed (traffic on the previous version), 2 bad arguments.
# Settings (environment): PROMETHEUS_URL is required; COLOUR_SET (more helm args for the colour release, after the
# api-only ones), OBSERVE_SECONDS; the rest in deploy/scripts/lib.sh.
set -euo pipefail
USAGE="usage: ${0##*/} ENV TAG    (ENV: dev|staging|prod; needs PROMETHEUS_URL; settings in lib.sh)"
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

help_if_asked "$@"
parse_env_tag "$@"
OBSERVE_SECONDS="${OBSERVE_SECONDS:-120}"
[[ "$OBSERVE_SECONDS" =~ ^[0-9]+$ ]] || usage_error "OBSERVE_SECONDS must be a whole number"
read -r -a EXTRA_COLOUR_ARGS <<<"${COLOUR_SET:-}"
require_prometheus
check_chart

release_exists "$RELEASE" || die "no stable release $RELEASE in $NAMESPACE: deploy.sh first"
serving="$(serving_release)" || die "cannot read the public Service $PUBLIC_SERVICE in $NAMESPACE (deploy.sh first)"
[[ -n "$serving" ]] || die "$PUBLIC_SERVICE has no '$COLOUR_LABEL' selector: set COLOUR_LABEL"
if [[ "$serving" == "$RELEASE-green" ]]; then colour=blue; else colour=green; fi
new="$RELEASE-$colour"
before="$(previous_release)" || before=""
api_only_args || die "cannot read the api Deployment of $RELEASE (its home claim and service account)"
log "serving: $serving; deploying $TAG as $new (api only)"

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
  if [[ "$phase" == promoting ]]; then
    log "$RELEASE was being upgraded to $TAG: helm --atomic restores it on failure; $new kept (it may serve)." \
      "Check 'helm history $RELEASE' and run rollback.sh $ENV_NAME if needed"
    exit 130
  fi
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

if ! helm_deploy "$new" "$TAG" "${API_ONLY_ARGS[@]}" "${EXTRA_COLOUR_ARGS[@]}"; then
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
if ! { health_gate "$PUBLIC_SERVICE" && url_gate && error_rate_gate "$PUBLIC_SERVICE"; }; then
  trap - INT TERM
  log "$new failed under traffic: switching back to $serving"
  switch_traffic "$serving" "$before" || die "switch back to $serving failed: $new still serves, operator action needed"
  discard_new
  if ! health_gate "$PUBLIC_SERVICE"; then
    log "$serving is not healthy either after the switch back: operator action needed"
  fi
  die "$new at $TAG was rolled back; traffic on $serving"
fi

phase=promoting
log "$new served well: promoting $TAG to $RELEASE (feed, workers, migrations; the public Service returns to it)"
if ! helm_deploy "$RELEASE" "$TAG"; then
  trap - INT TERM
  discard_new
  die "helm upgrade of $RELEASE to $TAG failed: helm --atomic restored it (and the public Service's selector)"
fi
trap - INT TERM
forget_colours || log "could not clear the colour annotations of $PUBLIC_SERVICE: rollback.sh would pick colour mode"
if ! { health_gate "$PUBLIC_SERVICE" && url_gate; }; then
  ROLLBACK_MODE=helm "$ST_LIB_DIR/rollback.sh" "$ENV_NAME" || log "helm rollback failed: operator action needed"
  discard_new
  die "$RELEASE is not healthy after the promotion of $TAG (rolled back)"
fi

# the colours have nothing left to serve: uninstall them (the new one, and a colour that served before this run)
for old in "$RELEASE-green" "$RELEASE-blue"; do
  if release_exists "$old"; then
    log "retiring $old"
    hm uninstall "$old" --wait --timeout "$HELM_TIMEOUT" >/dev/null || log "helm uninstall $old failed: remove it by hand"
  fi
done
log "$TAG promoted: $RELEASE serves $NAMESPACE (rollback.sh $ENV_NAME: helm rollback to the previous revision)"
