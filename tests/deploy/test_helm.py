"""The Helm chart ``deploy/helm/smart-trader``, statically: lint, schemas, the security properties of what it renders.

What is checked, and how:

* ``helm lint --strict`` with each environment file (dev, staging, prod).
* ``helm template`` for dev, staging and prod at ``--kube-version 1.30.0`` with the CRD APIs the chart can use
  (``monitoring.coreos.com/v1``, ``external-secrets.io/v1beta1``). The built-in kinds go through ``kubernetes-validate
  --strict -k 1.30.0`` (unknown fields fail); it only WARNs (exit 0) on a kind it has no schema for, so any WARN or
  ERROR line fails here. The CRD kinds (ServiceMonitor, PrometheusRule, ExternalSecret) have no schema in it: they
  are checked against the minimal JSON schemas below, written from the fields the CRDs document (Prometheus
  Operator ``monitoring.coreos.com/v1``, External Secrets ``v1beta1``), closed (``additionalProperties: false``)
  at every level the chart writes, so a misspelt or invented field fails. Any other kind fails.
* ``--kube-version 1.20.0`` with no extra APIs (the real cluster of ``deploy/k8s-local``): the HPAs fall back to
  ``autoscaling/v2beta2``, the PodDisruptionBudgets to ``policy/v1beta1``, the CRD objects disappear. Those objects
  are validated against the oldest schemas kubernetes-validate ships (1.25, where v2beta2 still exists); the real
  1.20 API server validates everything in ``tests/deploy/test_kubernetes.py``.
* Security properties on the rendered objects; the migration hook; the network policies; the ingresses; the
  monitoring objects against ``deploy/monitoring``; checkov and ``trivy config`` against
  ``deploy/scan-skips/helm.yaml``.
"""

from __future__ import annotations

import copy
import functools
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .conftest import DEPLOY, ROOT, run, tool

CHART = DEPLOY / "helm" / "smart-trader"
RULES = DEPLOY / "monitoring" / "prometheus" / "rules"
CHART_RULES = CHART / "files" / "prometheus-rules"
SKIPS = DEPLOY / "scan-skips" / "helm.yaml"
ENVS = ["dev", "staging", "prod"]
CRD_APIS = ["monitoring.coreos.com/v1", "external-secrets.io/v1beta1"]
ROLES = ["api", "feed", "worker"]
RELEASE = "st"
KV = "1.30.0"

Doc = dict[str, Any]


def _secret_args(without: str = "") -> list[str]:
    """Secrets for the values mode, made now (the chart has no default for any of them), less ``without``."""
    values = {
        "SECRET_KEY": secrets.token_hex(32),
        "METRICS_TOKEN": secrets.token_hex(32),
        "DATABASE_URL": "postgresql://smart_trader:pw@10.0.0.5:5432/smart_trader",
        "REDIS_URL": "redis://10.0.0.6:6379/0",
    }
    return [a for k, v in values.items() if k != without for a in ("--set-string", f"secrets.values.{k}={v}")]


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    return run([tool("helm"), "template", RELEASE, str(CHART), *args])


@functools.cache
def render(env: str, kube: str = KV, crds: bool = True, extra: tuple[str, ...] = ()) -> list[Doc]:
    """The objects the chart renders with ``values-<env>.yaml`` (hooks included)."""
    args = ["-f", str(CHART / f"values-{env}.yaml"), "--kube-version", kube, *extra]
    if crds:
        args += [a for api in CRD_APIS for a in ("--api-versions", api)]
    result = helm_template(*args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def by_name(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {[d['metadata']['name'] for d in of_kind(docs, kind)]}"
    return found[0]


def pod_specs(docs: list[Doc]) -> list[tuple[str, Doc]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    ]


# --- minimal schemas of the CRD kinds, from the fields their CRDs document (closed where the chart writes) ---
_STR = {"type": "string"}
_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_META = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": _STR, "namespace": _STR, "labels": _MAP, "annotations": _MAP},
}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": _MAP,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "additionalProperties": False,
                "properties": {
                    "key": _STR,
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": _STR},
                },
            },
        },
    },
}
_SECRET_KEY_SELECTOR = {
    "type": "object",
    "required": ["key"],
    "additionalProperties": False,
    "properties": {"name": _STR, "key": _STR, "optional": {"type": "boolean"}},
}
_RELABEL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": _STR},
        "separator": _STR,
        "targetLabel": _STR,
        "regex": _STR,
        "modulus": {"type": "integer"},
        "replacement": _STR,
        "action": {"enum": ["replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep", "lowercase",
                            "uppercase", "keepequal", "dropequal"]},
    },
}  # fmt: skip
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": _STR,
        "targetPort": {"type": ["string", "integer"]},
        "path": _STR,
        "scheme": {"enum": ["http", "https"]},
        "params": {"type": "object"},
        "interval": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
        "scrapeTimeout": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
        "honorLabels": {"type": "boolean"},
        "honorTimestamps": {"type": "boolean"},
        "tlsConfig": {"type": "object"},
        "bearerTokenSecret": _SECRET_KEY_SELECTOR,
        "authorization": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"type": _STR, "credentials": _SECRET_KEY_SELECTOR},
        },
        "basicAuth": {"type": "object"},
        "relabelings": {"type": "array", "items": _RELABEL},
        "metricRelabelings": {"type": "array", "items": _RELABEL},
        "followRedirects": {"type": "boolean"},
        "enableHttp2": {"type": "boolean"},
        "filterRunning": {"type": "boolean"},
    },
}
_RULE = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
    "properties": {
        "record": _STR,
        "alert": _STR,
        "expr": {"type": ["string", "integer"]},
        "for": _STR,
        "keep_firing_for": _STR,
        "labels": _MAP,
        "annotations": _MAP,
    },
}
_REMOTE_REF = {
    "type": "object",
    "required": ["key"],
    "additionalProperties": False,
    "properties": {
        "key": _STR,
        "property": _STR,
        "version": _STR,
        "metadataPolicy": {"enum": ["None", "Fetch"]},
        "conversionStrategy": {"enum": ["Default", "Unicode"]},
        "decodingStrategy": {"enum": ["Auto", "Base64", "Base64URL", "None"]},
    },
}


def _crd(api: str, kind: str, spec: Doc) -> Doc:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {"apiVersion": {"const": api}, "kind": {"const": kind}, "metadata": _META, "spec": spec},
    }


CRD_SCHEMAS: dict[str, Doc] = {
    "ServiceMonitor": _crd(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": _STR,
                "targetLabels": {"type": "array", "items": _STR},
                "podTargetLabels": {"type": "array", "items": _STR},
                "selector": _SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": _STR}},
                },
                "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
                "sampleLimit": {"type": "integer"},
            },
        },
    ),
    "PrometheusRule": _crd(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _STR,
                            "query_offset": _STR,
                            "limit": {"type": "integer"},
                            "partial_response_strategy": _STR,
                            "rules": {"type": "array", "items": _RULE},
                        },
                    },
                }
            },
        },
    ),
    "ExternalSecret": _crd(
        "external-secrets.io/v1beta1",
        "ExternalSecret",
        {
            "type": "object",
            "required": ["secretStoreRef", "target"],
            "additionalProperties": False,
            "properties": {
                "refreshInterval": _STR,
                "secretStoreRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {"name": _STR, "kind": {"enum": ["SecretStore", "ClusterSecretStore"]}},
                },
                "target": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "name": _STR,
                        "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                        "deletionPolicy": {"enum": ["Delete", "Merge", "Retain"]},
                        "immutable": {"type": "boolean"},
                        "template": {"type": "object"},
                    },
                },
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["secretKey", "remoteRef"],
                        "additionalProperties": False,
                        "properties": {"secretKey": _STR, "remoteRef": _REMOTE_REF},
                    },
                },
                "dataFrom": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "extract": _REMOTE_REF,
                            "find": {"type": "object"},
                            "rewrite": {"type": "array"},
                        },
                    },
                },
            },
        },
    ),
}


def _kubernetes_validate(docs: list[Doc], version: str, tmp_path: Path) -> list[str]:
    """Problems kubernetes-validate reports for ``docs`` (strict: unknown fields; any WARN, e.g. an unknown kind)."""
    path = tmp_path / f"rendered-{version}.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    result = run([tool("kubernetes-validate"), "--strict", "-k", version, str(path)])
    problems = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if not line.startswith("INFO")]
    passed = [line for line in result.stdout.splitlines() if line.startswith("INFO") and " passed " in line]
    if result.returncode != 0 and not problems:
        problems.append(f"exit code {result.returncode}")
    if not problems and len(passed) != len(docs):
        problems.append(f"{len(passed)} of {len(docs)} objects reported as passed")
    return problems


def _crd_problems(doc: Doc) -> list[str]:
    schema = CRD_SCHEMAS.get(doc["kind"])
    if schema is None:
        return [f"{doc['apiVersion']}/{doc['kind']}: a kind no schema here covers"]
    validator = jsonschema.Draft7Validator(schema)
    return [f"{doc['kind']}/{doc['metadata']['name']}: {e.message} at {list(e.absolute_path)}"
            for e in validator.iter_errors(doc)]  # fmt: skip


def _schema_problems(docs: list[Doc], version: str, tmp_path: Path) -> list[str]:
    builtin = [d for d in docs if "." not in d["apiVersion"].split("/")[0] or d["apiVersion"].split("/")[0].endswith(
        ".k8s.io")]  # fmt: skip
    crds = [d for d in docs if d not in builtin]
    problems = _kubernetes_validate(builtin, version, tmp_path)
    for doc in crds:
        problems += _crd_problems(doc)
    return problems


# --- lint and render ---


@pytest.mark.parametrize("env", ENVS)
def test_helm_lint_strict_passes_with_each_environment_file(env: str) -> None:
    result = run([tool("helm"), "lint", "--strict", str(CHART), "-f", str(CHART / f"values-{env}.yaml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_the_chart_refuses_to_render_without_the_operators_secrets() -> None:
    """No usable default secret: the bare chart (values mode) requires each secret, and a short SECRET_KEY fails."""
    bare = helm_template()
    assert bare.returncode != 0 and "secrets.values.SECRET_KEY is required" in bare.stderr, bare.stderr
    for missing in ["DATABASE_URL", "REDIS_URL", "METRICS_TOKEN"]:
        result = helm_template(*_secret_args(without=missing))
        assert result.returncode != 0 and f"secrets.values.{missing} is required" in result.stderr, result.stderr
    weak = helm_template(*_secret_args(), "--set-string", "secrets.values.SECRET_KEY=short")
    assert weak.returncode != 0 and "at least 32 characters" in weak.stderr, weak.stderr
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert all(v == "" for v in values["secrets"]["values"].values()), "values.yaml must carry no secret"
    assert values["secrets"]["existingSecret"] == "" and not values["secrets"]["externalSecret"]["enabled"]
    leaked = helm_template(*_secret_args(), "--set-string", "config.SECRET_KEY=" + "x" * 40)
    assert leaked.returncode != 0 and "config" in leaked.stderr, "the schema keeps secrets out of the ConfigMap"


def test_the_values_mode_makes_the_secret_and_a_hook_copy_for_the_migration() -> None:
    result = helm_template(*_secret_args(), "--kube-version", KV)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    app = by_name(docs, "Secret", f"{RELEASE}-smart-trader")
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "METRICS_TOKEN"} == set(app["data"]), app["data"].keys()
    hook = by_name(docs, "Secret", f"{RELEASE}-smart-trader-migrate")
    assert set(hook["data"]) == {"DATABASE_URL"}
    notes = hook["metadata"]["annotations"]
    assert notes["helm.sh/hook"] == "pre-install,pre-upgrade" and int(notes["helm.sh/hook-weight"]) < 0
    assert "hook-succeeded" in notes["helm.sh/hook-delete-policy"]


@pytest.mark.parametrize("env", ENVS)
def test_the_rendered_chart_validates_against_kubernetes_1_30_and_the_crd_schemas(env: str, tmp_path: Path) -> None:
    docs = render(env)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "Job", "NetworkPolicy", "ConfigMap", "ServiceAccount"} <= kinds, kinds
    if env != "dev":
        assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "ExternalSecret"} <= kinds, kinds
        assert {"ServiceMonitor", "PrometheusRule"} <= kinds, kinds
    problems = _schema_problems(docs, KV, tmp_path)
    assert not problems, "\n".join(problems)


def test_the_validation_fails_on_an_unknown_field_an_unknown_kind_and_a_bad_crd_field(tmp_path: Path) -> None:
    """The checks above can fail: a misspelt field, a kind with no schema, an invented ServiceMonitor field."""
    docs = render("prod")
    deployment = copy.deepcopy(of_kind(docs, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["portz"] = []
    assert _kubernetes_validate([deployment], KV, tmp_path), "an unknown field must fail"
    unknown = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {}}
    assert _kubernetes_validate([unknown], KV, tmp_path), "kubernetes-validate's WARN on an unknown kind must fail"
    assert _crd_problems(unknown), "a CRD kind with no schema here must fail"
    monitor = copy.deepcopy(of_kind(docs, "ServiceMonitor")[0])
    monitor["spec"]["endpoints"][0]["bearerTokenSecrett"] = {"key": "x"}
    assert _crd_problems(monitor), "an invented ServiceMonitor field must fail"
    removed = copy.deepcopy(of_kind(render("dev", kube="1.20.0", crds=False), "Deployment")[0])
    removed["apiVersion"] = "extensions/v1beta1"
    assert _kubernetes_validate([removed], KV, tmp_path), "an API removed from 1.30 must fail"


def test_on_kubernetes_1_20_the_newer_apis_fall_back_or_disappear(tmp_path: Path) -> None:
    """Kubernetes 1.20 (no autoscaling/v2, no policy/v1, no CRDs): v2beta2 HPAs, v1beta1 PDBs, no CRD objects."""
    on = ("--set", "roles.api.autoscaling.enabled=true,roles.api.pdb.enabled=true,roles.worker.pdb.enabled=true")
    old = render("dev", kube="1.20.0", crds=False, extra=on)
    new = render("dev", extra=on)
    versions = {(d["kind"], d["apiVersion"]) for d in old}
    assert ("HorizontalPodAutoscaler", "autoscaling/v2beta2") in versions, versions
    assert ("PodDisruptionBudget", "policy/v1beta1") in versions, versions
    assert not {v for v in versions if v[1] in ("autoscaling/v2", "policy/v1")}, versions
    assert {(d["kind"], d["apiVersion"]) for d in new} >= {
        ("HorizontalPodAutoscaler", "autoscaling/v2"),
        ("PodDisruptionBudget", "policy/v1"),
    }
    # the HPA spec is the same in both versions: validate the 1.20 one against the oldest schemas shipped (1.25)
    not_pdb = [d for d in old if d["kind"] != "PodDisruptionBudget"]
    problems = _kubernetes_validate(not_pdb, "1.25.0", tmp_path)
    assert not problems, "\n".join(problems)
    for pdb in of_kind(old, "PodDisruptionBudget"):
        assert set(pdb["spec"]) <= {"minAvailable", "maxUnavailable", "selector"}, pdb["spec"]
    prod_old = render("prod", kube="1.20.0", crds=False)
    kinds = {d["kind"] for d in prod_old}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ExternalSecret"}, kinds
    # without the CRD APIs even a current cluster gets none of them
    assert not {d["kind"] for d in render("prod", crds=False)} & {"ServiceMonitor", "PrometheusRule", "ExternalSecret"}


# --- what the rendered objects promise ---


@pytest.mark.parametrize("env", ENVS)
def test_every_pod_runs_non_root_read_only_with_no_capabilities(env: str) -> None:
    docs = render(env)
    specs = pod_specs(docs)
    assert len(specs) == 4, [n for n, _ in specs]  # three roles and the migration Job
    for name, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000 and pod["runAsGroup"] >= 10000, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        volumes = {v["name"]: v for v in spec["volumes"]}
        # emptyDir, and the shared SMART_TRADER_HOME claim of the roles: no hostPath, no Secret files, nothing else
        kinds = {v["name"]: (set(v) - {"name"}).pop() for v in volumes.values()}
        allowed = {"tmp": "emptyDir", "home": "persistentVolumeClaim" if name.startswith("Deployment") else "emptyDir"}
        assert kinds == allowed, f"{name}: volumes {kinds}"
        if name.startswith("Deployment"):
            assert pod["fsGroup"] == 10001, f"{name}: the shared home is writable by the image's user (fsGroup)"
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
            assert sc["runAsNonRoot"] is True and sc.get("privileged") is not True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], name
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert {"/tmp", "/var/lib/smart-trader"} <= mounts, f"{name}: /tmp and SMART_TRADER_HOME writable"
    accounts = of_kind(docs, "ServiceAccount")
    assert len(accounts) == 1 and accounts[0]["automountServiceAccountToken"] is False


@pytest.mark.parametrize("env", ENVS)
def test_each_role_probes_health_and_ready_and_the_feed_never_overlaps(env: str) -> None:
    docs = render(env)
    deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in of_kind(docs, "Deployment")}
    assert set(deployments) == set(ROLES)
    for role, d in deployments.items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        assert c["startupProbe"]["httpGet"]["path"] == "/health", role
        assert c["livenessProbe"]["httpGet"]["path"] == "/health", role
        assert c["readinessProbe"]["httpGet"]["path"] == "/ready", role
        assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}], role
        command = " ".join(c.get("command", []) + c.get("args", []))
        assert f"serve --role {role} --host 0.0.0.0 --port 8000" in command, command
    feed = deployments["feed"]["spec"]
    assert feed["replicas"] == 1 and feed["strategy"] == {"type": "Recreate"}, feed
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert f"{RELEASE}-smart-trader-feed" not in hpas, "the feed never scales"
    minimum = {h["spec"]["scaleTargetRef"]["name"]: h["spec"]["minReplicas"]
               for h in of_kind(docs, "HorizontalPodAutoscaler")}  # fmt: skip
    values = _values(env)
    for role in ("api", "worker"):
        spec, name = deployments[role]["spec"], f"{RELEASE}-smart-trader-{role}"
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        # with an HPA a new Deployment starts at its minimum (`helm install --wait` waits for all of them; an upgrade
        # renders the live count, looked up in the cluster); without one, the values' count
        assert spec["replicas"] == minimum.get(name, values["roles"][role]["replicas"]), f"{role}: {spec['replicas']}"


def _values(env: str) -> Doc:
    """values.yaml with values-<env>.yaml over it (the keys the assertions read are plain maps)."""

    def merge(base: Doc, over: Doc) -> Doc:
        return {k: merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                for k, v in {**base, **over}.items()}  # fmt: skip

    base = yaml.safe_load((CHART / "values.yaml").read_text())
    return merge(base, yaml.safe_load((CHART / f"values-{env}.yaml").read_text()) or {})


@pytest.mark.parametrize("env", ENVS)
def test_api_feed_and_worker_share_one_home_claim(env: str) -> None:
    """The multi-process contract: every role reads the instrument catalog and market data the others add, so all
    three mount the SAME PersistentVolumeClaim at SMART_TRADER_HOME (ReadWriteMany by default, for pods on several
    nodes; dev's single node: ReadWriteOnce); ``existingClaim`` uses the operator's claim; ``enabled: false`` falls
    back to a home per pod."""
    docs = render(env)
    claims: dict[str, str] = {}
    for d in of_kind(docs, "Deployment"):
        spec = d["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        home = next(m for m in c["volumeMounts"] if m["mountPath"] == "/var/lib/smart-trader")
        assert {"name": "SMART_TRADER_HOME", "value": "/var/lib/smart-trader"} in c["env"]
        volume = next(v for v in spec["volumes"] if v["name"] == home["name"])
        claims[d["metadata"]["labels"]["app.kubernetes.io/component"]] = volume["persistentVolumeClaim"]["claimName"]
    assert set(claims) == set(ROLES) and len(set(claims.values())) == 1, claims
    (pvc,) = of_kind(docs, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == claims["api"] == f"{RELEASE}-smart-trader-home"
    expected = ["ReadWriteOnce"] if env == "dev" else ["ReadWriteMany"]
    assert pvc["spec"]["accessModes"] == expected, pvc["spec"]
    assert pvc["spec"]["resources"]["requests"]["storage"], pvc["spec"]
    existing = render(env, extra=("--set", "sharedHome.existingClaim=mine"))
    assert not of_kind(existing, "PersistentVolumeClaim")
    assert {v["persistentVolumeClaim"]["claimName"] for d in of_kind(existing, "Deployment")
            for v in d["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v} == {"mine"}  # fmt: skip
    off = render(env, extra=("--set", "sharedHome.enabled=false"))
    assert not of_kind(off, "PersistentVolumeClaim")
    for d in of_kind(off, "Deployment"):
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        assert set(volumes["home"]) == {"name", "emptyDir"}, volumes["home"]


def test_the_local_cluster_values_use_an_existing_single_node_claim() -> None:
    """deploy/k8s-local has no storage provisioner: its values name a claim the test (or operator) makes."""
    local = yaml.safe_load((DEPLOY / "k8s-local" / "values-local.yaml").read_text())
    assert local["sharedHome"]["enabled"] is True and local["sharedHome"]["existingClaim"], local["sharedHome"]


def test_the_resources_and_scaling_bounds_follow_the_documents() -> None:
    docs = render("prod")
    res = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["spec"]["containers"][0][
        "resources"] for d in of_kind(docs, "Deployment")}  # fmt: skip
    assert res["api"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}
    assert res["worker"]["requests"]["cpu"] == "50m" and res["worker"]["limits"]["cpu"] == "200m"
    hpa = {
        h["metadata"]["labels"]["app.kubernetes.io/component"]: h["spec"]
        for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    assert (hpa["api"]["minReplicas"], hpa["api"]["maxReplicas"]) == (3, 20)
    assert (hpa["worker"]["minReplicas"], hpa["worker"]["maxReplicas"]) == (2, 10)
    util = {(r, m["resource"]["name"]): m["resource"]["target"]["averageUtilization"]
            for r, s in hpa.items() for m in s["metrics"] if m["type"] == "Resource"}  # fmt: skip
    assert util == {("api", "cpu"): 70, ("api", "memory"): 80, ("worker", "cpu"): 60, ("worker", "memory"): 80}
    custom = {(r, m["type"], m[m["type"].lower()]["metric"]["name"]) for r, s in hpa.items() for m in s["metrics"]
              if m["type"] != "Resource"}  # fmt: skip
    assert custom == {
        ("api", "Pods", "http_requests_per_second"),
        ("api", "Object", "trading_volume_per_second"),
        ("worker", "Object", "worker_queue_length"),
    }


def test_every_custom_metric_an_hpa_reads_is_served_by_the_adapter_rules_from_real_series() -> None:
    adapter = yaml.safe_load((CHART / "files" / "prometheus-adapter.yaml").read_text())
    served = {rule["name"]["as"]: rule["seriesQuery"].split("{")[0].strip("'") for rule in adapter["rules"]}
    docs = render("prod")
    wanted = {m[m["type"].lower()]["metric"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")
              for m in h["spec"]["metrics"] if m["type"] != "Resource"}  # fmt: skip
    assert wanted <= set(served), f"HPA metrics with no adapter rule: {wanted - set(served)}"
    recorded = {r["record"] for f in sorted(CHART_RULES.glob("*.yml"))
                for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"] if "record" in r}  # fmt: skip
    exported = (ROOT / "src" / "smart_trader" / "ops" / "metrics.py").read_text()
    for name, series in served.items():
        assert series in recorded or f'"{series}"' in exported, (
            f"{name}: series {series} is neither recorded nor exported"
        )
    config_map = by_name(docs, "ConfigMap", f"{RELEASE}-smart-trader-prometheus-adapter")
    assert yaml.safe_load(config_map["data"]["config.yaml"]) == adapter


def test_the_migration_runs_as_a_hook_job_before_install_and_upgrade() -> None:
    for env in ENVS:
        docs = render(env)
        (job,) = of_kind(docs, "Job")
        notes = job["metadata"]["annotations"]
        assert notes["helm.sh/hook"] == "pre-install,pre-upgrade", notes
        assert set(notes["helm.sh/hook-delete-policy"].split(",")) == {"before-hook-creation", "hook-succeeded"}
        spec = job["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 1
        (c,) = spec["containers"]
        assert c["command"] == ["smart-trader", "db", "upgrade"], c["command"]
        ref = c["env"][0]["valueFrom"]["secretKeyRef"]
        assert c["env"][0]["name"] == "DATABASE_URL" and ref["key"] == "DATABASE_URL"
        # the Secret it reads exists before it: the operator's, or a hook object of a lower weight
        if env == "dev":
            assert ref["name"] == "smart-trader-dev"
        else:
            source = by_name(docs, "ExternalSecret", ref["name"])
            assert int(source["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(notes["helm.sh/hook-weight"])
            assert source["spec"]["data"][0]["remoteRef"]["property"] == "DATABASE_URL"


@pytest.mark.parametrize("env", ENVS)
def test_network_policies_deny_by_default_and_allow_only_the_documented_paths(env: str) -> None:
    docs = render(env)
    policies = {
        p["metadata"]["name"].removeprefix(f"{RELEASE}-smart-trader-"): p["spec"]
        for p in of_kind(docs, "NetworkPolicy")
    }
    deny = policies["default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    release = {"app.kubernetes.io/name": "smart-trader", "app.kubernetes.io/instance": RELEASE}
    assert deny["podSelector"] == {"matchLabels": release}
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            labels = d["spec"]["template"]["metadata"]["labels"]
            assert release.items() <= labels.items(), f"{d['metadata']['name']} escapes the default deny"
    for name, spec in policies.items():
        for rule in spec.get("ingress", []):
            assert rule.get("from") and rule.get("ports"), f"{name}: an ingress rule open to every source or port"
            for peer in rule["from"]:
                assert peer.get("namespaceSelector") and peer.get("podSelector"), f"{name}: {peer}"
        for rule in spec.get("egress", []):
            assert rule.get("ports"), f"{name}: an egress rule open on every port"
            for peer in rule.get("to", []):
                if "ipBlock" in peer and peer["ipBlock"]["cidr"] == "0.0.0.0/0":
                    assert "169.254.0.0/16" in peer["ipBlock"]["except"], f"{name}: cloud metadata reachable"
    api_in = policies["ingress-api"]
    assert api_in["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert api_in["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    ports = {p["port"] for r in policies["egress-dependencies"]["egress"] for p in r["ports"]}
    assert ports == {53, 5432, 6379}, ports
    https = policies["egress-https"]
    roles = set(https["podSelector"]["matchExpressions"][2]["values"])
    assert {"api", "worker"} <= roles and ("feed" in roles) == (env == "prod"), roles
    assert [p["port"] for p in https["egress"][0]["ports"]] == [443]


def test_the_ingresses_rate_limit_terminate_tls_and_split_websocket_and_webhooks() -> None:
    docs = render("prod")
    ingresses = {i["metadata"]["name"].removeprefix(f"{RELEASE}-smart-trader"): i for i in of_kind(docs, "Ingress")}
    assert set(ingresses) == {"", "-ws", "-webhooks"}
    for name, ing in ingresses.items():
        spec, notes = ing["spec"], ing["metadata"]["annotations"]
        assert spec["ingressClassName"] == "nginx" and spec["tls"][0]["hosts"] == ["smart-trader.example.com"], name
        assert notes["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true", name
        assert notes["cert-manager.io/cluster-issuer"] == "letsencrypt-prod", name
        assert int(notes["nginx.ingress.kubernetes.io/limit-rps"]) > 0, name
        backend = spec["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": f"{RELEASE}-smart-trader-api", "port": {"name": "http"}}, name
    paths = {n: i["spec"]["rules"][0]["http"]["paths"][0]["path"] for n, i in ingresses.items()}
    assert paths == {"": "/", "-ws": "/ws", "-webhooks": "/api/v1/webhooks/"}
    ws = ingresses["-ws"]["metadata"]["annotations"]
    assert int(ws["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(ws["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    main, hooks = ingresses[""]["metadata"]["annotations"], ingresses["-webhooks"]["metadata"]["annotations"]
    assert hooks["nginx.ingress.kubernetes.io/limit-rps"] != main["nginx.ingress.kubernetes.io/limit-rps"]
    ranges = helm_template(
        "-f", str(CHART / "values-prod.yaml"), "--set", "ingress.webhooks.allowSourceRanges={3.18.12.63/32}"
    )
    assert ranges.returncode == 0, ranges.stderr
    webhooks = by_name(
        [d for d in yaml.safe_load_all(ranges.stdout) if d], "Ingress", f"{RELEASE}-smart-trader-webhooks"
    )
    assert webhooks["metadata"]["annotations"]["nginx.ingress.kubernetes.io/whitelist-source-range"] == "3.18.12.63/32"
    assert not of_kind(render("dev"), "Ingress"), "no Ingress unless enabled"


def test_the_service_monitor_scrapes_every_role_with_the_metrics_token() -> None:
    docs = render("prod")
    (monitor,) = of_kind(docs, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    secret = of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["envFrom"][1]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "http"
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": secret["secretRef"]["name"], "key": "METRICS_TOKEN"},
    }
    external = by_name(docs, "ExternalSecret", secret["secretRef"]["name"])
    assert external["spec"]["target"]["name"] == secret["secretRef"]["name"]
    selected = monitor["spec"]["selector"]["matchExpressions"][2]["values"]
    services = {s["metadata"]["labels"]["app.kubernetes.io/component"] for s in of_kind(docs, "Service")}
    assert set(selected) == services == set(ROLES)


def test_the_prometheus_rule_copies_are_identical_to_the_monitoring_rules() -> None:
    """Helm reads only files inside the chart: files/prometheus-rules/ must be byte-identical copies."""
    chart_rules, rules = CHART_RULES.relative_to(ROOT), RULES.relative_to(ROOT)
    fix = f"re-copy them: rm -f {chart_rules}/*.yml && cp {rules}/*.yml {chart_rules}/"
    sources = {p.name: p.read_bytes() for p in sorted(RULES.glob("*.yml"))}
    copies = {p.name: p.read_bytes() for p in sorted(CHART_RULES.glob("*.yml"))}
    assert sorted(copies) == sorted(sources), (
        f"rule files differ by name ({sorted(copies)} vs {sorted(sources)}): {fix}"
    )
    stale = [name for name in sources if sources[name] != copies[name]]
    assert not stale, f"{stale} changed in {RULES.relative_to(ROOT)}: {fix}"
    assert sources, f"no rules in {RULES.relative_to(ROOT)}"
    (rule,) = of_kind(render("prod"), "PrometheusRule")
    groups = [g for name in sorted(sources) for g in yaml.safe_load(sources[name])["groups"]]
    assert rule["spec"]["groups"] == groups


# --- security scanners against the reviewed skip file ---


def _skip_ids(scanner: str) -> set[str]:
    doc = yaml.safe_load(SKIPS.read_text()) or {}
    entries = doc.get(scanner) or []
    assert all(len(str(e.get("reason", "")).strip()) >= 20 for e in entries), f"{SKIPS}: every skip needs a reason"
    return {str(e["id"]) for e in entries}


def _checkov(args: list[str]) -> tuple[int, set[str]]:
    result = run([tool("checkov"), "--skip-download", "--quiet", "--compact", "-o", "json", *args], timeout=600)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout) if result.stdout.strip() else []
    reports = reports if isinstance(reports, list) else [reports]
    passed = sum((r.get("summary") or {}).get("passed", 0) for r in reports)
    failed = {c["check_id"] for r in reports for c in (r.get("results") or {}).get("failed_checks", [])}
    return passed, failed


def test_checkov_findings_on_the_chart_are_all_listed_with_a_reason(tmp_path: Path) -> None:
    """checkov --framework helm with each environment file (the bare chart does not render: no secrets), and the
    kubernetes framework on the rendered manifests of a values-mode install (hooks and the Secret included)."""
    tool("helm")
    skips = _skip_ids("checkov")
    seen: set[str] = set()
    for env in ENVS:
        passed, failed = _checkov(
            ["--framework", "helm", "-d", str(CHART), "--var-file", str(CHART / f"values-{env}.yaml")]
        )
        assert passed > 100, f"{env}: checkov scanned nothing ({passed} checks passed): did the chart render?"
        assert failed <= skips, f"{env}: checkov findings not in {SKIPS.name}: {sorted(failed - skips)}"
        seen |= failed
    out = tmp_path / "rendered"
    rendered = helm_template(*_secret_args(), "--kube-version", KV, "--output-dir", str(out))
    assert rendered.returncode == 0, rendered.stderr
    passed, failed = _checkov(["--framework", "kubernetes", "-d", str(out)])
    assert passed > 100 and failed <= skips, f"rendered manifests: {sorted(failed - skips)}"
    seen |= failed
    assert skips <= seen, f"stale checkov skips in {SKIPS.name} (they no longer fire): {sorted(skips - seen)}"


def _trivy(args: list[str]) -> tuple[int, set[str]]:
    result = run([tool("trivy"), "config", "--skip-check-update", "--quiet", "--format", "json",
                  "--severity", "MEDIUM,HIGH,CRITICAL", *args], timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout).get("Results") or []
    scanned = sum((r.get("MisconfSummary") or {}).get("Successes", 0) for r in results)
    failed = {m["ID"] for r in results for m in r.get("Misconfigurations") or [] if m.get("Status") == "FAIL"}
    return scanned, failed


def test_trivy_config_findings_on_the_chart_are_all_listed_with_a_reason(tmp_path: Path) -> None:
    tool("helm")
    skips = _skip_ids("trivy")
    seen: set[str] = set()
    for env in ENVS:
        scanned, failed = _trivy(["--helm-values", str(CHART / f"values-{env}.yaml"), str(CHART)])
        assert scanned > 50, f"{env}: trivy scanned nothing: did the chart render?"
        assert failed <= skips, f"{env}: trivy findings not in {SKIPS.name}: {sorted(failed - skips)}"
        seen |= failed
    out = tmp_path / "rendered"
    for env in ENVS:  # one file per object: the hook Job and the Secret too (the helm scanner leaves hooks out)
        (out / env).mkdir(parents=True)
        for i, doc in enumerate(render(env)):
            (out / env / f"{i:02d}-{doc['kind']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    scanned, failed = _trivy([str(out)])
    assert scanned > 500 and failed <= skips, f"rendered manifests: {sorted(failed - skips)}"
    seen |= failed
    assert skips <= seen, f"stale trivy skips in {SKIPS.name} (they no longer fire): {sorted(skips - seen)}"
