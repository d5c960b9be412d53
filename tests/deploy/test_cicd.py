"""CI/CD: the GitHub Actions workflows and the deployment scripts they call.

Static: actionlint (with shellcheck on every ``run:`` block), the GitHub workflow and action JSON schemas, yamllint,
shellcheck on every script, and the workflows' own rules (actions pinned by commit SHA, least-privilege permissions,
timeouts, concurrency).

Behaviour: the scripts take their cluster tools from ``KUBECTL``, ``HELM`` and ``CURL``. Here those are **recording
stand-ins for the cluster tools** (``STANDIN`` below, written to a temporary folder): one small program that keeps a
toy cluster state in a JSON file (Helm releases and their revisions, Services with selectors and annotations,
Ingresses), answers like kubectl/helm/curl do for the commands the scripts use (exit codes, ``-o jsonpath``, the
``port-forward`` to a Service (then curl's ``/health`` and ``/ready`` through the forwarded port), Prometheus's
``/api/v1/query`` JSON), and logs every call. It also enforces the feed's runtime lock (a second release with a feed
fails like ``--atomic --wait`` on a crash-looping feed). A scenario
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
    for command in ("make test", "make deploy-lint", "pip-audit", "bandit", "deploy/scripts/scan_areas.py"):
        assert command in runs, command


def test_ci_runs_the_real_checks_that_fit_a_github_runner() -> None:
    """The -m deploy checks of the backup drill, monitoring, the image and Compose run in CI with the test job's
    services and the engine of deploy/tools/dockerd.sh; the local Kubernetes cluster (Debian-built) does not."""
    ci = _yaml(WORKFLOWS / "ci.yml")
    job = ci["jobs"]["deploy-check"]
    assert job["services"] == ci["jobs"]["test"]["services"] and job["env"] == ci["jobs"]["test"]["env"]
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "deploy/tools/install.sh" in runs and "deploy/tools/dockerd.sh start" in runs
    assert runs.index("dockerd.sh start") < runs.index("pytest -v -m deploy")
    command = runs[runs.index("pytest -v -m deploy") :]
    for module in ("test_backup.py", "test_monitoring.py", "test_image.py", "test_compose.py"):
        assert f"tests/deploy/{module}" in command, module
        assert (ROOT / "tests" / "deploy" / module).is_file()
    assert "test_kubernetes.py" not in command and "test_cicd.py" not in command
    assert job["timeout-minutes"] <= 75


def test_deploy_jobs_can_run_on_a_runner_inside_the_network() -> None:
    """Private EKS/AKS endpoints: every job that reaches the cluster runs on vars.DEPLOY_RUNNER when it is set."""
    expected = "${{ vars.DEPLOY_RUNNER || 'ubuntu-24.04' }}"
    release = _yaml(WORKFLOWS / "release.yml")["jobs"]
    rollback = _yaml(WORKFLOWS / "rollback.yml")["jobs"]
    for name, job in [("staging", release["staging"]), ("production", release["production"]), *rollback.items()]:
        assert job["runs-on"] == expected, name
    assert release["image"]["runs-on"] == "ubuntu-24.04", "the image job needs no cluster"


def test_release_pushes_one_build_and_scans_that_digest() -> None:
    steps = _yaml(WORKFLOWS / "release.yml")["jobs"]["image"]["steps"]
    builds = [s for s in steps if "build-push-action" in s.get("uses", "")]
    assert len(builds) == 1 and builds[0]["with"]["push"] is True, "one build, pushed once"
    (build,) = builds
    scan_index = next(i for i, s in enumerate(steps) if "trivy" in s.get("run", "") and "image" in s.get("run", ""))
    assert steps.index(build) < scan_index
    scan = steps[scan_index]
    assert scan["env"]["IMAGE"] == "${{ steps.repo.outputs.repository }}@${{ steps.push.outputs.digest }}"
    assert "--exit-code 1" in scan["run"] and '"$IMAGE"' in scan["run"]
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    args_step = next(s for s in steps if s.get("id") == "args")
    for arg in ("VERSION", "REVISION", "CREATED"):
        assert re.search(rf"^ARG {arg}=", dockerfile, re.M), f"the Dockerfile takes {arg}"
        assert f'echo "{arg}=' in args_step["run"], f"the release passes {arg}"
    assert build["with"]["build-args"] == "${{ steps.args.outputs.build-args }}"


def test_the_area_scanner_knows_every_skip_file() -> None:
    """deploy/scripts/scan_areas.py scans each area with its own skip file: every skip file names a known area."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        import scan_areas
    finally:
        sys.path.remove(str(SCRIPTS))
    areas = {a.name: a for a in scan_areas.AREAS}
    for path in (DEPLOY / "scan-skips").glob("*.yaml"):
        assert path.stem in areas, f"{path.name} has no area in scan_areas.py"
        assert any((ROOT / d).is_dir() for d in areas[path.stem].dirs), path.stem
    assert scan_areas.skip_ids("cicd", "checkov") == ["CKV_GHA_7"]
    assert "CKV_K8S_15" not in scan_areas.skip_ids("cicd", "checkov"), "another area's skip stays there"


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
    # helm's three-way merge: the chart's selector wins, annotations the chart does not set are kept
    kept = st["services"].get(release + "-api", {}).get("metadata", {}).get("annotations", {})
    st["services"][release + "-api"] = {"metadata": {"name": release + "-api", "annotations": kept},
        "spec": {"selector": {"app.kubernetes.io/instance": release, "app.kubernetes.io/component": "api"}}}

def jsonpath(doc, expr):
    keys = [k.replace("\x00", ".") for k in expr.strip("{}").replace("\\.", "\x00").lstrip(".").split(".")]
    for k in keys:
        doc = doc.get(k, "") if isinstance(doc, dict) else ""
    return doc

def merge(dst, src):  # a JSON merge patch: null removes the key
    for k, v in src.items():
        if v is None:
            dst.pop(k, None)
        elif isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        else:
            dst[k] = v

def _sets_of(a):
    return dict(x.split("=", 1) for i, x in enumerate(a) if a[i - 1] in ("--set", "--set-string"))

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
        full = _sets_of(args).get("roles.feed.enabled") != "false"  # not an api-only release
        if tag in st.get("failing_install_tags", []) or full and tag in st.get("failing_full_tags", []):
            if rel in st["releases"]:
                own_service(rel)  # --atomic: the previous release is applied again, the chart's selector with it
                save()
            fail(f"Error: UPGRADE FAILED: release {rel} failed, and has been rolled back due to atomic being set")
        sets = _sets_of(args)
        # the feed's runtime lock (pg_try_advisory_lock): a second feed exits at once, its pod crash-loops, and
        # `helm upgrade --atomic --wait` times out and undoes the release
        feeds = [r for r, d in st["releases"].items() if r != rel and d["feed"]]
        if sets.get("roles.feed.enabled") != "false" and feeds:
            fail(f"Error: UPGRADE FAILED: release {rel} failed, and has been rolled back due to atomic being set: "
                 f"timed out waiting for the condition ({rel}-feed CrashLoopBackOff: runtime lock held by {feeds[0]})")
        st["releases"].setdefault(rel, {"revisions": []})["revisions"].append({"tag": tag, "args": args})
        st["releases"][rel]["feed"] = sets.get("roles.feed.enabled") != "false"
        own_service(rel)  # helm's three-way merge puts the chart's selector back
        if sets.get("sharedHome.enabled") == "false":
            claim = ""
        else:
            claim = sets.get("sharedHome.existingClaim") or rel + "-home"
        st["deployments"][rel + "-api"] = {"serviceAccountName": sets.get("serviceAccount.name") or rel, "claim": claim}
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
        revs.append({**revs[target - 1], "args": args})
        own_service(rel)
        save()
        print("Rollback was a success! Happy Helming!")
    elif cmd == "uninstall":
        rel = args[1]
        if st["releases"].pop(rel, None) is None:
            fail(f"Error: uninstall: Release not loaded: {rel}: release: not found")
        st["services"].pop(rel + "-api", None)
        st["deployments"].pop(rel + "-api", None)
        st["ingresses"].pop(rel, None)
        save()
        print(f'release "{rel}" uninstalled')
    else:
        fail(f"stand-in helm: unsupported {args}", 64)
elif tool == "kubectl":
    if args[0] == "port-forward":
        # kubectl port-forward --address 127.0.0.1 --pod-running-timeout=20s svc/NAME :http
        assert opt("--address") == "127.0.0.1" and args[-1] == ":http", args
        svc = args[-2].removeprefix("svc/")
        if svc not in st["services"]:
            fail(f'Error from server (NotFound): services "{svc}" not found')
        if serving_tag(svc) is None:
            fail("error: timed out waiting for the condition (no running pod behind the service)")
        port = 40000 + len(st.setdefault("forwards", {}))
        st["forwards"][str(port)] = svc
        save()
        print(f"Forwarding from 127.0.0.1:{port} -> 8000", flush=True)
        time.sleep(600)  # until the script ends the forward
    elif args[:2] == ["get", "deployment"]:
        dep = st["deployments"].get(args[2])
        if dep is None:
            fail(f'Error from server (NotFound): deployments.apps "{args[2]}" not found')
        expr = opt("-o")
        if expr == "jsonpath={.spec.template.spec.serviceAccountName}":
            print(dep["serviceAccountName"], end="")
        elif expr == 'jsonpath={.spec.template.spec.volumes[?(@.name=="home")].persistentVolumeClaim.claimName}':
            print(dep["claim"], end="")
        else:
            fail(f"stand-in kubectl: unsupported jsonpath {expr}", 64)
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
    elif m := re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/health|/ready)", url):
        svc = st.get("forwards", {}).get(m.group(1))
        if svc is None:
            fail(f"curl: (7) Failed to connect to 127.0.0.1 port {m.group(1)}", 7)
        tag = serving_tag(svc)
        if m.group(2) == "/health" and tag in st.get("dead_tags", []) or (
                m.group(2) == "/ready" and tag in st.get("unready_tags", []) + st.get("dead_tags", [])):
            fail("curl: (22) The requested URL returned error: 503", 22)
        st.setdefault("probes", []).append([svc, tag, m.group(2)])
        save()
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
        self.state: dict[str, Any] = {
            "namespace": NS,
            "releases": {},
            "services": {},
            "deployments": {},
            "ingresses": {},
        }
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

    def install(self, release: str, tag: str, *extra: str, ingress: bool = True) -> None:
        """Put a release in place through the stand-in helm, as an earlier deployment would have."""
        args = ["upgrade", "--install", release, "chart", "--set-string", f"image.tag={tag}", *extra]
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
    # /health then /ready of a pod of the api Service through a port-forward (not the API server's service proxy,
    # which the chart's NetworkPolicies block): one forward per probe, to the port kubectl chose
    forwards = [args for t, args in toy.calls() if t == "kubectl" and args[0] == "port-forward"]
    forward = ["port-forward", "--address", "127.0.0.1", "--pod-running-timeout=20s", "svc/smart-trader-api", ":http"]
    assert forwards == [forward, forward]
    urls = [args[-1] for t, args in toy.calls() if t == "curl"]
    assert urls == ["http://127.0.0.1:40000/health", "http://127.0.0.1:40001/ready"]
    assert toy.state["probes"] == [["smart-trader-api", "v2", "/health"], ["smart-trader-api", "v2", "/ready"]]
    assert not any(t == "kubectl" and "--raw" in args for t, args in toy.calls()), "no service proxy"
    assert toy.tag("smart-trader") == "v2"


def test_the_port_forward_is_ended_after_each_probe(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    done = toy.run("deploy.sh", "prod", "v2")
    assert done.returncode == 0, done.stderr
    leftover = subprocess.run(["pgrep", "-f", f"standin.py kubectl --namespace {NS} port-forward"], capture_output=True)
    assert leftover.returncode == 1, f"port-forward processes left running: {leftover.stdout!r}"


def test_the_default_namespace_is_the_one_terraform_trusts() -> None:
    """One default everywhere: the namespace (and service account) deploy/terraform's IRSA / workload identity trust."""
    env = {k: v for k, v in os.environ.items() if k != "NAMESPACE"}
    out = subprocess.run(
        ["bash", "-c", 'source deploy/scripts/lib.sh && parse_env prod && printf %s "$NAMESPACE"'],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout == "smart-trader"
    for cloud in ("aws", "azure"):
        text = (DEPLOY / "terraform" / cloud / "variables.tf").read_text()
        for var in ("k8s_namespace", "k8s_service_account"):
            block = text[text.index(f'variable "{var}"') :]
            assert re.search(r'default\s*=\s*"smart-trader"', block[: block.index("}")]), (cloud, var)


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
    curls = [args[-1] for t, args in toy.calls() if t == "curl" and not args[-1].startswith("http://127.0.0.1:")]
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


API_ONLY = [
    "ingress.enabled=false",
    "roles.feed.enabled=false",
    "roles.worker.enabled=false",
    "migrations.enabled=false",
    "prometheusRule.enabled=false",
    "metricsAdapter.configMap.enabled=false",
    "serviceAccount.create=false",
]


def _sets(helm_args: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for i, a in enumerate(helm_args) if helm_args[i - 1] in ("--set", "--set-string"))


def test_blue_green_runs_an_api_only_colour_switches_then_promotes_the_stable_release(toy: Cluster) -> None:
    toy.install("smart-trader", "v1")
    done = toy.run("blue-green-deploy.sh", "prod", "v2")
    assert done.returncode == 0, done.stderr
    helm = [c for c in toy.helm_calls() if c[0] != "status"]
    assert [c[:3] for c in helm] == [
        ["upgrade", "--install", "smart-trader-green"],
        ["upgrade", "--install", "smart-trader"],
        ["uninstall", "smart-trader-green", "--wait"],
    ]
    colour = _sets(helm[0])
    for flag in API_ONLY:
        key, value = flag.split("=")
        assert colour[key] == value, f"the colour runs the api only: {flag}"
    assert colour["serviceAccount.name"] == "smart-trader", "the stable release's service account (IRSA)"
    assert colour["sharedHome.existingClaim"] == "smart-trader-home", "the stable release's instrument catalog"
    promote = _sets(helm[1])
    assert not any(promote.get(k.split("=")[0]) == "false" for k in API_ONLY[1:4]), "feed/workers/migrations move"
    # order: gate the colour, switch the public Service to it, observe, promote, forget the colours, check, retire
    calls = toy.calls()
    index = {id(c): i for i, c in enumerate(calls)}
    patches = [c for c in calls if c[0] == "kubectl" and c[1][0] == "patch"]
    switch, forget = (json.loads(c[1][-1]) for c in patches)
    assert switch["spec"]["selector"]["app.kubernetes.io/instance"] == "smart-trader-green"
    assert forget == {"metadata": {"annotations": {
        "smart-trader.io/active-release": None, "smart-trader.io/previous-release": None}}}  # fmt: skip
    promote_call = next(c for c in calls if c[0] == "helm" and c[1][:3] == ["upgrade", "--install", "smart-trader"])
    assert index[id(patches[0])] < index[id(promote_call)] < index[id(patches[1])]
    probes = [tuple(p) for p in toy.state["probes"]]
    assert probes[:2] == [("smart-trader-green-api", "v2", "/health"), ("smart-trader-green-api", "v2", "/ready")]
    assert probes[-1] == ("smart-trader-api", "v2", "/ready"), "the public Service serves the promoted release"
    queries = [a for t, args in calls if t == "curl" for a in args if a.startswith("query=")]
    assert 'service="smart-trader-green-api"' in queries[0] and 'service="smart-trader-api"' in queries[1]
    # the end state: the stable release at v2 with its own pods behind the public Service, no colour left
    public = toy.state["services"]["smart-trader-api"]
    assert public["spec"]["selector"]["app.kubernetes.io/instance"] == "smart-trader"
    assert public["metadata"]["annotations"] == {}, "no colour to switch back to: rollback.sh picks helm"
    assert toy.tag("smart-trader") == "v2" and toy.state["releases"].keys() == {"smart-trader"}

    # rollback.sh (auto) after a completed blue-green: helm rollback of the stable release, every role back at v1
    done = toy.run("rollback.sh", "prod")
    assert done.returncode == 0, done.stderr
    assert "mode helm" in done.stderr
    assert toy.tag("smart-trader") == "v1"


def test_a_colour_follows_the_stable_releases_own_claim_and_service_account(toy: Cluster) -> None:
    toy.install("smart-trader", "v1", "--set-string", "sharedHome.existingClaim=trader-data",
                "--set-string", "serviceAccount.name=trader-irsa")  # fmt: skip
    done = toy.run("canary-deploy.sh", "prod", "v2", CANARY_STEPS="100")
    assert done.returncode == 0, done.stderr
    canary = _sets(next(c for c in toy.helm_calls() if c[:3] == ["upgrade", "--install", "smart-trader-canary"]))
    assert canary["sharedHome.existingClaim"] == "trader-data"
    assert canary["serviceAccount.name"] == "trader-irsa" and canary["serviceAccount.create"] == "false"


def test_a_second_feed_is_what_the_api_only_arguments_prevent(toy: Cluster) -> None:
    """The stand-in helm enforces the feed's runtime lock: a colour that turns its feed back on (COLOUR_SET is applied
    after the api-only arguments) fails like the real one would (CrashLoopBackOff, --atomic undoes it)."""
    toy.install("smart-trader", "v1")
    done = toy.run("blue-green-deploy.sh", "prod", "v2", COLOUR_SET="--set roles.feed.enabled=true")
    assert done.returncode == 1
    assert "helm install of smart-trader-green at v2 failed" in done.stderr
    assert toy.tag("smart-trader") == "v1" and toy.state["releases"].keys() == {"smart-trader"}
    assert not any(args[0] == "patch" for t, args in toy.calls() if t == "kubectl"), "never switched"


def test_blue_green_from_a_leftover_colour_goes_to_the_other_and_retires_both(toy: Cluster) -> None:
    """An earlier run stopped after its switch (green serves): the next goes to blue, then promotes and retires both."""
    toy.install("smart-trader", "v1")
    toy.run("blue-green-deploy.sh", "prod", "v2", OBSERVE_SECONDS="0")
    toy.install("smart-trader", "v1")  # as if the promotion had never happened: the stable release at v1 again
    toy.install("smart-trader-green", "v2", "--set", "roles.feed.enabled=false", ingress=False)
    toy.state["services"]["smart-trader-api"]["spec"]["selector"]["app.kubernetes.io/instance"] = "smart-trader-green"
    toy.state["services"]["smart-trader-api"]["metadata"]["annotations"] = {
        "smart-trader.io/active-release": "smart-trader-green",
        "smart-trader.io/previous-release": "smart-trader",
    }
    toy.save()
    done = toy.run("blue-green-deploy.sh", "prod", "v3")
    assert done.returncode == 0, done.stderr
    helm = [c[:3] for c in toy.helm_calls() if c[0] != "status"]
    assert helm == [
        ["upgrade", "--install", "smart-trader-blue"],
        ["upgrade", "--install", "smart-trader"],
        ["uninstall", "smart-trader-green", "--wait"],
        ["uninstall", "smart-trader-blue", "--wait"],
    ]
    assert toy.tag("smart-trader") == "v3" and toy.state["releases"].keys() == {"smart-trader"}


def test_a_failed_promotion_leaves_the_stable_release_and_removes_the_colour(toy: Cluster) -> None:
    """The colour passed, but the stable release's upgrade (feed, workers, migrations at v2) fails: helm --atomic
    restores it, with the chart's selector (traffic back on its own v1 pods), and the colour is removed."""
    toy.install("smart-trader", "v1")
    toy.state["failing_full_tags"] = ["v2"]
    done = toy.run("blue-green-deploy.sh", "prod", "v2")
    assert done.returncode == 1
    assert "helm upgrade of smart-trader to v2 failed" in done.stderr
    assert toy.tag("smart-trader") == "v1" and toy.state["releases"].keys() == {"smart-trader"}
    selector = toy.state["services"]["smart-trader-api"]["spec"]["selector"]
    assert selector["app.kubernetes.io/instance"] == "smart-trader"


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
    helm = [c for c in toy.helm_calls() if c[0] != "status"]
    assert [c[:3] for c in helm] == [
        ["upgrade", "--install", "smart-trader-canary"],
        ["upgrade", "--install", "smart-trader"],  # at 100 %: the feed, workers and migrations move to v2
        ["uninstall", "smart-trader-canary", "--wait"],
    ]
    canary, promote = _sets(helm[0]), _sets(helm[1])
    assert all(canary[f.split("=")[0]] == f.split("=")[1] for f in API_ONLY), "the canary runs the api only"
    assert canary["sharedHome.existingClaim"] == "smart-trader-home" and canary["serviceAccount.name"] == "smart-trader"
    assert "roles.feed.enabled" not in promote and "migrations.enabled" not in promote
    last_weight = max(i for i, (t, a) in enumerate(toy.calls()) if t == "kubectl" and a[0] == "annotate")
    promoted = next(i for i, (t, a) in enumerate(toy.calls()) if t == "helm" and a[2:3] == ["smart-trader"])
    assert last_weight < promoted, "promoted only after the 100 % step"


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
    toy.install("smart-trader-canary", "v2", "--set", "roles.feed.enabled=false", ingress=False)
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
    assert not any(t == "curl" and "/api/v1/query" in args[-1] for t, args in toy.calls()), "Prometheus not asked"


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


def _rendered(release: str, *extra: str) -> list[dict[str, Any]]:
    chart = DEPLOY / "helm" / "smart-trader"
    if not (chart / "values-prod.yaml").is_file():
        msg = "the chart deploy/helm/smart-trader with values-prod.yaml is not there yet"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    args = ["template", release, str(chart), "--namespace", NS, "--values", str(chart / "values-prod.yaml")]
    result = run([tool("helm"), *args, "--set-string", "image.tag=v2", *extra])
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def _api_only_args(claim: str, account: str) -> list[str]:
    """The helm arguments deploy/scripts/lib.sh gives a colour or canary release of the stable release."""
    script = 'source deploy/scripts/lib.sh && parse_env prod && api_only_args && printf "%s\\n" "${API_ONLY_ARGS[@]}"'
    env = {**os.environ, "HOME_CLAIM": claim, "STABLE_SERVICE_ACCOUNT": account, "NAMESPACE": NS}
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_the_chart_gives_each_release_an_api_service_the_scripts_can_select() -> None:
    for release in ("smart-trader", "smart-trader-green"):
        docs = _rendered(release, "--set", "ingress.enabled=false")
        services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
        api = services.get(f"{release}-api")
        assert api is not None, f"Service {release}-api (deploy/scripts API_COMPONENT) not in {sorted(services)}"
        assert any(p.get("name") == "http" for p in api["spec"]["ports"]), "the api Service port is named http"
        assert api["spec"]["selector"].get("app.kubernetes.io/instance") == release, api["spec"]["selector"]
        ingresses = [d for d in docs if d["kind"] == "Ingress"]
        assert not ingresses, "ingress.enabled=false turns the Ingresses off (a colour or canary has none)"


def _home_claim(deployment: dict[str, Any]) -> str | None:
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "home")
    return (volume.get("persistentVolumeClaim") or {}).get("claimName")


def test_an_api_only_release_renders_no_feed_workers_or_migration_and_shares_the_stable_home() -> None:
    """The chart, rendered with the arguments the scripts give a colour or canary (lib.sh api_only_args, fed with what
    they read from the stable release's api Deployment): only the api, on the stable release's claim and account."""
    stable = _rendered("smart-trader")
    deployments = {d["metadata"]["name"]: d for d in stable if d["kind"] == "Deployment"}
    assert {"smart-trader-api", "smart-trader-feed", "smart-trader-worker"} <= deployments.keys()
    pod = deployments["smart-trader-api"]["spec"]["template"]["spec"]
    claim, account = _home_claim(deployments["smart-trader-api"]), pod["serviceAccountName"]
    claims = [d["metadata"]["name"] for d in stable if d["kind"] == "PersistentVolumeClaim"]
    assert claim and claim in claims and account == "smart-trader", (claim, claims, account)  # what the scripts read

    for release in ("smart-trader-green", "smart-trader-canary"):
        docs = _rendered(release, *_api_only_args(claim, account))
        kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
        deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
        assert set(deployments) == {f"{release}-api"}, f"{release}: the api only, got {sorted(deployments)}"
        api = deployments[f"{release}-api"]
        assert _home_claim(api) == claim, "the stable release's instrument catalog and market data"
        assert api["spec"]["template"]["spec"]["serviceAccountName"] == account, "the account Terraform's IRSA trusts"
        for kind in ("Job", "PersistentVolumeClaim", "ServiceAccount", "Ingress", "PrometheusRule"):
            assert not [n for k, n in kinds if k == kind], f"{release} renders a {kind}: {sorted(kinds)}"


# --------------------------------------------------------------------------------------------------------------------
# Real: deploy.sh and rollback.sh against the single-node cluster of deploy/k8s-local (tests/deploy/test_kubernetes.py
# builds and starts it; its fixtures give the cluster, an empty database and a private Redis the pods reach)

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
    /ready through `kubectl port-forward` (lib.sh probe); a version whose image does not exist fails and Helm's --atomic
    restores revision 2; rollback.sh returns to revision 1 and checks it. Durations are printed."""
    request.getfixturevalue("image")  # conftest's: smart-trader:dev built in the local Docker engine
    kubeconfig = request.getfixturevalue("cluster")  # test_kubernetes.py's: built and started unless running
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
    # this test checks the scripts' mechanics (install, upgrade, a failed upgrade, rollback, the health probes), not
    # orders: a home per pod spares it the hostPath claim test_kubernetes.py makes (no storage provisioner here)
    secret_file.write_text(yaml.safe_dump({"secrets": {"values": secret_values}, "sharedHome": {"enabled": False}}))
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
