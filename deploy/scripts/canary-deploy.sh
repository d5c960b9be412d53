#!/usr/bin/env bash
# Canary deployment of Smart Trader behind NGINX Ingress: the new version takes a growing share of the public
# traffic (nginx.ingress.kubernetes.io/canary-weight), with a health and error-rate gate at every step; any failed
# gate removes the canary (rollback.sh, canary mode) so that all traffic is back on the stable release.
#
# Usage: deploy/scripts/canary-deploy.sh ENV TAG
#   ENV  dev | staging | prod      TAG  the image tag to run (image.tag)
# Steps:
#   1. helm upgrade --install <RELEASE>-canary at TAG --atomic --wait, api only (lib.sh api_only_args: no feed, no
#      workers, no migration hook, no Ingress; the stable release's home claim and service account) + CANARY_SET
#   2. /health and /ready of the canary's Service
#   3. a canary Ingress <RELEASE>-canary: the public Ingress's rules for the stable api Service, sent to the
#      canary's api Service, annotated canary=true, canary-weight=0
#   4. for each weight of CANARY_STEPS ("10 25 50 100"): set canary-weight, wait STEP_SECONDS (120), then the
#      canary's /health and /ready, its 5xx ratio in Prometheus, and HEALTH_URL when set
#   5. promote (at 100 %): helm upgrade of the stable release to TAG (--atomic --wait): its api, the feed, the workers
#      and the migration hook move to TAG; check it, then remove the canary Ingress and release
# INT/TERM (a cancelled or timed-out CI job) removes the canary too, then exits 130.
# Exit: 0 promoted and healthy, 1 failed (traffic back on the stable release), 2 bad arguments.
# Settings (environment): PROMETHEUS_URL is required; CANARY_STEPS, STEP_SECONDS, CANARY_SET (more helm args for the
# canary release, after the api-only ones); the rest in deploy/scripts/lib.sh.
set -euo pipefail
USAGE="usage: ${0##*/} ENV TAG    (ENV: dev|staging|prod; needs PROMETHEUS_URL; settings in lib.sh)"
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

help_if_asked "$@"
parse_env_tag "$@"
STEP_SECONDS="${STEP_SECONDS:-120}"
[[ "$STEP_SECONDS" =~ ^[0-9]+$ ]] || usage_error "STEP_SECONDS must be a whole number"
read -r -a STEPS <<<"${CANARY_STEPS:-10 25 50 100}"
((${#STEPS[@]})) || usage_error "CANARY_STEPS is empty"
last=0
for weight in "${STEPS[@]}"; do
  if ! [[ "$weight" =~ ^[0-9]+$ ]] || ((weight <= last || weight > 100)); then
    usage_error "CANARY_STEPS must be rising weights from 1 to 100, got '${STEPS[*]}'"
  fi
  last="$weight"
done
((last == 100)) || usage_error "CANARY_STEPS must end at 100, got '${STEPS[*]}'"
read -r -a EXTRA_CANARY_ARGS <<<"${CANARY_SET:-}"
require_prometheus
check_chart

release_exists "$RELEASE" || die "no stable release $RELEASE in $NAMESPACE: deploy.sh first"
api_only_args || die "cannot read the api Deployment of $RELEASE (its home claim and service account)"
stable_svc="$(api_service "$RELEASE")"
canary_svc="$(api_service "$CANARY_RELEASE")"

abort() {
  log "canary failed: $1"
  ROLLBACK_MODE=canary "$ST_LIB_DIR/rollback.sh" "$ENV_NAME" || log "canary removal failed: operator action needed"
  die "$TAG not promoted; traffic on $RELEASE"
}

# shellcheck disable=SC2329 # invoked by the trap below
on_signal() {
  trap - INT TERM
  stop_pause
  log "interrupted: removing the canary"
  ROLLBACK_MODE=canary "$ST_LIB_DIR/rollback.sh" "$ENV_NAME" || log "canary removal failed: operator action needed"
  exit 130
}
trap on_signal INT TERM

helm_deploy "$CANARY_RELEASE" "$TAG" "${API_ONLY_ARGS[@]}" "${EXTRA_CANARY_ARGS[@]}" ||
  abort "helm install of $CANARY_RELEASE failed"
health_gate "$canary_svc" || abort "$canary_svc is not healthy"

# the canary Ingress: the public Ingress's rules that reach the stable api Service, pointed at the canary's
ingress_json="$(kc get ingress "$INGRESS" -o json)" || abort "cannot read the public Ingress $INGRESS"
canary_json="$("${PYTHON_CMD[@]}" -c '
import json, sys
src, name, stable, canary = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
rules = []
for rule in src["spec"].get("rules", []):
    paths = [p for p in rule.get("http", {}).get("paths", []) if p["backend"].get("service", {}).get("name") == stable]
    for p in paths:
        p["backend"]["service"]["name"] = canary
    if paths:
        rules.append({**rule, "http": {"paths": paths}})
if not rules:
    sys.exit(f"the Ingress routes nothing to {stable}")
spec = {"rules": rules}
for key in ("ingressClassName", "tls"):
    if key in src["spec"]:
        spec[key] = src["spec"][key]
print(json.dumps({
    "apiVersion": src.get("apiVersion", "networking.k8s.io/v1"), "kind": "Ingress",
    "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "canary-deploy.sh"},
                 "annotations": {"nginx.ingress.kubernetes.io/canary": "true",
                                 "nginx.ingress.kubernetes.io/canary-weight": "0"}},
    "spec": spec,
}))
' "$ingress_json" "$CANARY_INGRESS" "$stable_svc" "$canary_svc")" || abort "cannot build the canary Ingress"
kc apply -f - <<<"$canary_json" >/dev/null || abort "cannot create the canary Ingress $CANARY_INGRESS"

for weight in "${STEPS[@]}"; do
  kc annotate --overwrite ingress "$CANARY_INGRESS" "nginx.ingress.kubernetes.io/canary-weight=$weight" >/dev/null ||
    abort "cannot set the canary weight to $weight"
  log "canary weight $weight%: observing for ${STEP_SECONDS}s"
  pause "$STEP_SECONDS"
  health_gate "$canary_svc" || abort "$canary_svc is not healthy at $weight%"
  error_rate_gate "$canary_svc" || abort "$canary_svc error rate too high at $weight%"
  url_gate || abort "the public route failed at $weight%"
done

log "canary passed every step: promoting $TAG to $RELEASE"
helm_deploy "$RELEASE" "$TAG" || abort "helm upgrade of $RELEASE to $TAG failed (helm restored it)"
if ! health_gate "$stable_svc"; then
  ROLLBACK_MODE=helm "$ST_LIB_DIR/rollback.sh" "$ENV_NAME" || log "helm rollback failed: operator action needed"
  abort "$RELEASE is not healthy after the promotion (rolled back)"
fi
remove_canary || die "$TAG promoted, but the canary could not be removed: delete $CANARY_INGRESS and $CANARY_RELEASE"
log "$TAG promoted: $RELEASE serves $NAMESPACE"
