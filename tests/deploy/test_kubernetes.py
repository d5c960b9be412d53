"""The Helm chart on a real Kubernetes: a single-node 1.20.2 cluster built on this machine (``deploy/k8s-local``).

The cluster comes from Debian's own ``kubernetes`` source package (``build.sh``) and runs etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, containerd, the kubelet and kube-proxy (``up.sh``). The tests install the
chart with ``helm install --wait``, the image ``smart-trader:dev`` imported from the local Docker engine, PostgreSQL
(the machine's, database ``k8s_test``) and a private Redis reached from the pods at the CNI bridge's gateway address
(no cluster DNS: addresses in the URLs). Then, through the API Service's ClusterIP (routed by kube-proxy): register,
log in, open an account, place a market order and see it filled by the feed replaying the packaged sample.

Needs root (network namespaces, iptables, mounts). A cluster already running is reused and left running; one the
tests started is stopped at the end unless ``K8S_LOCAL_KEEP=1``. Durations are printed and kept in
``.deploy-tools/k8s/durations.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from psycopg import sql

from .conftest import DEPLOY, ROOT, _missing, run, tool

pytestmark = pytest.mark.deploy

KIT = DEPLOY / "k8s-local"
K8S = ROOT / ".deploy-tools" / "k8s"
KUBECONFIG = K8S / "kubeconfig"
CHART = DEPLOY / "helm" / "smart-trader"
VALUES = KIT / "values-local.yaml"
IMAGE = "smart-trader:dev"
DOCKER_HOST = f"unix://{ROOT / '.deploy-tools' / 'docker' / 'docker.sock'}"
NAMESPACE = "smart-trader"
RELEASE = "st"
GATEWAY = "10.244.0.1"  # the CNI bridge's address on the host: pods reach the host's services there (up.sh)
DATABASE = "k8s_test"
REDIS_PORT = 16379  # a private Redis for the release: pub/sub channels are not per database
HOME_CLAIM = "smart-trader-home"  # values-local.yaml: sharedHome.existingClaim
APP_UID = 10001  # the image's user
# the packaged sample the feed replays (src/smart_trader/samples)
SYMBOL, VENUE = "BTC/USDT:USDT", "BINANCE"
DURATIONS: dict[str, float] = {}
# more values files for the install, separated by ":" (e.g. to try a change of the chart's values)
EXTRA_VALUES = [a for v in os.environ.get("K8S_LOCAL_VALUES", "").split(":") if v for a in ("-f", v)]


def _check(args: list[str], timeout: float = 600, what: str = "") -> str:
    """Run ``args``; fail with its output when it exits non-zero; return stdout."""
    result = run(args, timeout=timeout, env={"KUBECONFIG": str(KUBECONFIG), "DOCKER_HOST": DOCKER_HOST})
    if result.returncode != 0:  # not an assert: its rewriting would print the arguments
        pytest.fail(
            f"{what or args[0]} failed (rc {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result.stdout


def kubectl(*args: str, timeout: float = 120) -> str:
    """The cluster's own kubectl (1.20.2, built with it) against the local cluster."""
    return _check([str(K8S / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args], timeout=timeout)


def kube_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def _timed(name: str, started: float) -> None:
    DURATIONS[name] = round(time.monotonic() - started, 1)
    K8S.mkdir(parents=True, exist_ok=True)
    (K8S / "durations.json").write_text(json.dumps(DURATIONS, indent=2) + "\n")
    print(f"[k8s-local] {name}: {DURATIONS[name]} s")


def _node_ready() -> bool:
    if not KUBECONFIG.is_file() or not (K8S / "bin" / "kubectl").is_file():
        return False
    result = run(
        [str(K8S / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), "get", "nodes", "--request-timeout=5s",
         "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}"]
    )  # fmt: skip
    return result.returncode == 0 and result.stdout.strip() == "True"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Path]:
    """The local cluster, built (idempotent) and started unless it already runs; its kubeconfig."""
    if os.geteuid() != 0:
        _missing("the local Kubernetes needs root (network namespaces, iptables, mounts)")
    tool("helm")
    reused = _node_ready()
    if not reused:
        started = time.monotonic()
        _check(["bash", str(KIT / "build.sh")], timeout=3600, what="deploy/k8s-local/build.sh")
        _timed("k8s build (build.sh: 17 min cold here, seconds when built)", started)
        started = time.monotonic()
        _check(["bash", str(KIT / "up.sh")], timeout=600, what="deploy/k8s-local/up.sh")
        _timed("cluster start (up.sh, until the node is Ready)", started)
    yield KUBECONFIG
    if not reused and os.environ.get("K8S_LOCAL_KEEP") != "1":
        run(["bash", str(KIT / "down.sh")], timeout=300)


def test_the_cluster_runs_a_pod_and_routes_its_clusterip(cluster: Path) -> None:
    """The cluster's own proof, before the chart: a pod of a locally built image gets Ready, and the host reaches it
    through its Service's ClusterIP (kube-proxy's iptables rules)."""
    started = time.monotonic()
    kubectl("apply", "-f", str(KIT / "smoke.yaml"))
    try:
        kubectl("-n", "k8s-local-smoke", "rollout", "status", "deployment/smoke", "--timeout=180s", timeout=200)
        ip = kubectl("-n", "k8s-local-smoke", "get", "service", "smoke", "-o", "jsonpath={.spec.clusterIP}")
        assert ip.startswith("10.96."), ip
        pod = kubectl(
            "-n", "k8s-local-smoke", "get", "pods", "-l", "app=smoke", "-o", "jsonpath={.items[0].metadata.name}"
        )
        reply = _get_retrying(f"http://{ip}/")
        assert reply == f"ok {pod}\n"
    finally:
        kubectl("delete", "namespace", "k8s-local-smoke", "--wait=false")
    _timed("smoke pod Ready and answering on its ClusterIP", started)


def _get_retrying(url: str, attempts: int = 20) -> str:
    """GET ``url`` (kube-proxy may take a moment to program a new Service)."""
    for attempt in range(attempts):
        try:
            response = httpx.get(url, timeout=5)
            response.raise_for_status()
            return response.text
        except httpx.HTTPError:
            if attempt == attempts - 1:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def _secrets(folder: Path, redis_url: str) -> list[str]:
    """The release's secrets, made now, in a values file readable by root only (not on a command line, where
    ``ps`` shows it) in the test's temporary folder: ``["-f", file]``."""
    values = {
        "SECRET_KEY": secrets.token_hex(32),
        "METRICS_TOKEN": secrets.token_hex(32),
        "DATABASE_URL": f"postgresql://postgres@{GATEWAY}:5432/{DATABASE}",
        "REDIS_URL": redis_url,
    }
    path = folder / "secrets.yaml"
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump({"secrets": {"values": values}}))
    return ["-f", str(path)]


def test_the_rendered_chart_passes_server_side_validation(cluster: Path, tmp_path: Path) -> None:
    """Every object the chart renders for this cluster (with the 1.20 API's capabilities), hooks included, is
    accepted by the API server's own validation and admission (``kubectl apply --dry-run=server``); and the same
    check does reject an invalid object, so it is not a rubber stamp."""
    if not (CHART / "Chart.yaml").is_file():
        _missing("deploy/helm/smart-trader is not there")
    helm = tool("helm")
    if run([str(K8S / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), "get", "namespace", NAMESPACE]).returncode:
        kubectl("create", "namespace", NAMESPACE)
    rendered = _check(
        [helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(VALUES), "--validate",
         *_secrets(tmp_path, f"redis://{GATEWAY}:{REDIS_PORT}/0")],
        what="helm template --validate",
    )  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = sorted({d["kind"] for d in docs})
    assert {"Deployment", "Service", "Job", "Secret", "ConfigMap", "NetworkPolicy"} <= set(kinds), kinds
    out = _apply_dry_run(rendered)
    assert out.returncode == 0, out.stderr[-5000:]
    accepted = [line for line in out.stdout.splitlines() if "(server dry run)" in line]
    assert len(accepted) == len(docs), out.stdout
    api = next(d for d in docs if d["kind"] == "Service")
    api["spec"]["ports"][0]["protocol"] = "TCPX"
    bad = _apply_dry_run(yaml.safe_dump(api))
    assert bad.returncode != 0 and "Unsupported value" in bad.stderr, bad.stdout + bad.stderr
    # every role mounts the one claim named in values-local.yaml
    claims = {v["persistentVolumeClaim"]["claimName"] for d in docs if d["kind"] == "Deployment"
              for v in d["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v}  # fmt: skip
    assert claims == {HOME_CLAIM}, claims
    # without the shared home the install notes warn that orders will be refused (helm install --dry-run: the notes
    # are rendered against this cluster)
    notes = _check(
        [helm, "install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(VALUES), "--dry-run",
         "--set", "sharedHome.enabled=false", *_secrets(tmp_path, f"redis://{GATEWAY}:{REDIS_PORT}/0")],
        what="helm install --dry-run",
    )  # fmt: skip
    assert "WARNING: sharedHome.enabled=false" in notes and "unknown" in notes, notes[-2000:]


def _apply_dry_run(manifests: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(K8S / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), "apply", "-n", NAMESPACE,
         "--dry-run=server", "-f", "-"],
        input=manifests, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def database() -> Iterator[None]:
    """An empty database ``k8s_test`` on the machine's PostgreSQL, dropped afterwards."""
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _missing(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
        raise
    with conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    yield
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


@pytest.fixture
def redis_url(cluster: Path) -> Iterator[str]:
    """A private, memory-only Redis bound to the bridge gateway (pods reach it; nothing else outside the host)."""
    server = shutil.which("redis-server")
    if server is None:
        _missing("redis-server is not installed")
    assert server is not None
    proc = subprocess.Popen(
        [server, "--bind", GATEWAY, "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
         "--protected-mode", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"redis://{GATEWAY}:{REDIS_PORT}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _image_loaded() -> None:
    if run(["docker", "image", "inspect", IMAGE], env={"DOCKER_HOST": DOCKER_HOST}).returncode != 0:
        _missing(f"image {IMAGE} is not in the local Docker engine ({DOCKER_HOST}): build it first (deploy/docker)")
    started = time.monotonic()
    _check(["bash", str(KIT / "load-image.sh"), IMAGE], timeout=600, what="load-image.sh")
    _timed(f"image {IMAGE} imported into the node's containerd", started)


def test_the_chart_installs_and_an_order_through_the_api_service_fills(
    cluster: Path, database: None, redis_url: str, tmp_path: Path, image: str
) -> None:
    """``helm install --wait``: the migration hook Job succeeds, every pod gets Ready; then a user registers, logs
    in, opens an account and places a market order through the API Service, and the feed fills it."""
    helm = tool("helm")
    if not (CHART / "Chart.yaml").is_file():
        _missing("deploy/helm/smart-trader is not there")
    _image_loaded()
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=180)  # the dry run's
    started = time.monotonic()
    home = tmp_path / "smart-trader-home"
    release = [RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(VALUES), *EXTRA_VALUES, *_secrets(tmp_path, redis_url)]
    try:
        _shared_home(home)
        _check([helm, "install", *release, "--wait", "--timeout", "10m"], timeout=700, what="helm install --wait")
        _timed("helm install --wait (hook Job, every pod Ready)", started)
        _assert_release_healthy()
        _order_fills_through_the_api_service()
        # the roles really share one SMART_TRADER_HOME: the catalog the feed wrote is on the node's folder
        catalog = home / "market-data" / "instruments.json"
        assert catalog.is_file() and SYMBOL in catalog.read_text(), sorted(str(p) for p in home.rglob("*"))[:20]
        assert catalog.stat().st_uid == APP_UID, catalog.stat()
        _upgrade_keeps_the_count_the_hpa_chose(helm, release)
    except BaseException:
        print(_diagnostics())
        raise
    finally:
        run([helm, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "3m"],
            env={"KUBECONFIG": str(KUBECONFIG)}, timeout=240)  # fmt: skip
        run([str(K8S / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), "delete", "namespace", NAMESPACE,
             "--wait=true", "--timeout=120s"], timeout=180)  # fmt: skip
        run([str(K8S / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), "delete", "persistentvolume",
             _pv_name(), "--ignore-not-found", "--wait=true", "--timeout=60s"], timeout=90)  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)
    _timed("chart test (install, checks, order filled, upgrade, uninstall)", started)


def _pv_name() -> str:
    return f"{NAMESPACE}-{HOME_CLAIM}"


def _shared_home(folder: Path) -> None:
    """The claim values-local.yaml names (``sharedHome.existingClaim``): this cluster has no storage provisioner, so
    a hostPath PersistentVolume on the one node, over ``folder`` (owned by the image's user: hostPath volumes ignore
    fsGroup), pre-bound to a ReadWriteOnce claim in the release's namespace. Every role mounts it."""
    folder.mkdir(mode=0o750)
    os.chown(folder, APP_UID, APP_UID)
    kubectl("create", "namespace", NAMESPACE)
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": _pv_name()},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": str(folder), "type": "Directory"},
            "claimRef": {"namespace": NAMESPACE, "name": HOME_CLAIM},
        },
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": HOME_CLAIM, "namespace": NAMESPACE},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "volumeName": _pv_name(),
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    result = subprocess.run(
        [str(K8S / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), "apply", "-f", "-"],
        input=yaml.safe_dump_all([volume, claim]), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 60
    phase = ""
    while time.monotonic() < deadline:
        phase = kubectl("-n", NAMESPACE, "get", "pvc", HOME_CLAIM, "-o", "jsonpath={.status.phase}")
        if phase == "Bound":
            break
        time.sleep(1)
    assert phase == "Bound", f"claim {HOME_CLAIM} is {phase!r}"


def _upgrade_keeps_the_count_the_hpa_chose(helm: str, release: list[str]) -> None:
    """With an HPA the chart renders the live replica count on upgrade: a ``helm upgrade`` neither resets the count
    the HPA chose nor drops the field (a field removed from the manifest resets a Deployment to 1 replica). Here the
    HPA has no metrics (no metrics server) and keeps any count within its bounds; 3 is its maximum."""
    deployment = f"{RELEASE}-smart-trader-api"
    kubectl("-n", NAMESPACE, "scale", "deployment", deployment, "--replicas=3")
    started = time.monotonic()
    _check([helm, "upgrade", *release, "--wait", "--timeout", "5m"], timeout=400, what="helm upgrade --wait")
    _timed("helm upgrade --wait (hook Job again)", started)
    spec = kube_json("-n", NAMESPACE, "get", "deployment", deployment)["spec"]
    assert spec["replicas"] == 3, f"the upgrade changed the api replicas to {spec['replicas']}"
    manifest = _check([helm, "get", "manifest", RELEASE, "-n", NAMESPACE], what="helm get manifest")
    (rendered,) = [d for d in yaml.safe_load_all(manifest)
                   if d and d["kind"] == "Deployment" and d["metadata"]["name"] == deployment]  # fmt: skip
    assert rendered["spec"]["replicas"] == 3, rendered["spec"]


def _pods_by_role() -> tuple[dict[str, int], list[str]]:
    """{role: pods} of the release, and the pods that are not Running and Ready (name: phase)."""
    roles: dict[str, int] = {}
    unready = []
    for pod in kube_json("-n", NAMESPACE, "get", "pods")["items"]:
        role = pod["metadata"]["labels"].get("app.kubernetes.io/component", "?")
        if role == "migrate":  # the hook Job's pod, going away with the Job (deleted once it succeeded)
            continue
        ready = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}.get("Ready")
        if pod["status"]["phase"] != "Running" or ready != "True":
            unready.append(f"{pod['metadata']['name']}: {pod['status']['phase']}")
        roles[role] = roles.get(role, 0) + 1
    return roles, unready


def _assert_release_healthy() -> None:
    """Right after ``helm install --wait`` returned: every pod Running and Ready, as many as the values ask (with an
    HPA a new Deployment starts at its minReplicas, so ``--wait`` waited for all of them)."""
    want = {"api": 2, "feed": 1, "worker": 1}  # values-local.yaml: the HPAs' minReplicas, the one feed
    roles, unready = _pods_by_role()
    assert roles == want and not unready, f"pods by role {roles} (want {want}); not Ready: {unready}"
    # the pre-install hook Job ran and succeeded (deleted on success by its hook-delete-policy: its events remain)
    events = kube_json("-n", NAMESPACE, "get", "events", "--field-selector", "involvedObject.kind=Job")["items"]
    completed = [e for e in events if e["involvedObject"]["name"].endswith("-migrate") and e["reason"] == "Completed"]
    assert completed, [(e["involvedObject"]["name"], e["reason"], e["message"]) for e in events]
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{DATABASE}") as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version is not None


def _api_base() -> str:
    services = kube_json("-n", NAMESPACE, "get", "services", "-l", "app.kubernetes.io/component=api")["items"]
    assert len(services) == 1, [s["metadata"]["name"] for s in services]
    spec = services[0]["spec"]
    assert spec["type"] == "ClusterIP" and spec["clusterIP"].startswith("10.96."), spec
    endpoints = kube_json("-n", NAMESPACE, "get", "endpoints", services[0]["metadata"]["name"])
    assert endpoints.get("subsets"), "the API Service has no ready endpoints"
    return f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}"


def _order_fills_through_the_api_service() -> None:
    """The README walkthrough's first steps, through the API Service's ClusterIP (kube-proxy)."""
    base = _api_base()
    started = time.monotonic()
    with httpx.Client(base_url=base + "/api/v1", timeout=15) as api:
        assert httpx.get(base + "/ready", timeout=10).status_code == 200
        email, password = f"k8s-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(18)
        api.post("/auth/register", json={"email": email, "password": password}).raise_for_status()
        token = api.post("/auth/token", data={"username": email, "password": password})
        token.raise_for_status()
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        account = api.post("/accounts", json={"name": "k8s", "starting_balance": "100000", "currency": "USDT"})
        account.raise_for_status()
        account_id = account.json()["id"]
        order = api.post(
            f"/accounts/{account_id}/orders",
            json={"symbol": SYMBOL, "venue": VENUE, "side": "buy", "type": "market", "qty": "0.5",
                  "client_order_id": f"k8s-{secrets.token_hex(4)}"},
        )  # fmt: skip
        assert order.status_code in (200, 201), order.text
        order_id = order.json()["id"]
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline:
            status = api.get(f"/accounts/{account_id}/orders/{order_id}").json()["status"]
            if status == "filled":
                break
            time.sleep(0.5)
        assert status == "filled", f"order still {status!r} after 120 s"
        fills = api.get(f"/accounts/{account_id}/fills").json()
    assert len(fills) == 1 and fills[0]["side"] == "buy", fills
    assert fills[0]["quantity"] in ("0.5", "0.50", "0.500") or float(fills[0]["quantity"]) == 0.5, fills
    assert float(fills[0]["price"]) > 0, fills
    _timed("register, log in, open an account, market order filled (through the ClusterIP)", started)


def _diagnostics() -> str:
    """What the cluster says about the release, for a failing test's output."""
    out = []
    for args in (["get", "pods,jobs,services,endpoints", "-o", "wide"], ["get", "events", "--sort-by=.lastTimestamp"]):
        result = run([str(K8S / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), "-n", NAMESPACE, *args])
        out.append(result.stdout[-4000:] + result.stderr[-1000:])
    pods = run([str(K8S / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), "-n", NAMESPACE, "get", "pods",
                "-o", "jsonpath={.items[*].metadata.name}"]).stdout.split()  # fmt: skip
    for pod in pods:
        logs = run([str(K8S / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), "-n", NAMESPACE, "logs", pod,
                    "--all-containers", "--tail=40"])  # fmt: skip
        out.append(f"--- {pod}\n{logs.stdout[-3000:]}{logs.stderr[-500:]}")
    return "\n".join(out)
