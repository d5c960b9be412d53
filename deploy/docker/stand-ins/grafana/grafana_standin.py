"""Stand-in for the Grafana server where Grafana cannot be installed (no registry image, not in Debian, PyPI or npm).

It is NOT Grafana: it renders no panel and runs no query. It does what can be checked without Grafana, with Grafana's
paths and conventions: at start it reads the provisioning folder (``GF_PATHS_PROVISIONING``, default
``/etc/grafana/provisioning``; ``$VAR``/``${VAR}`` expanded from the environment as Grafana does) and every dashboard
JSON file under each dashboard provider's ``options.path``, and exits non-zero naming the first file that does not
parse or does not hold together (a provider path that is missing, a dashboard without a title or uid, a duplicate
uid, a panel whose data source names no provisioned data source). Then it serves on port 3000 (``GF_SERVER_HTTP_PORT``):

- ``GET /api/health``: ``{"database": "ok", ...}`` as Grafana answers it (no authentication);
- ``GET /api/datasources``, ``GET /api/search``, ``GET /api/dashboards/uid/<uid>``: what was provisioned, behind
  HTTP basic authentication as ``admin`` with ``GF_SECURITY_ADMIN_PASSWORD`` (or the file named by
  ``GF_SECURITY_ADMIN_PASSWORD__FILE``); without one it refuses to start (Grafana's default admin/admin is not kept).

Usage: python3 grafana_standin.py   (the image's entrypoint)
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

VERSION = "stand-in (not Grafana)"


class ProvisioningError(Exception):
    """A provisioning or dashboard file Grafana would reject or misread."""


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(os.path.expandvars(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise ProvisioningError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ProvisioningError(f"{path}: not a mapping")
    return data


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix in {".yaml", ".yml"}) if folder.is_dir() else []


def load_datasources(provisioning: Path) -> list[dict[str, Any]]:
    """Data sources of ``provisioning/datasources/*.yaml``; each needs a name and a type."""
    found: list[dict[str, Any]] = []
    for path in _yaml_files(provisioning / "datasources"):
        for ds in _load_yaml(path).get("datasources") or []:
            if not isinstance(ds, dict) or not ds.get("name") or not ds.get("type"):
                raise ProvisioningError(f"{path}: a data source without name or type: {ds!r}")
            found.append(ds)
    return found


def _panel_sources(panels: list[Any]) -> list[Any]:
    refs: list[Any] = []
    for panel in panels:
        if not isinstance(panel, dict):
            continue
        refs.append(panel.get("datasource"))
        refs.extend(t.get("datasource") for t in panel.get("targets") or [] if isinstance(t, dict))
        refs.extend(_panel_sources(panel.get("panels") or []))  # rows hold panels
    return [r for r in refs if r is not None]


def _check_source(ref: Any, known: set[str], where: str) -> None:
    """A panel's data source: a template variable (``$datasource``), or a provisioned data source's uid or name."""
    value = ref.get("uid") if isinstance(ref, dict) else ref
    if isinstance(value, str) and (value.startswith("$") or value in known or value in {"-- Grafana --", "grafana"}):
        return
    raise ProvisioningError(f"{where}: a panel uses data source {ref!r}, which is not provisioned ({sorted(known)})")


def load_dashboards(provisioning: Path, datasources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Dashboards by uid, from the JSON files under each provider's ``options.path``."""
    known = {str(ds.get("uid")) for ds in datasources if ds.get("uid")} | {str(ds["name"]) for ds in datasources}
    dashboards: dict[str, dict[str, Any]] = {}
    for path in _yaml_files(provisioning / "dashboards"):
        for provider in _load_yaml(path).get("providers") or []:
            folder = Path(str((provider.get("options") or {}).get("path", "")))
            if not folder.is_dir():
                raise ProvisioningError(f"{path}: provider {provider.get('name')!r} reads {folder}, not a folder")
            for file in sorted(folder.rglob("*.json")):
                try:
                    dash = json.loads(file.read_text())
                except (OSError, ValueError) as exc:
                    raise ProvisioningError(f"{file}: {exc}") from None
                if not isinstance(dash, dict) or not dash.get("title") or not dash.get("uid"):
                    raise ProvisioningError(f"{file}: a dashboard needs a title and a uid")
                if dash["uid"] in dashboards:
                    raise ProvisioningError(f"{file}: uid {dash['uid']!r} is used by another dashboard")
                for ref in _panel_sources(dash.get("panels") or []):
                    _check_source(ref, known, str(file))
                dashboards[str(dash["uid"])] = dash
    return dashboards


def admin_password() -> str:
    path = os.environ.get("GF_SECURITY_ADMIN_PASSWORD__FILE", "")
    password = Path(path).read_text().strip() if path else os.environ.get("GF_SECURITY_ADMIN_PASSWORD", "")
    if not password:
        raise ProvisioningError("set GF_SECURITY_ADMIN_PASSWORD or GF_SECURITY_ADMIN_PASSWORD__FILE")
    return password


def make_handler(
    datasources: list[dict[str, Any]], dashboards: dict[str, dict[str, Any]], password: str
) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/api/health":
                self._send(200, {"commit": "stand-in", "database": "ok", "version": VERSION})
                return
            if not hmac.compare_digest(self.headers.get("Authorization", ""), expected):
                self._send(401, {"message": "Unauthorized"})
                return
            if path == "/api/datasources":
                self._send(200, [{k: v for k, v in ds.items() if k != "secureJsonData"} for ds in datasources])
            elif path == "/api/search":
                self._send(200, [{"uid": u, "title": d["title"], "type": "dash-db"} for u, d in dashboards.items()])
            elif path.startswith("/api/dashboards/uid/") and path.rsplit("/", 1)[1] in dashboards:
                self._send(200, {"dashboard": dashboards[path.rsplit("/", 1)[1]], "meta": {"provisioned": True}})
            else:
                self._send(404, {"message": "Not found"})

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"grafana stand-in: {self.address_string()} {format % args}\n")

    return Handler


def main() -> None:
    provisioning = Path(os.environ.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"))
    try:
        datasources = load_datasources(provisioning)
        dashboards = load_dashboards(provisioning, datasources)
        password = admin_password()
    except ProvisioningError as exc:
        sys.stderr.write(f"grafana stand-in: provisioning rejected: {exc}\n")
        raise SystemExit(1) from None
    sys.stderr.write(
        f"grafana stand-in (NOT Grafana): {len(datasources)} data source(s), {len(dashboards)} dashboard(s) "
        f"provisioned from {provisioning}: {', '.join(sorted(d['title'] for d in dashboards.values()))}\n"
    )
    port = int(os.environ.get("GF_SERVER_HTTP_PORT", "3000"))
    # PID 1 of its container: without a handler SIGTERM is ignored and `docker stop` waits for SIGKILL
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(0))
    ThreadingHTTPServer(("0.0.0.0", port), make_handler(datasources, dashboards, password)).serve_forever()


if __name__ == "__main__":
    main()
