"""Run checkov and ``trivy config`` over the deployment kit one area at a time, each with its own skip file.

Usage: python deploy/scripts/scan_areas.py [--sarif-dir DIR]   (from the repository root; checkov, trivy and helm on
PATH, PyYAML importable: deploy/tools/install.sh's venv has it)

An accepted finding of one area (``deploy/scan-skips/<area>.yaml``) is skipped in that area only: k8s-local's
CKV_K8S_15 does not hide the same finding in the Helm chart, Terraform's skips do not apply to the workflows.
Whatever lies outside every area (a new folder under deploy/) is scanned with no skip at all. The chart is scanned
once per environment with its values file (it does not render without values). A skip file with no area here fails
the run, so a new area cannot go unscanned. The merged SARIF (one run per scanner) is written to DIR for code scanning.
Exit: 0 no unlisted finding, 1 findings (printed), 2 bad use.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SKIPS = ROOT / "deploy" / "scan-skips"
CHART = "deploy/helm/smart-trader"
ENVS = ("dev", "staging", "prod")
TRIVY_ALWAYS_SKIPPED = [".deploy-tools", ".venv", "build", "tests", "src", "node_modules"]


@dataclass(frozen=True)
class Area:
    """One part of the kit: its folders and the checkov frameworks that read them."""

    name: str
    dirs: list[str]
    frameworks: list[str] = field(default_factory=list)


AREAS = [
    Area("docker", ["deploy/docker"], ["dockerfile"]),
    Area("helm", ["deploy/helm"], ["helm"]),
    Area("k8s-local", ["deploy/k8s-local"], ["kubernetes"]),
    Area("terraform", ["deploy/terraform"], ["terraform"]),
    Area("cicd", [".github", "deploy/scripts"], ["github_actions"]),
    Area("backup", ["deploy/backup"], ["dockerfile", "kubernetes"]),
]
REST_FRAMEWORKS = ["dockerfile", "kubernetes", "terraform", "helm", "github_actions"]


def skip_ids(area: str, scanner: str) -> list[str]:
    path = SKIPS / f"{area}.yaml"
    if not path.is_file():
        return []
    doc = yaml.safe_load(path.read_text()) or {}
    return [str(entry["id"]) for entry in doc.get(scanner) or []]


def checkov(label: str, args: list[str], skips: list[str], out: Path) -> tuple[bool, dict[str, Any] | None]:
    cmd = ["checkov", "--skip-download", "--quiet", "--compact", *args, "-o", "cli", "-o", "sarif"]
    cmd += ["--output-file-path", f"console,{out}"]
    if skips:
        cmd += ["--skip-check", ",".join(skips)]
    print(f"::group::checkov {label} (skips: {', '.join(skips) or 'none'})", flush=True)
    done = subprocess.run(cmd, cwd=ROOT, check=False)
    print("::endgroup::", flush=True)
    if done.returncode not in (0, 1):
        print(f"::error::checkov {label} failed to run (exit {done.returncode})")
        return False, None
    if done.returncode == 1:
        print(f"::error::checkov {label}: findings not listed in deploy/scan-skips/")
    # with two outputs checkov writes the SARIF to the given path itself; with one, into it as a folder
    sarif = out if out.is_file() else out / "results_sarif.sarif"
    return done.returncode == 0, json.loads(sarif.read_text()) if sarif.is_file() else None


def trivy(label: str, args: list[str], skips: list[str], tmp: Path) -> tuple[bool, dict[str, Any] | None]:
    ignore = tmp / f"trivyignore-{len(list(tmp.iterdir()))}"
    ignore.write_text("".join(f"{s}\n" for s in skips))
    sarif = tmp / f"{ignore.name}.sarif"
    base = ["trivy", "config", "--skip-check-update", "--quiet", "--ignorefile", str(ignore)]
    base += ["--severity", "MEDIUM,HIGH,CRITICAL"]
    print(f"::group::trivy config {label} (skips: {', '.join(skips) or 'none'})", flush=True)
    report = subprocess.run([*base, "--format", "sarif", "--output", str(sarif), *args], cwd=ROOT, check=False)
    table = subprocess.run([*base, "--exit-code", "1", *args], cwd=ROOT, check=False)
    print("::endgroup::", flush=True)
    if report.returncode != 0 or table.returncode not in (0, 1):
        print(f"::error::trivy config {label} failed to run")
        return False, None
    if table.returncode == 1:
        print(f"::error::trivy config {label}: findings not listed in deploy/scan-skips/")
    return table.returncode == 0, json.loads(sarif.read_text()) if sarif.is_file() else None


def _fix_uri(uri: str) -> str:
    """checkov doubles the scanned folder in SARIF paths (deploy/x/deploy/x/f.yaml): keep the path that exists."""
    parts = uri.split("/")
    for cut in range(1, len(parts)):
        if parts[:cut] == parts[cut : 2 * cut] and (ROOT / "/".join(parts[cut:])).exists():
            return "/".join(parts[cut:])
    return uri


def merge(reports: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One SARIF run per scanner (code scanning takes one run per tool and category)."""
    runs = [run for report in reports for run in report.get("runs", [])]
    if not runs:
        return None
    merged = json.loads(json.dumps(runs[0]))
    rules: dict[str, Any] = {}
    results: list[Any] = []
    for run in runs:
        for rule in run["tool"]["driver"].get("rules") or []:
            rules.setdefault(rule["id"], rule)
        for result in run.get("results") or []:
            for loc in result.get("locations") or []:
                art = loc.get("physicalLocation", {}).get("artifactLocation", {})
                if "uri" in art:
                    art["uri"] = _fix_uri(art["uri"])
            results.append(result)
    merged["tool"]["driver"]["rules"] = list(rules.values())
    merged["results"] = results
    merged.pop("artifacts", None)  # indexes into per-run artifact lists would no longer match
    for result in results:
        for loc in result.get("locations") or []:
            loc.get("physicalLocation", {}).get("artifactLocation", {}).pop("index", None)
    return {"version": "2.1.0", "$schema": reports[0].get("$schema", ""), "runs": [merged]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sarif-dir", type=Path, default=ROOT)
    opts = parser.parse_args()
    names = {a.name for a in AREAS}
    orphans = sorted(p.stem for p in SKIPS.glob("*.yaml") if p.stem not in names)
    if orphans:
        print(f"::error::skip files with no area in deploy/scripts/scan_areas.py: {orphans}")
        return 1
    ok = True
    found: dict[str, list[dict[str, Any]]] = {"checkov": [], "trivy": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        jobs: list[tuple[str, str, list[str], list[str]]] = []  # scanner, label, args, skips
        for area in AREAS:
            present = [d for d in area.dirs if (ROOT / d).is_dir()]
            if not present:
                continue
            if area.name == "helm":
                for env in ENVS:
                    var = f"{CHART}/values-{env}.yaml"
                    jobs.append(("checkov", f"helm ({env})", ["--framework", "helm", "-d", CHART, "--var-file", var],
                                 skip_ids("helm", "checkov")))  # fmt: skip
                    jobs.append(("trivy", f"helm ({env})", ["--helm-values", var, CHART], skip_ids("helm", "trivy")))
                continue
            dirs = [a for d in present for a in ("-d", d)]
            jobs.append(
                ("checkov", area.name, [*dirs, "--framework", *area.frameworks], skip_ids(area.name, "checkov"))
            )
            for d in present:
                jobs.append(("trivy", f"{area.name} ({d})", [d], skip_ids(area.name, "trivy")))
        inside = [d for area in AREAS for d in area.dirs]
        rest = ["-d", "deploy", *[a for d in inside for a in ("--skip-path", d)], "--framework", *REST_FRAMEWORKS]
        jobs.append(("checkov", "the rest of deploy/ (no skips)", rest, []))
        skipped = [a for d in [*TRIVY_ALWAYS_SKIPPED, *inside] for a in ("--skip-dirs", d)]
        jobs.append(("trivy", "the rest of the repository (no skips)", [*skipped, "."], []))
        for i, (scanner, label, args, skips) in enumerate(jobs):
            if scanner == "checkov":
                passed, report = checkov(label, args, skips, tmp / f"checkov-{i}")
            else:
                passed, report = trivy(label, args, skips, tmp)
            ok = ok and passed
            if report:
                found[scanner].append(report)
    opts.sarif_dir.mkdir(parents=True, exist_ok=True)
    for scanner, reports in found.items():
        merged = merge(reports)
        if merged:
            (opts.sarif_dir / f"{scanner}.sarif").write_text(json.dumps(merged))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
