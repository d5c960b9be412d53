#!/usr/bin/env bash
# Shared functions of the deployment scripts (deploy.sh, blue-green-deploy.sh, canary-deploy.sh, rollback.sh).
# Sourced, never run: `source "$(dirname "$0")/lib.sh"`.
#
# Every outside command comes from the environment, so an operator can point the scripts at a wrapper (a kubectl with
# --context, a helm plugin) and a test can replace them with recording stand-ins:
#   KUBECTL (kubectl)  HELM (helm)  CURL (curl)  PYTHON (python3, JSON handling)
# Settings (environment):
#   NAMESPACE         Kubernetes namespace                         (smart-trader: the namespace deploy/terraform's
#                     IRSA / workload identity trusts, with the service account smart-trader; one cluster per env)
#   RELEASE           Helm release of the stable deployment         (smart-trader)
#   CHART             chart folder                                  (deploy/helm/smart-trader)
#   VALUES            values file of the environment                (<CHART>/values-<env>.yaml)
#   EXTRA_VALUES      more values files, space separated, applied after VALUES
#   IMAGE_REPOSITORY  image repository (image.repository); unset: the chart's value
#   IMAGE_DIGEST      image digest (image.digest, sha256:...): the pods run exactly the image that was pushed
#   HELM_TIMEOUT      helm --timeout                                (10m)
#   CREATE_NAMESPACE  1: helm --create-namespace                    (0: the namespace must exist)
#   PUBLIC_SERVICE    the Service the public Ingress sends traffic to (<release>-api); blue-green switches its selector
#   COLOUR_LABEL      the selector label naming the release that serves  (app.kubernetes.io/instance)
#   INGRESS           the public Ingress (<release>); the canary Ingress copies its rules   (<release>)
#   CANARY_RELEASE / CANARY_INGRESS   names of the canary release and its Ingress   (<release>-canary)
#   SERVICE_PORT      name of the api Service port                  (http)
#   API_COMPONENT     suffix of the api Service after the release   (api): Service "<release>-api"
#   HEALTH_RETRIES / HEALTH_INTERVAL   tries of /health and /ready, seconds between them   (12 / 5)
#   HOME_CLAIM        the stable release's SMART_TRADER_HOME claim that api-only releases mount (read from its api
#                     Deployment; set it only when that Deployment cannot be read)
#   STABLE_SERVICE_ACCOUNT  the stable release's service account, kept by api-only releases (read like HOME_CLAIM)
#   HEALTH_URL        public base URL (the Ingress); when set, /health and /ready are also checked through it with CURL
#   PROMETHEUS_URL    Prometheus base URL for the error-rate gate (blue-green and canary require it)
#   PROMETHEUS_TOKEN  bearer token for Prometheus (optional; sent in a header, never on the command line)
#   ERROR_RATE_QUERY  PromQL; "{namespace}" and "{service}" are replaced   (see ERROR_RATE_QUERY_DEFAULT)
#   MAX_ERROR_RATE    highest accepted 5xx ratio, 0..1                           (0.01)
#   REQUIRE_METRICS   1: no sample for the service fails the gate              (0: "no traffic yet" passes)
#   SKIP_ERROR_RATE_GATE  1: skip the Prometheus gate (logged loudly; never the default)

ST_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ST_ROOT="$(cd "$ST_LIB_DIR/../.." && pwd)"
# 5xx share of the api's responses over 5 minutes for one Service's pods, from the application's own histogram
# (api_response_duration_seconds, label status). The monitoring kit's recording rule job:http_errors:ratio_rate5m
# sums by job, and in Kubernetes job is the role ("api") for every release alike, so it cannot tell a canary or a
# new colour from the stable release: the gate reads the raw series with the namespace and service labels that the
# Prometheus Operator puts on every target of the chart's ServiceMonitor. "or 0 * ..." gives 0, not "no data", when
# the Service has answered requests but no 5xx yet.
ST_SERIES='api_response_duration_seconds_count{namespace="{namespace}",service="{service}"'
ERROR_RATE_QUERY_DEFAULT="(sum(rate($ST_SERIES,status=~\"5..\"}[5m])) or 0 * sum(rate($ST_SERIES}[5m])))"
ERROR_RATE_QUERY_DEFAULT+=" / sum(rate($ST_SERIES}[5m]))"

read -r -a KUBECTL_CMD <<<"${KUBECTL:-kubectl}"
read -r -a HELM_CMD <<<"${HELM:-helm}"
read -r -a CURL_CMD <<<"${CURL:-curl}"
read -r -a PYTHON_CMD <<<"${PYTHON:-python3}"

log() { printf '[%s] %s: %s\n' "$(date -u +%H:%M:%S)" "${0##*/}" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
# usage_error MESSAGE: the script's USAGE text and the message on stderr, exit 2 (bad arguments)
usage_error() {
  printf '%s\n' "$USAGE" >&2
  printf 'error: %s\n' "$1" >&2
  exit 2
}

# parse_env ENV: checks the environment name and sets the defaults
parse_env() {
  ENV_NAME="$1"
  case "$ENV_NAME" in
    dev | staging | prod) ;;
    *) usage_error "unknown environment '$ENV_NAME' (expected dev, staging or prod)" ;;
  esac
  NAMESPACE="${NAMESPACE:-smart-trader}"
  RELEASE="${RELEASE:-smart-trader}"
  CHART="${CHART:-$ST_ROOT/deploy/helm/smart-trader}"
  VALUES="${VALUES:-$CHART/values-$ENV_NAME.yaml}"
  HELM_TIMEOUT="${HELM_TIMEOUT:-10m}"
  SERVICE_PORT="${SERVICE_PORT:-http}"
  API_COMPONENT="${API_COMPONENT:-api}"
  HEALTH_RETRIES="${HEALTH_RETRIES:-12}"
  HEALTH_INTERVAL="${HEALTH_INTERVAL:-5}"
  MAX_ERROR_RATE="${MAX_ERROR_RATE:-0.01}"
  ERROR_RATE_QUERY="${ERROR_RATE_QUERY:-$ERROR_RATE_QUERY_DEFAULT}"
  PUBLIC_SERVICE="${PUBLIC_SERVICE:-$RELEASE-$API_COMPONENT}"
  COLOUR_LABEL="${COLOUR_LABEL:-app.kubernetes.io/instance}"
  INGRESS="${INGRESS:-$RELEASE}"
  CANARY_RELEASE="${CANARY_RELEASE:-$RELEASE-canary}"
  CANARY_INGRESS="${CANARY_INGRESS:-$CANARY_RELEASE}"
  [[ "$RELEASE" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || usage_error "RELEASE '$RELEASE' is not a valid release name"
  [[ "$HEALTH_RETRIES" =~ ^[0-9]+$ && "$HEALTH_INTERVAL" =~ ^[0-9]+$ ]] ||
    usage_error "HEALTH_RETRIES and HEALTH_INTERVAL must be whole numbers"
  [[ "$MAX_ERROR_RATE" =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || usage_error "MAX_ERROR_RATE must be a ratio between 0 and 1"
}

# help_if_asked ARGS...: -h/--help as the first argument prints USAGE and exits 0
help_if_asked() {
  if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
    printf '%s\n' "$USAGE"
    exit 0
  fi
}

# parse_env_tag ENV TAG: the arguments of deploy.sh, blue-green-deploy.sh and canary-deploy.sh (anything else: usage
# and exit 2); sets ENV_NAME and the defaults (parse_env) and TAG
parse_env_tag() {
  (($# == 2)) || usage_error "expected 2 arguments, got $#"
  parse_env "$1"
  TAG="$2"
  check_tag "$TAG"
}

check_tag() {
  # an OCI tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
  [[ "$1" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || usage_error "'$1' is not a valid image tag"
}

check_chart() {
  [[ -f "$CHART/Chart.yaml" ]] || die "chart not found: $CHART/Chart.yaml (set CHART)"
  [[ -f "$VALUES" ]] || die "values file not found: $VALUES (set VALUES)"
  local extra
  for extra in ${EXTRA_VALUES:-}; do
    [[ -f "$extra" ]] || die "values file not found: $extra (EXTRA_VALUES)"
  done
}

kc() { "${KUBECTL_CMD[@]}" --namespace "$NAMESPACE" "$@"; }
hm() { "${HELM_CMD[@]}" --namespace "$NAMESPACE" "$@"; }

api_service() { printf '%s-%s' "$1" "$API_COMPONENT"; }

release_exists() { hm status "$1" >/dev/null 2>&1; }

# helm_deploy RELEASE TAG [helm args...]: install or upgrade RELEASE at TAG; helm rolls back by itself on failure
helm_deploy() {
  local release="$1" tag="$2"
  shift 2
  local args=(upgrade --install "$release" "$CHART" --values "$VALUES")
  local extra
  for extra in ${EXTRA_VALUES:-}; do args+=(--values "$extra"); done
  args+=(--set-string "image.tag=$tag")
  [[ -n "${IMAGE_REPOSITORY:-}" ]] && args+=(--set-string "image.repository=$IMAGE_REPOSITORY")
  [[ -n "${IMAGE_DIGEST:-}" ]] && args+=(--set-string "image.digest=$IMAGE_DIGEST")
  [[ "${CREATE_NAMESPACE:-0}" == 1 ]] && args+=(--create-namespace)
  args+=(--atomic --wait --timeout "$HELM_TIMEOUT" "$@")
  log "helm ${args[*]} (namespace $NAMESPACE)"
  hm "${args[@]}"
}

# probe SERVICE PATH: GET PATH of one pod behind SERVICE through `kubectl port-forward svc/SERVICE :http`.
# Why port-forward: the chart's NetworkPolicies deny all ingress to the pods but from ingress-nginx and Prometheus, so
# the API server's service proxy (its traffic comes from the control plane's addresses: EKS ENIs, the AKS tunnel) is
# blocked wherever policies are enforced. A port-forward goes API server -> kubelet -> a connection opened inside the
# pod's network namespace to its own port: no NetworkPolicy applies to it, and it reaches a new colour or a canary
# before it takes traffic. `kubectl exec ... python -c urllib` would do the same but needs `pods/exec` (running any
# command in production pods, with their secrets); port-forward needs only `pods/portforward` and no shell in the
# image. kubectl picks a free local port itself (":http"); the forward is ended after each probe and on exit.
probe() {
  local svc="$1" path="$2" out port="" i rc=1
  out="$(mktemp)"
  # run directly, not through kc(): $! is then kubectl itself, which stop_forward ends (a backgrounded function is a
  # subshell whose kubectl child would outlive the kill)
  "${KUBECTL_CMD[@]}" --namespace "$NAMESPACE" port-forward --address 127.0.0.1 --pod-running-timeout=20s \
    "svc/$svc" ":$SERVICE_PORT" >"$out" 2>&1 &
  ST_FORWARD_PID=$!
  for ((i = 0; i < 150; i++)); do # "Forwarding from 127.0.0.1:PORT -> 8000", within 15 s
    port="$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$out" | head -n 1)"
    [[ -n "$port" ]] && break
    kill -0 "$ST_FORWARD_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -n "$port" ]]; then
    "${CURL_CMD[@]}" -fsS --max-time 10 -o /dev/null "http://127.0.0.1:$port$path" && rc=0
  else
    log "port-forward to svc/$svc failed: $(tr '\n' ' ' <"$out")"
  fi
  stop_forward
  rm -f "$out"
  return "$rc"
}
# stop_forward: ends the port-forward of a probe (also on exit: the EXIT trap below)
stop_forward() {
  if [[ -n "${ST_FORWARD_PID:-}" ]]; then
    kill "$ST_FORWARD_PID" 2>/dev/null || true
    wait "$ST_FORWARD_PID" 2>/dev/null || true
    ST_FORWARD_PID=""
  fi
}
trap stop_forward EXIT

# health_gate SERVICE: /health then /ready of SERVICE answer 2xx within HEALTH_RETRIES tries
health_gate() {
  local svc="$1" try path
  for path in /health /ready; do
    for ((try = 1; ; try++)); do
      if probe "$svc" "$path"; then
        log "$svc $path ok"
        break
      fi
      if ((try >= HEALTH_RETRIES)); then
        log "$svc $path failed $try times"
        return 1
      fi
      pause "$HEALTH_INTERVAL"
    done
  done
}

# url_gate: when HEALTH_URL (the public route) is set, /health and /ready answer 2xx through it (CURL)
url_gate() {
  [[ -n "${HEALTH_URL:-}" ]] || return 0
  local try path url
  for path in /health /ready; do
    url="${HEALTH_URL%/}$path"
    for ((try = 1; ; try++)); do
      if "${CURL_CMD[@]}" -fsS --max-time 10 -o /dev/null "$url" 2>/dev/null; then
        log "$url ok"
        break
      fi
      if ((try >= HEALTH_RETRIES)); then
        log "$url failed $try times"
        return 1
      fi
      pause "$HEALTH_INTERVAL"
    done
  done
}

# prom_query QUERY: prints the highest value of the instant vector, or "nodata"; fails when Prometheus does
prom_query() {
  local q="$1" body
  local args=(-fsS --max-time 15 --get --data-urlencode "query=$q")
  if [[ -n "${PROMETHEUS_TOKEN:-}" ]]; then
    body="$("${CURL_CMD[@]}" "${args[@]}" -H @<(printf 'Authorization: Bearer %s\n' "$PROMETHEUS_TOKEN") \
      "${PROMETHEUS_URL%/}/api/v1/query")" || return 1
  else
    body="$("${CURL_CMD[@]}" "${args[@]}" "${PROMETHEUS_URL%/}/api/v1/query")" || return 1
  fi
  "${PYTHON_CMD[@]}" -c '
import json, math, sys
doc = json.loads(sys.argv[1])
if doc.get("status") != "success":
    sys.exit("prometheus: " + str(doc.get("error", doc.get("status"))))
values = [float(r["value"][1]) for r in doc["data"]["result"]]
values = [v for v in values if not math.isnan(v)]
print(max(values) if values else "nodata")
' "$body"
}

# error_rate_gate SERVICE: the 5xx ratio of SERVICE (ERROR_RATE_QUERY) is at most MAX_ERROR_RATE
error_rate_gate() {
  local svc="$1" q value
  if [[ "${SKIP_ERROR_RATE_GATE:-0}" == 1 ]]; then
    log "WARNING: error-rate gate SKIPPED (SKIP_ERROR_RATE_GATE=1)"
    return 0
  fi
  q="${ERROR_RATE_QUERY//\{namespace\}/$NAMESPACE}"
  q="${q//\{service\}/$svc}"
  if ! value="$(prom_query "$q")"; then
    log "error-rate gate: Prometheus query failed ($PROMETHEUS_URL): $q"
    return 1
  fi
  if [[ "$value" == nodata ]]; then
    if [[ "${REQUIRE_METRICS:-0}" == 1 ]]; then
      log "error-rate gate: no sample for $svc and REQUIRE_METRICS=1: $q"
      return 1
    fi
    log "error-rate gate: no sample for $svc yet (no traffic): passes"
    return 0
  fi
  if awk -v v="$value" -v max="$MAX_ERROR_RATE" 'BEGIN { exit !(v <= max) }'; then
    log "error-rate gate: $svc 5xx ratio $value <= $MAX_ERROR_RATE"
    return 0
  fi
  log "error-rate gate: $svc 5xx ratio $value > $MAX_ERROR_RATE"
  return 1
}

require_prometheus() {
  [[ -n "${PROMETHEUS_URL:-}" || "${SKIP_ERROR_RATE_GATE:-0}" == 1 ]] ||
    usage_error "PROMETHEUS_URL is required for the error-rate gate (or SKIP_ERROR_RATE_GATE=1, not advised)"
}

ACTIVE_ANNOTATION="smart-trader.io/active-release"
PREVIOUS_ANNOTATION="smart-trader.io/previous-release"

# jsonpath_key KEY: a map key for kubectl jsonpath, dots escaped
jsonpath_key() { printf '%s' "${1//./\\.}"; }

# serving_release: the release whose pods the public Service selects now
serving_release() {
  kc get service "$PUBLIC_SERVICE" -o "jsonpath={.spec.selector.$(jsonpath_key "$COLOUR_LABEL")}"
}
previous_release() {
  kc get service "$PUBLIC_SERVICE" -o "jsonpath={.metadata.annotations.$(jsonpath_key "$PREVIOUS_ANNOTATION")}"
}

# switch_traffic TO FROM: point the public Service at release TO's pods and remember FROM for the way back
switch_traffic() {
  local to="$1" from="$2" patch
  patch="$(printf '{"metadata":{"annotations":{"%s":"%s","%s":"%s"}},"spec":{"selector":{"%s":"%s"}}}' \
    "$ACTIVE_ANNOTATION" "$to" "$PREVIOUS_ANNOTATION" "$from" "$COLOUR_LABEL" "$to")"
  log "switching $PUBLIC_SERVICE from $from to $to"
  kc patch service "$PUBLIC_SERVICE" --type merge -p "$patch" >/dev/null
}

# remove_canary: the canary Ingress first (traffic back on the stable release), then the canary release
remove_canary() {
  kc delete ingress "$CANARY_INGRESS" --ignore-not-found >/dev/null || {
    log "could not delete Ingress $CANARY_INGRESS"
    return 1
  }
  log "canary Ingress $CANARY_INGRESS removed: all traffic on $RELEASE"
  if release_exists "$CANARY_RELEASE"; then
    hm uninstall "$CANARY_RELEASE" --wait --timeout "$HELM_TIMEOUT" >/dev/null || {
      log "helm uninstall $CANARY_RELEASE failed"
      return 1
    }
    log "canary release $CANARY_RELEASE uninstalled"
  fi
}

# api_only_args: sets API_ONLY_ARGS, the helm arguments of a release that runs only the api beside the stable
# release RELEASE (a blue-green colour, a canary). It must not start a second feed (the runtime lock in the database
# makes it exit, so the release never becomes ready), nor a second set of workers on the same Redis consumer groups,
# nor the migration hook, nor its own Ingress, PrometheusRule (alerts and recording rules twice) or adapter
# ConfigMap. Its pods mount the stable release's SMART_TRADER_HOME claim (the instrument catalog the feed fills: the
# chart's "smart-trader.homeClaimName", <fullname>-home or sharedHome.existingClaim) and run as the stable release's
# service account (the name deploy/terraform's IRSA / workload identity trusts), which they use, not create. Both
# are read from the stable release's api Deployment, so an existingClaim or serviceAccount.name in the values is
# followed. Fails when that Deployment cannot be read (no stable release: deploy.sh first).
api_only_args() {
  local deploy claim sa
  deploy="$RELEASE-$API_COMPONENT"
  sa="${STABLE_SERVICE_ACCOUNT:-}"
  if [[ -z "$sa" ]]; then
    sa="$(kc get deployment "$deploy" -o 'jsonpath={.spec.template.spec.serviceAccountName}')" || return 1
  fi
  claim="${HOME_CLAIM:-}"
  if [[ -z "$claim" ]]; then
    claim="$(kc get deployment "$deploy" \
      -o 'jsonpath={.spec.template.spec.volumes[?(@.name=="home")].persistentVolumeClaim.claimName}')" || return 1
  fi
  API_ONLY_ARGS=(--set ingress.enabled=false --set roles.feed.enabled=false --set roles.worker.enabled=false
    --set migrations.enabled=false --set prometheusRule.enabled=false --set metricsAdapter.configMap.enabled=false
    --set serviceAccount.create=false --set-string "serviceAccount.name=${sa:-default}")
  if [[ -n "$claim" ]]; then
    API_ONLY_ARGS+=(--set sharedHome.enabled=true --set-string "sharedHome.existingClaim=$claim")
  else
    log "WARNING: $deploy mounts no shared home claim (sharedHome.enabled=false): the new api pods get their own"
    API_ONLY_ARGS+=(--set sharedHome.enabled=false)
  fi
}

# forget_colours: the public Service no longer remembers an active or previous colour (traffic on RELEASE's own pods)
forget_colours() {
  kc patch service "$PUBLIC_SERVICE" --type merge \
    -p "$(printf '{"metadata":{"annotations":{"%s":null,"%s":null}}}' "$ACTIVE_ANNOTATION" "$PREVIOUS_ANNOTATION")" \
    >/dev/null
}

# pause SECONDS: a sleep that a trapped INT/TERM interrupts at once (the job's cancellation or timeout)
pause() {
  sleep "$1" &
  ST_SLEEP_PID=$!
  wait "$ST_SLEEP_PID"
}
# stop_pause: ends the sleep of an interrupted pause (it would outlive the script, holding its output open)
stop_pause() {
  if [[ -n "${ST_SLEEP_PID:-}" ]]; then kill "$ST_SLEEP_PID" 2>/dev/null || true; fi
}
