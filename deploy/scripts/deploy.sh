#!/usr/bin/env bash
# Deploy Smart Trader to one environment with Helm, then check that it is healthy; roll back when it is not.
#
# Usage: deploy/scripts/deploy.sh ENV TAG
#   ENV  dev | staging | prod      TAG  the image tag to run (image.tag), e.g. the commit SHA or v1.4.0
# Steps: helm upgrade --install <RELEASE> <CHART> -f <VALUES> --set image.tag=TAG --atomic --wait (Helm itself rolls
# back a release whose pods do not become Ready), then /health and /ready of a pod of the "<RELEASE>-api" Service
# through `kubectl port-forward` (lib.sh probe), then HEALTH_URL (the public route) when set. A failed check after a successful upgrade runs
# `rollback.sh ENV` (helm rollback to the previous revision) and exits 1.
# Exit: 0 deployed and healthy, 1 deployment or check failed (rolled back when possible), 2 bad arguments.
# Settings come from the environment (KUBECTL, HELM, NAMESPACE, RELEASE, CHART, VALUES, IMAGE_REPOSITORY, ...):
# see deploy/scripts/lib.sh.
set -euo pipefail
USAGE="usage: ${0##*/} ENV TAG    (ENV: dev|staging|prod; TAG: the image tag; settings from the environment, see lib.sh)"
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

help_if_asked "$@"
parse_env_tag "$@"
check_chart

had_release=0
release_exists "$RELEASE" && had_release=1

if ! helm_deploy "$RELEASE" "$TAG"; then
  die "helm upgrade of $RELEASE to $TAG failed (helm --atomic restored the previous release)"
fi

if health_gate "$(api_service "$RELEASE")" && url_gate; then
  log "$RELEASE at $TAG is deployed and healthy in $NAMESPACE"
  exit 0
fi

if ((had_release)); then
  log "health check failed after the upgrade: rolling $RELEASE back"
  ROLLBACK_MODE=helm "$ST_LIB_DIR/rollback.sh" "$ENV_NAME" || log "rollback failed too: operator action needed"
else
  log "health check failed on a first install: nothing to roll back to (helm uninstall $RELEASE to remove it)"
fi
die "$RELEASE at $TAG is not healthy in $NAMESPACE"
