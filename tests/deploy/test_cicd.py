"""CI/CD: the GitHub Actions workflows and the deployment scripts they call.

Static: actionlint (with shellcheck on every ``run:`` block), the GitHub workflow and action JSON schemas, yamllint,
shellcheck on every script, and the workflows' own rules (actions pinned by commit SHA, least-privilege permissions,
timeouts, concurrency).

Behaviour: the scripts take their cluster tools from ``KUBECTL``, ``HELM`` and ``CURL``. Here those are **recording
stand-ins for the cluster tools** (``STANDIN`` below, written to a temporary folder): one small program that keeps a
toy cluster state in a JSON file (Helm releases and their revisions, Services with selectors and annotations,
Ingresses), answers like kubectl/helm/curl do for the commands the scripts use (exit codes, ``-o jsonpath``, the
service proxy's ``/health`` and ``/ready``, Prometheus's ``/api/v1/query`` JSON), and logs every call. A scenario
marks image tags as broken (``/ready`` 503) or erroring (a 5xx ratio), and the tests assert on the sequence of calls
and on the state left: a failed gate triggers the rollback and a non-zero exit, a good one switches traffic, bad
arguments print the usage and exit 2.

Real: ``test_deploy_and_rollback_on_the_local_cluster`` (marked ``deploy``) runs deploy.sh and rollback.sh against
the single-node cluster of ``deploy/k8s-local`` when its kubeconfig exists.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY, ROOT, run, tool
from .test_kubernetes import DATABASE as LOCAL_DATABASE
from .test_kubernetes import GATEWAY as LOCAL_GATEWAY
from .test_kubernetes import K8S as LOCAL_K8S
from .test_kubernetes import _image_loaded, cluster, database, redis_url

# test_kubernetes.py's fixtures, for the real test below: the local cluster, an empty database, a private Redis
LOCAL_CLUSTER_FIXTURES = (cluster, database, redis_url)
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
SCRIPTS = DEPLOY / "scripts"
SCRIPT_NAMES = ["deploy.sh", "blue-green-deploy.sh", "canary-deploy.sh", "rollback.sh"]
NS = "smart-trader-prod"
SHA_REF = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --------------------------------------------------------------------------------------------------------------------
# Static checks


def test_the_workflows_exist() -> None:
    names = {p.name for p in _workflow_files()}
    assert {"ci.yml", "release.yml", "rollback.yml"} <= names, names


def test_actionlint_with_shellcheck_on_every_run_block() -> None:
    tool("shellcheck")  # actionlint runs the shell of every `run:` through the shellcheck on PATH
    result = run([tool("actionlint"), "-no-color", *map(str, _workflow_files())])
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_and_actions_match_the_github_schemas() -> None:
    exe = tool("check-jsonschema")
    result = run([exe, "--builtin-schema", "vendor.github-workflows", *map(str, _workflow_files())])
    assert result.returncode == 0, result.stdout + result.stderr
    actions = sorted(ACTIONS.glob("*/action.yml"))
    assert actions, "the local composite actions"
    result = run([exe, "--builtin-schema", "vendor.github-actions", *map(str, actions)])
    assert result.returncode == 0, result.stdout + result.stderr
    result = run([exe, "--builtin-schema", "vendor.dependabot", str(ROOT / ".github" / "dependabot.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_on_the_workflows_and_the_skip_file() -> None:
    targets = [str(ROOT / ".github"), str(DEPLOY / "scan-skips" / "cicd.yaml")]
    result = run([tool("yamllint"), "-c", str(ROOT / ".yamllint.yaml"), "--strict", *targets])
    assert result.returncode == 0, result.stdout


def test_shellcheck_on_every_deployment_script() -> None:
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert {p.name for p in scripts} >= {*SCRIPT_NAMES, "lib.sh"}
    result = run([tool("shellcheck"), "-x", *map(str, scripts)], cwd=Path("/"))
    assert result.returncode == 0, result.stdout + result.stderr
    for path in scripts:
        text = path.read_text()
        assert "set -euo pipefail" in text or path.name == "lib.sh", path
        assert "Usage:" in text or path.name == "lib.sh", f"{path}: a usage comment at the top"
        if path.name != "lib.sh":
            assert os.access(path, os.X_OK), f"{path} is executable"


def _uses(doc: Any) -> list[str]:
    found: list[str] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "uses" and isinstance(value, str):
                found.append(value)
            else:
                found += _uses(value)
    elif isinstance(doc, list):
        for item in doc:
            found += _uses(item)
    return found


def test_every_action_is_pinned_by_commit_sha_with_its_version_in_a_comment() -> None:
    files = [*_workflow_files(), *ACTIONS.glob("*/action.yml")]
    seen = 0
    for path in files:
        lines = path.read_text().splitlines()
        for ref in _uses(_yaml(path)):
            if ref.startswith("./"):
                assert (ROOT / ref / "action.yml").is_file(), f"{path.name}: local action {ref} missing"
                continue
            seen += 1
            assert SHA_REF.match(ref), f"{path.name}: {ref} is not pinned by a full commit SHA"
            line = next(x for x in lines if ref in x)
            assert re.search(r"#\s*v\d+(\.\d+)*\s*$", line), f"{path.name}: {ref} needs its version in a comment"
    assert seen >= 10


def test_least_privilege_timeouts_and_concurrency() -> None:
    for path in _workflow_files():
        doc = _yaml(path)
        assert doc.get("permissions") == {"contents": "read"}, f"{path.name}: workflow-level permissions read-only"
        assert "concurrency" in doc, f"{path.name}: a concurrency group"
        for name, job in doc["jobs"].items():
            assert isinstance(job.get("timeout-minutes"), int), f"{path.name}:{name} timeout-minutes"
            perms = job.get("permissions")
            assert isinstance(perms, dict), f"{path.name}:{name} declares its permissions"
            assert "write-all" not in str(perms)
            writes = {k for k, v in perms.items() if v == "write"}
            assert writes <= {"packages", "id-token", "security-events"}, f"{path.name}:{name} writes {writes}"
            if "id-token" in writes or "packages" in writes:
                assert path.name in ("release.yml", "rollback.yml"), f"{path.name}:{name} needs no deploy rights"
    text = "\n".join(p.read_text() for p in [*_workflow_files(), *ACTIONS.glob("*/action.yml")])
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, "OIDC only, no stored AWS keys"


def test_ci_runs_the_suite_against_postgres_and_redis_services_with_health_checks() -> None:
    ci = _yaml(WORKFLOWS / "ci.yml")
    test = ci["jobs"]["test"]
    assert test["services"]["postgres"]["image"].startswith("postgres:15")
    assert test["services"]["redis"]["image"].startswith("redis:7")
    for service in test["services"].values():
        assert "--health-cmd" in service["options"]
    assert test["env"]["TEST_DATABASE_URL"].startswith("postgresql://")  # read by tests/conftest.py
    assert test["env"]["TEST_REDIS_URL"].startswith("redis://")
    assert ci["env"]["CI"] == "true"
    runs = "\n".join(step.get("run", "") for job in ci["jobs"].values() for step in job["steps"])
    for command in ("make test", "make deploy-lint", "pip-audit", "bandit", "checkov", "trivy config"):
        assert command in runs, command


def test_release_deploys_staging_then_production_behind_the_environment() -> None:
    release = _yaml(WORKFLOWS / "release.yml")
    jobs = release["jobs"]
    assert jobs["staging"]["needs"] == "image"
    assert set(jobs["production"]["needs"]) == {"image", "staging"}
    assert jobs["production"]["environment"]["name"] == "production"
    staging_runs = "\n".join(s.get("run", "") for s in jobs["staging"]["steps"])
    prod_runs = "\n".join(s.get("run", "") for s in jobs["production"]["steps"])
    assert "deploy/scripts/deploy.sh staging" in staging_runs
    assert "blue-green-deploy.sh prod" in prod_runs and "canary-deploy.sh prod" in prod_runs
    build = [s for s in jobs["image"]["steps"] if "build-push-action" in s.get("uses", "")]
    assert all(s["with"]["file"] == "deploy/docker/Dockerfile" and s["with"]["context"] == "." for s in build)


# --------------------------------------------------------------------------------------------------------------------
# Behaviour of the scripts, with recording stand-ins for kubectl, helm and curl

STANDIN = r'''
"""Recording stand-in for kubectl, helm and curl (tests/deploy/test_cicd.py): a toy cluster in a JSON file."""
import json, os, re, sys, time

STATE, LOG = os.environ["STANDIN_STATE"], os.environ["STANDIN_LOG"]
tool, args = sys.argv[1], sys.argv[2:]
with open(LOG, "a") as f:
    f.write(json.dumps({"tool": tool, "args": args}) + "\n")
with open(STATE) as f:
    st = json.load(f)

def save():
    with open(STATE, "w") as f:
        json.dump(st, f, indent=1)

def fail(msg, code=1):
    print(msg, file=sys.stderr)
    sys.exit(code)

def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default

def strip_ns():
    global args
    out, i = [], 0
    while i < len(args):
        if args[i] in ("--namespace", "-n"):
            if args[i + 1] != st["namespace"]:
                fail(f"namespace {args[i + 1]} not found")
            i += 2
            continue
        out.append(args[i]); i += 1
    args = out

def tag_of(release):
    rel = st["releases"].get(release)
    return rel["revisions"][-1]["tag"] if rel else None

def serving_tag(svc):
    s = st["services"].get(svc)
    return tag_of(s["spec"]["selector"].get("app.kubernetes.io/instance", "")) if s else None

def own_service(release):
    st["services"][release + "-api"] = {"metadata": {"name": release + "-api", "annotations": {}},
        "spec": {"selector": {"app.kubernetes.io/instance": release, "app.kubernetes.io/component": "api"}}}

def jsonpath(doc, expr):
    keys = [k.replace("\x00", ".") for k in expr.strip("{}").replace("\\.", "\x00").lstrip(".").split(".")]
    for k in keys:
        doc = doc.get(k, "") if isinstance(doc, dict) else ""
    return doc

def merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        else:
            dst[k] = v

strip_ns()
if tool == "helm":
    cmd = args[0]
    if cmd == "status":
        if args[1] not in st["releases"]:
            fail("Error: release: not found")
        print(f"NAME: {args[1]}\nSTATUS: deployed")
    elif cmd == "upgrade":
        rel = args[2]
        sets = [a for i, a in enumerate(args) if args[i - 1] == "--set-string"]
        tag = next(a.split("=", 1)[1] for a in sets if a.startswith("image.tag="))
        if tag in st.get("failing_install_tags", []):
            fail(f"Error: UPGRADE FAILED: release {rel} failed, and has been rolled back due to atomic being set")
        st["releases"].setdefault(rel, {"revisions": []})["revisions"].append({"tag": tag, "args": args})
        own_service(rel)  # helm's three-way merge puts the chart's selector back
        if "ingress.enabled=false" not in args:
            st["ingresses"][rel] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": rel, "annotations": {"nginx.ingress.kubernetes.io/limit-rps": "20"}},
                "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["trader.example.org"], "secretName": "tls"}],
                         "rules": [{"host": "trader.example.org", "http": {"paths": [
                             {"path": "/", "pathType": "Prefix",
                              "backend": {"service": {"name": rel + "-api", "port": {"name": "http"}}}},
                             {"path": "/webhooks", "pathType": "Prefix",
                              "backend": {"service": {"name": rel + "-webhooks", "port": {"name": "http"}}}}]}}]}}
        save()
        print(f'Release "{rel}" has been upgraded. Happy Helming!')
    elif cmd == "rollback":
        rel = args[1]
        revs = st["releases"].get(rel, {}).get("revisions", [])
        target = int(args[2]) if len(args) > 2 and args[2].isdigit() else len(revs) - 1
        if not 1 <= target <= len(revs) or target == len(revs) and len(args) <= 2:
            fail(f"Error: release has no {target} version")
        revs.append({"tag": revs[target - 1]["tag"], "args": args})
        own_service(rel)
        save()
        print("Rollback was a success! Happy Helming!")
    elif cmd == "uninstall":
        rel = args[1]
        if st["releases"].pop(rel, None) is None:
            fail(f"Error: uninstall: Release not loaded: {rel}: release: not found")
        st["services"].pop(rel + "-api", None)
        st["ingresses"].pop(rel, None)
        save()
        print(f'release "{rel}" uninstalled')
    else:
        fail(f"stand-in helm: unsupported {args}", 64)
elif tool == "kubectl":
    if args[:2] == ["get", "--raw"]:
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/services/([^/:]+):http/proxy(/.*)", args[2])
        if not m or m.group(1) != st["namespace"] or m.group(2) not in st["services"]:
            fail(f'Error from server (NotFound): services "{m and m.group(2)}" not found')
        tag = serving_tag(m.group(2))
        if tag is None:
            fail("Error from server (ServiceUnavailable): no endpoints available for service")
        if m.group(3) == "/health" and tag in st.get("dead_tags", []) or (
                m.group(3) == "/ready" and tag in st.get("unready_tags", []) + st.get("dead_tags", [])):
            fail("Error from server (ServiceUnavailable): the server is currently unable to handle the request")
        print(json.dumps({"status": "ok"}))
    elif args[0] == "get" and args[1] in ("service", "ingress"):
        objs = st["services"] if args[1] == "service" else st["ingresses"]
        if args[2] not in objs:
            fail(f'Error from server (NotFound): {args[1]}s "{args[2]}" not found')
        out = opt("-o")
        print(json.dumps(objs[args[2]]) if out == "json" else jsonpath(objs[args[2]], out.split("=", 1)[1]), end="")
    elif args[:2] == ["patch", "service"]:
        if args[2] not in st["services"]:
            fail(f'Error from server (NotFound): services "{args[2]}" not found')
        assert opt("--type") == "merge"
        merge(st["services"][args[2]], json.loads(opt("-p")))
        save()
        print(f"service/{args[2]} patched")
    elif args[:3] == ["apply", "-f", "-"]:
        doc = json.loads(sys.stdin.read())
        assert doc["kind"] == "Ingress"
        st["ingresses"][doc["metadata"]["name"]] = doc
        st.setdefault("applied", []).append(json.loads(json.dumps(doc)))
        save()
        print(f"ingress.networking.k8s.io/{doc['metadata']['name']} created")
    elif args[:3] == ["annotate", "--overwrite", "ingress"]:
        if args[3] not in st["ingresses"]:
            fail(f'Error from server (NotFound): ingresses "{args[3]}" not found')
        key, value = args[4].split("=", 1)
        st["ingresses"][args[3]]["metadata"].setdefault("annotations", {})[key] = value
        st.setdefault("weights", []).append(int(value))
        save()
        print(f"ingress/{args[3]} annotated")
    elif args[:2] == ["delete", "ingress"]:
        if st["ingresses"].pop(args[2], None) is None and "--ignore-not-found" not in args:
            fail(f'Error from server (NotFound): ingresses "{args[2]}" not found')
        save()
    else:
        fail(f"stand-in kubectl: unsupported {args}", 64)
elif tool == "curl":
    url = args[-1]
    if url.endswith("/api/v1/query"):
        query = next(a.split("=", 1)[1] for a in args if a.startswith("query="))
        svc = re.search(r'service="([^"]+)"', query).group(1)
        tag = serving_tag(svc)
        result = []
        if tag is not None and svc not in st.get("quiet_services", []):
            ratio = st.get("error_ratio", {}).get(tag, "0.002")
            result = [{"metric": {"service": svc}, "value": [time.time(), ratio]}]
        print(json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}))
    elif st.get("public_down"):
        fail("curl: (22) The requested URL returned error: 503", 22)
else:
    fail(f"stand-in: unknown tool {tool}", 64)
'''


class Cluster:
    """The stand-ins' toy cluster: state, call log, and the environment that points the scripts at them."""

    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(exist_ok=True)
        self.state_file, self.log_file = tmp / "state.json", tmp / "calls.jsonl"
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        (bin_dir / "standin.py").write_text(STANDIN)
        for name in ("kubectl", "helm", "curl"):
            wrapper = bin_dir / name
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{bin_dir / "standin.py"}" {name} "$@"\n')
            wrapper.chmod(0o755)
        chart = tmp / "chart"  # the stand-in helm renders nothing: a chart folder with its values files is enough
        chart.mkdir()
        (chart / "Chart.yaml").write_text("apiVersion: v2\nname: smart-trader\nversion: 0.1.0\n")
        for env in ("dev", "staging", "prod"):
            (chart / f"values-{env}.yaml").write_text("{}\n")
        self.state: dict[str, Any] = {"namespace": NS, "releases": {}, "services": {}, "ingresses": {}}
        self.env = {
            "KUBECTL": str(bin_dir / "kubectl"),
            "HELM": str(bin_dir / "helm"),
            "CURL": str(bin_dir / "curl"),
            "PYTHON": sys.executable,
            "STANDIN_STATE": str(self.state_file),
            "STANDIN_LOG": str(self.log_file),
            "CHART": str(chart),
            "NAMESPACE": NS,
            "HEALTH_RETRIES": "2",
            "HEALTH_INTERVAL": "0",
            "OBSERVE_SECONDS": "0",
            "STEP_SECONDS": "0",
            "PROMETHEUS_URL": "http://prometheus.monitoring:9090",
        }
        self.save()

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state))

    def load(self) -> dict[str, Any]:
        self.state = json.loads(self.state_file.read_text())
        return self.state

    def install(self, release: str, tag: str, *, ingress: bool = True) -> None:
        """Put a release in place through the stand-in helm, as an earlier deployment would have."""
        args = ["upgrade", "--install", release, "chart", "--set-string", f"image.tag={tag}"]
        if not ingress:
            args += ["--set", "ingress.enabled=false"]
        self.save()
        env = {**os.environ, **self.env}
        subprocess.run([self.env["HELM"], *args], env=env, check=True, capture_output=True)
        self.log_file.unlink(missing_ok=True)
        self.load()

    def calls(self) -> list[tuple[str, list[str]]]:
        """(tool, args) of every call, in order; ``--namespace <NS>`` (which the scripts always pass) left out."""
        if not self.log_file.exists():
            return []
        out = []
        for call in map(json.loads, self.log_file.read_text().splitlines()):
            args = call["args"]
            if call["tool"] != "curl":
                assert args[:2] == ["--namespace", NS], f"{call['tool']} without the namespace: {args}"
                args = args[2:]
            out.append((call["tool"], args))
        return out

    def helm_calls(self) -> list[list[str]]:
        return [args for tool_name, args in self.calls() if tool_name == "helm"]

    def tag(self, release: str) -> str | None:
        rel = self.load()["releases"].get(release)
        return rel["revisions"][-1]["tag"] if rel else None

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        self.save()
        full_env = {**os.environ, **self.env, **env}
        full_env.pop("CI", None)  # the scripts do not read it; keep the test independent of the runner
        done = subprocess.run(
            ["bash", str(SCRIPTS / script), *args], env=full_env, capture_output=True, text=True, timeout=120
        )
        self.load()
        return done


@pytest.fixture
def toy(tmp_path: Path) -> Cluster:
    """A fresh toy cluster behind the stand-ins."""
    return Cluster(tmp_path)


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("deploy.sh", []),
        ("deploy.sh", ["prod"]),
        ("deploy.sh", ["qa", "v1"]),
        ("deploy.sh", ["prod", "bad tag!"]),
        ("deploy.sh", ["prod", "v1", "extra"]),
        ("blue-green-deploy.sh", ["prod"]),
        ("blue-green-deploy.sh", ["prod", "-v1"]),
        ("canary-deploy.sh", []),
        ("canary-deploy.sh", ["production", "v1"]),
        ("rollback.sh", []),
        ("rollback.sh", ["prod", "zero"]),
        ("rollback.sh", ["prod", "0"]),
    ],
)
def test_bad_arguments_print_the_usage_and_exit_2(toy: Cluster, script: str, args: list[str]) -> None:
    done = toy.run(script, *args)
    assert done.returncode == 2, done.stderr
    assert "usage:" in done.stderr and "error:" in done.stderr
    assert toy.calls() == [], "nothing touches the cluster before the arguments are valid"


@pytest.mark.parametrize(
    ("script", "env"),
    [
        ("canary-deploy.sh", {"CANARY_STEPS": "10 50 25 100"}),
        ("canary-deploy.sh", {"CANARY_STEPS": "10 25 50"}),
        ("canary-deploy.sh", {"PROMETHEUS_URL": ""}),
        ("blue-green-deploy.sh", {"PROMETHEUS_URL": ""}),
        ("rollback.sh", {"ROLLBACK_MODE": "everything"}),
        ("deploy.sh", {"MAX_ERROR_RATE": "5%"}),
    ],
)
def test_bad_settings_print_the_usage_and_exit_2(toy: Cluster, script: str, env: dict[str, str]) -> None:
    args = ["prod"] if script == "rollback.sh" else ["prod", "v2"]
    done = toy.run(script, *args, **env)
    assert done.returncode == 2, done.stderr
    assert "usage:" in done.stderr
    assert toy.calls() == []


def test_help_prints_the_usage_and_exits_0(toy: Cluster) -> None:
    for script in SCRIPT_NAMES:
        done = toy.run(script, "--help")
        assert done.returncode == 0 and done.stdout.startswith(f"usage: {script}"), (script, done.stderr)


def test_a_missing_values_file_fails_clearly(toy: Cluster, tmp_path: Path) -> None:
    done = toy.run("deploy.sh", "prod", "v2", VALUES=str(tmp_path / "nope.yaml"))
    assert done.returncode == 1
    assert "values file not found" in done.stderr
    assert toy.calls() == []


def test_deploy_upgrades_with_the_environment_values_then_checks_health(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    done = toy.run("deploy.sh", "prod", "v2", IMAGE_REPOSITORY="ghcr.io/org/smart-trader")
    assert done.returncode == 0, done.stderr
    upgrade = toy.helm_calls()[1]  # after `helm status`
    assert upgrade[:3] == ["upgrade", "--install", "smart-trader"]
    assert upgrade[upgrade.index("--values") + 1].endswith("/values-prod.yaml")
    for flag in ("--atomic", "--wait", "image.tag=v2", "image.repository=ghcr.io/org/smart-trader"):
        assert flag in upgrade
    raws = [args[-1] for t, args in toy.calls() if t == "kubectl" and args[1:2] == ["--raw"]]
    assert raws == [
        f"/api/v1/namespaces/{NS}/services/smart-trader-api:http/proxy/health",
        f"/api/v1/namespaces/{NS}/services/smart-trader-api:http/proxy/ready",
    ]
    assert toy.tag("smart-trader") == "v2"


def test_a_first_install_is_checked_and_not_rolled_back_when_unhealthy(toy: Cluster) -> None:
    done = toy.run("deploy.sh", "staging", "v1")
    assert done.returncode == 0, done.stderr
    assert toy.tag("smart-trader") == "v1"
    assert toy.helm_calls()[1][toy.helm_calls()[1].index("--values") + 1].endswith("/values-staging.yaml")

    other = Cluster(toy.state_file.parent / "second")
    other.state["unready_tags"] = ["v1"]
    done = other.run("deploy.sh", "staging", "v1")
    assert done.returncode == 1
    assert "nothing to roll back to" in done.stderr
    assert [c[0] for c in other.helm_calls()] == ["status", "upgrade"]


def test_deploy_rolls_back_when_the_new_version_is_not_ready(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.state["unready_tags"] = ["v2"]
    done = toy.run("deploy.sh", "prod", "v2")
    assert done.returncode == 1
    assert "rolling smart-trader back" in done.stderr
    commands = [c[0] for c in toy.helm_calls()]
    assert commands == ["status", "upgrade", "rollback"], commands
    assert toy.tag("smart-trader") == "v1"
    assert [r["tag"] for r in toy.state["releases"]["smart-trader"]["revisions"]] == ["v1", "v2", "v1"]


def test_deploy_fails_without_rollback_when_helm_atomic_already_restored(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.state["failing_install_tags"] = ["v2"]
    done = toy.run("deploy.sh", "prod", "v2")
    assert done.returncode == 1
    assert [c[0] for c in toy.helm_calls()] == ["status", "upgrade"]
    assert toy.tag("smart-trader") == "v1"


def test_deploy_checks_the_public_route_when_health_url_is_set(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.state["public_down"] = True
    done = toy.run("deploy.sh", "prod", "v2", HEALTH_URL="https://trader.example.org")
    assert done.returncode == 1
    curls = [args[-1] for t, args in toy.calls() if t == "curl"]
    assert curls[0] == "https://trader.example.org/health"
    assert toy.tag("smart-trader") == "v1"


def test_rollback_to_a_given_revision(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.install("smart-trader", "v2")
    toy.install("smart-trader", "v3")
    done = toy.run("rollback.sh", "prod", "1")
    assert done.returncode == 0, done.stderr
    assert ["rollback", "smart-trader", "1", "--wait", "--timeout", "10m"] in toy.helm_calls()
    assert toy.tag("smart-trader") == "v1"


def test_blue_green_switches_traffic_to_the_new_colour_and_keeps_the_old(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    done = toy.run("blue-green-deploy.sh", "prod", "v2")
    assert done.returncode == 0, done.stderr
    public = toy.state["services"]["smart-trader-api"]
    assert public["spec"]["selector"]["app.kubernetes.io/instance"] == "smart-trader-green"
    assert public["metadata"]["annotations"] == {
        "smart-trader.io/active-release": "smart-trader-green",
        "smart-trader.io/previous-release": "smart-trader",
    }
    assert toy.tag("smart-trader-green") == "v2" and toy.tag("smart-trader") == "v1"
    install = next(c for c in toy.helm_calls() if c[0] == "upgrade")
    assert "ingress.enabled=false" in install, "a colour has no Ingress of its own"
    # the gate ran on the new colour before the switch, the Prometheus query named its Service
    queries = [a for t, args in toy.calls() if t == "curl" for a in args if a.startswith("query=")]
    assert 'service="smart-trader-green-api"' in queries[0] and 'service="smart-trader-api"' in queries[1]

    # the next release goes to blue; green stays for the way back
    done = toy.run("blue-green-deploy.sh", "prod", "v3")
    assert done.returncode == 0, done.stderr
    public = toy.state["services"]["smart-trader-api"]
    assert public["spec"]["selector"]["app.kubernetes.io/instance"] == "smart-trader-blue"
    assert public["metadata"]["annotations"]["smart-trader.io/previous-release"] == "smart-trader-green"

    # and rollback.sh (auto) switches back to green
    done = toy.run("rollback.sh", "prod")
    assert done.returncode == 0, done.stderr
    assert "mode colour" in done.stderr
    public = toy.state["services"]["smart-trader-api"]
    assert public["spec"]["selector"]["app.kubernetes.io/instance"] == "smart-trader-green"


def test_blue_green_deletes_a_new_colour_that_is_not_ready_and_never_switches(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.state["unready_tags"] = ["v2"]
    done = toy.run("blue-green-deploy.sh", "prod", "v2")
    assert done.returncode == 1
    assert "smart-trader-green" not in toy.state["releases"]
    assert ["uninstall", "smart-trader-green", "--wait", "--timeout", "10m"] in toy.helm_calls()
    assert not any(args[:1] == ["patch"] for t, args in toy.calls() if t == "kubectl")
    selector = toy.state["services"]["smart-trader-api"]["spec"]["selector"]
    assert selector["app.kubernetes.io/instance"] == "smart-trader"


def test_blue_green_refuses_a_new_colour_whose_own_error_rate_is_too_high(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.state["error_ratio"] = {"v2": "0.2"}  # v2 answers 5xx to 20% of its requests (smoke traffic, probes)
    done = toy.run("blue-green-deploy.sh", "prod", "v2")
    assert done.returncode == 1
    assert "smart-trader-green-api 5xx ratio 0.2 > 0.01" in done.stderr
    assert "smart-trader-green" not in toy.state["releases"]
    assert not any(args[0] == "patch" for t, args in toy.calls() if t == "kubectl"), "never switched"


def test_blue_green_switches_back_when_the_error_rate_fails_under_traffic(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    # the new colour has served nothing before the switch (no sample: passes); under the public traffic 20% fail
    toy.state["quiet_services"] = ["smart-trader-green-api"]
    toy.state["error_ratio"] = {"v2": "0.2"}
    done = toy.run("blue-green-deploy.sh", "prod", "v2")
    assert done.returncode == 1
    assert "no sample for smart-trader-green-api yet" in done.stderr
    assert "smart-trader-api 5xx ratio 0.2 > 0.01" in done.stderr
    patches = [json.loads(args[-1]) for t, args in toy.calls() if t == "kubectl" and args[0] == "patch"]
    assert [p["spec"]["selector"]["app.kubernetes.io/instance"] for p in patches] == [
        "smart-trader-green",
        "smart-trader",
    ]
    assert "smart-trader-green" not in toy.state["releases"]


def test_require_metrics_makes_a_missing_sample_fail(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.state["quiet_services"] = ["smart-trader-green-api"]
    done = toy.run("blue-green-deploy.sh", "prod", "v2", REQUIRE_METRICS="1")
    assert done.returncode == 1
    assert "REQUIRE_METRICS=1" in done.stderr
    assert "smart-trader-green" not in toy.state["releases"]


def test_blue_green_rolls_back_after_the_switch_when_the_public_gate_fails(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.state["public_down"] = True  # the new colour is fine inside, but the public route fails after the switch
    done = toy.run("blue-green-deploy.sh", "prod", "v2", HEALTH_URL="https://trader.example.org")
    assert done.returncode == 1
    assert "switching back to smart-trader" in done.stderr
    patches = [json.loads(args[-1]) for t, args in toy.calls() if t == "kubectl" and args[0] == "patch"]
    assert [p["spec"]["selector"]["app.kubernetes.io/instance"] for p in patches] == [
        "smart-trader-green",
        "smart-trader",
    ]
    assert toy.state["services"]["smart-trader-api"]["spec"]["selector"]["app.kubernetes.io/instance"] == (
        "smart-trader"
    )
    assert "smart-trader-green" not in toy.state["releases"]


def test_canary_steps_through_the_weights_then_promotes(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    done = toy.run("canary-deploy.sh", "prod", "v2")
    assert done.returncode == 0, done.stderr
    assert toy.state["weights"] == [10, 25, 50, 100]
    assert toy.tag("smart-trader") == "v2", "the stable release is promoted"
    assert "smart-trader-canary" not in toy.state["releases"]
    assert "smart-trader-canary" not in toy.state["ingresses"]
    applied = next(args for t, args in toy.calls() if t == "kubectl" and args[0] == "apply")
    assert applied == ["apply", "-f", "-"]
    helm = [c[:3] for c in toy.helm_calls() if c[0] != "status"]
    assert helm == [
        ["upgrade", "--install", "smart-trader-canary"],
        ["upgrade", "--install", "smart-trader"],
        ["uninstall", "smart-trader-canary", "--wait"],
    ]


def test_canary_ingress_copies_the_api_route_of_the_public_ingress(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    done = toy.run("canary-deploy.sh", "prod", "v2", CANARY_STEPS="50 100")
    assert done.returncode == 0, done.stderr
    (canary,) = toy.state["applied"]
    assert canary["metadata"]["name"] == "smart-trader-canary"
    assert canary["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "0",
    }
    assert canary["spec"]["ingressClassName"] == "nginx"
    assert canary["spec"]["tls"] == [{"hosts": ["trader.example.org"], "secretName": "tls"}]
    (rule,) = canary["spec"]["rules"]
    assert rule["host"] == "trader.example.org"
    assert [(p["path"], p["backend"]["service"]["name"]) for p in rule["http"]["paths"]] == [
        ("/", "smart-trader-canary-api")
    ], "only the api route; the webhook route stays on the stable release"
    assert toy.state["weights"] == [50, 100]


def test_rollback_auto_removes_a_leftover_canary(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.install("smart-trader-canary", "v2", ingress=False)
    done = toy.run("rollback.sh", "prod")
    assert done.returncode == 0, done.stderr
    assert "mode canary" in done.stderr
    assert "smart-trader-canary" not in toy.state["releases"]
    assert toy.tag("smart-trader") == "v1", "the stable release is not rolled back as well"


def test_skipping_the_error_rate_gate_is_explicit_and_logged(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    done = toy.run("canary-deploy.sh", "prod", "v2", PROMETHEUS_URL="", SKIP_ERROR_RATE_GATE="1")
    assert done.returncode == 0, done.stderr
    assert "error-rate gate SKIPPED" in done.stderr
    assert not any(t == "curl" for t, _ in toy.calls())


def test_canary_is_removed_when_its_error_rate_fails(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.state["error_ratio"] = {"v2": "0.05"}
    done = toy.run("canary-deploy.sh", "prod", "v2")
    assert done.returncode == 1
    assert "error rate too high at 10%" in done.stderr
    assert toy.state["weights"] == [10], "no step after the failed gate"
    assert toy.tag("smart-trader") == "v1", "the stable release is untouched"
    assert "smart-trader-canary" not in toy.state["releases"]
    assert "smart-trader-canary" not in toy.state["ingresses"]


def test_canary_is_removed_when_it_stops_being_ready_midway(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    toy.state["unready_tags"] = ["v2"]
    done = toy.run("canary-deploy.sh", "prod", "v2")
    assert done.returncode == 1
    assert "smart-trader-canary-api is not healthy" in done.stderr
    assert "weights" not in toy.state, "no traffic was ever sent to it"
    assert toy.state["releases"].keys() == {"smart-trader"}


def test_canary_requires_a_stable_release(toy: Cluster) -> None:
    done = toy.run("canary-deploy.sh", "prod", "v2")
    assert done.returncode == 1
    assert "deploy.sh first" in done.stderr


def test_an_interrupted_blue_green_switches_back(toy: Cluster) -> None:
    """A cancelled CI job (SIGTERM while the new colour is observed under traffic) restores the old colour."""
    toy.install("smart-trader", "v1")
    toy.save()
    env = {**os.environ, **toy.env, "OBSERVE_SECONDS": "60"}
    proc = subprocess.Popen(
        ["bash", str(SCRIPTS / "blue-green-deploy.sh"), "prod", "v2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(t == "kubectl" and args[0] == "patch" for t, args in toy.calls()):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the script never switched traffic")
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted while switched" in err
    toy.load()
    selector = toy.state["services"]["smart-trader-api"]["spec"]["selector"]
    assert selector["app.kubernetes.io/instance"] == "smart-trader"
    assert "smart-trader-green" not in toy.state["releases"]


# --------------------------------------------------------------------------------------------------------------------
# Contract with the chart (deploy/helm/smart-trader): the names the scripts rely on


def _rendered(release: str) -> list[dict[str, Any]]:
    chart = DEPLOY / "helm" / "smart-trader"
    if not (chart / "values-prod.yaml").is_file():
        msg = "the chart deploy/helm/smart-trader with values-prod.yaml is not there yet"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    result = run(
        [
            tool("helm"),
            "template",
            release,
            str(chart),
            "--namespace",
            NS,
            "--values",
            str(chart / "values-prod.yaml"),
            "--set-string",
            "image.tag=v2",
            "--set",
            "ingress.enabled=false",
        ]
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_the_chart_gives_each_release_an_api_service_the_scripts_can_select() -> None:
    for release in ("smart-trader", "smart-trader-green"):
        docs = _rendered(release)
        services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
        api = services.get(f"{release}-api")
        assert api is not None, f"Service {release}-api (deploy/scripts API_COMPONENT) not in {sorted(services)}"
        assert any(p.get("name") == "http" for p in api["spec"]["ports"]), "the api Service port is named http"
        assert api["spec"]["selector"].get("app.kubernetes.io/instance") == release, api["spec"]["selector"]
        ingresses = [d for d in docs if d["kind"] == "Ingress"]
        assert not ingresses, "ingress.enabled=false turns the Ingresses off (a colour or canary has none)"


# --------------------------------------------------------------------------------------------------------------------
# Real: deploy.sh and rollback.sh against the single-node cluster of deploy/k8s-local (tests/deploy/test_kubernetes.py
# builds and starts it; its fixtures give the cluster, an empty database and a private Redis the pods reach)

LOCAL_KUBECONFIG = LOCAL_K8S / "kubeconfig"
LOCAL_NAMESPACE = "smart-trader-cicd"


def _real_scripts(kubeconfig: Path, values: list[Path], **env: str) -> dict[str, str]:
    k8s = kubeconfig.parent
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "KUBECTL": str(k8s / "bin" / "kubectl"),
        "HELM": tool("helm"),
        "NAMESPACE": LOCAL_NAMESPACE,
        "CREATE_NAMESPACE": "1",
        "RELEASE": "smart-trader",
        "VALUES": str(DEPLOY / "k8s-local" / "values-local.yaml"),
        "EXTRA_VALUES": " ".join(map(str, values)),
        "HELM_TIMEOUT": "10m",
        "HEALTH_RETRIES": "30",
        "HEALTH_INTERVAL": "2",
        **env,
    }


@pytest.mark.deploy
def test_deploy_and_rollback_on_the_local_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """deploy.sh installs (revision 1) and upgrades (revision 2) the chart for real, each time checking /health and
    /ready through the API server's service proxy; a version whose image does not exist fails and Helm's --atomic
    restores revision 2; rollback.sh returns to revision 1 and checks it. Durations are printed."""
    if not LOCAL_KUBECONFIG.is_file():
        msg = f"no local cluster ({LOCAL_KUBECONFIG}): deploy/k8s-local/build.sh and up.sh make it"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    kubeconfig = request.getfixturevalue("cluster")  # test_kubernetes.py's: reused when running, else started
    request.getfixturevalue("database")
    redis = request.getfixturevalue("redis_url")
    _image_loaded()
    secret_values = {  # made now, in a file readable by its owner only (never on a command line)
        "SECRET_KEY": secrets.token_hex(32),
        "METRICS_TOKEN": secrets.token_hex(32),
        "DATABASE_URL": f"postgresql://postgres@{LOCAL_GATEWAY}:5432/{LOCAL_DATABASE}",
        "REDIS_URL": redis,
    }
    secret_file = tmp_path / "secrets.yaml"
    secret_file.touch(mode=0o600)
    secret_file.write_text(yaml.safe_dump({"secrets": {"values": secret_values}}))
    debug = tmp_path / "debug.yaml"
    debug.write_text(yaml.safe_dump({"config": {"LOG_LEVEL": "DEBUG"}}))
    helm = tool("helm")

    def script(name: str, *args: str, values: list[Path], **env: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(
            ["bash", str(SCRIPTS / name), *args],
            env=_real_scripts(kubeconfig, values, **env),
            capture_output=True,
            text=True,
            timeout=900,
        )
        print(f"{name} {' '.join(args)}: exit {done.returncode} in {time.monotonic() - started:.1f}s")
        return done

    def history() -> list[dict[str, Any]]:
        out = run([helm, "history", "smart-trader", "-n", LOCAL_NAMESPACE, "-o", "json"],
                  env={"KUBECONFIG": str(kubeconfig)})  # fmt: skip
        assert out.returncode == 0, out.stderr
        return list(json.loads(out.stdout))

    try:
        done = script("deploy.sh", "dev", "dev", values=[secret_file])
        assert done.returncode == 0, done.stderr
        assert "smart-trader-api /ready ok" in done.stderr
        done = script("deploy.sh", "dev", "dev", values=[secret_file, debug])
        assert done.returncode == 0, done.stderr
        assert [h["revision"] for h in history()] == [1, 2]

        done = script("deploy.sh", "dev", "no-such-tag", values=[secret_file], HELM_TIMEOUT="90s")
        assert done.returncode == 1
        assert "helm --atomic restored the previous release" in done.stderr
        assert history()[-1]["status"] == "deployed" and history()[-1]["revision"] == 4  # 3 failed, 4 = 2 again

        done = script("rollback.sh", "dev", "1", values=[])
        assert done.returncode == 0, done.stderr
        assert "rolled back (helm)" in done.stderr
        last = history()[-1]
        assert last["status"] == "deployed" and "Rollback to 1" in last["description"], last
    except BaseException:
        kubectl = [str(LOCAL_K8S / "bin" / "kubectl"), "--kubeconfig", str(kubeconfig), "-n", LOCAL_NAMESPACE]
        for what in (["get", "pods,jobs,services", "-o", "wide"], ["get", "events", "--sort-by=.lastTimestamp"]):
            print(run([*kubectl, *what]).stdout[-4000:])
        raise
    finally:
        run([helm, "uninstall", "smart-trader", "-n", LOCAL_NAMESPACE, "--wait", "--timeout", "3m"],
            env={"KUBECONFIG": str(kubeconfig)}, timeout=240)  # fmt: skip
        run([str(kubeconfig.parent / "bin" / "kubectl"), "--kubeconfig", str(kubeconfig), "delete", "namespace",
             LOCAL_NAMESPACE, "--wait=true", "--timeout=120s"], timeout=180)  # fmt: skip


# --------------------------------------------------------------------------------------------------------------------
# The error-rate gate's PromQL, evaluated by promtool on HTTP request counters of three Services


def test_the_error_rate_query_measures_one_services_5xx_share(tmp_path: Path) -> None:
    promtool = tool("promtool")
    query = run(["bash", "-c", 'source deploy/scripts/lib.sh && printf %s "$ERROR_RATE_QUERY_DEFAULT"']).stdout
    assert "{service}" in query and "{namespace}" in query

    def q(service: str) -> str:
        return query.replace("{namespace}", NS).replace("{service}", service)

    def series(service: str, status: str, per_minute: int) -> dict[str, str]:
        labels = f'namespace="{NS}",service="{service}",status="{status}",pod="p1"'
        return {"series": f"api_response_duration_seconds_count{{{labels}}}", "values": f"0+{per_minute}x20"}

    (tmp_path / "rules.yml").write_text("groups: []\n")
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series("smart-trader-canary-api", "200", 90),  # the canary: 10 of 100 responses are 5xx
                    series("smart-trader-canary-api", "503", 10),
                    series("smart-trader-api", "200", 100),  # the stable release: no 5xx at all
                    series("smart-trader-api", "404", 5),
                    {  # the same Service name in another namespace (staging) does not count
                        "series": 'api_response_duration_seconds_count{namespace="smart-trader-staging",'
                        'service="smart-trader-api",status="500",pod="p9"}',
                        "values": "0+100x20",
                    },
                ],
                "promql_expr_test": [
                    {"expr": q("smart-trader-canary-api"), "eval_time": "10m", "exp_samples": [{"value": 0.1}]},
                    {"expr": q("smart-trader-api"), "eval_time": "10m", "exp_samples": [{"value": 0}]},
                    {"expr": q("smart-trader-green-api"), "eval_time": "10m", "exp_samples": []},  # no traffic
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests))
    result = run([promtool, "test", "rules", "test.yml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
