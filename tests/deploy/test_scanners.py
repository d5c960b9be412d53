"""The security scanners over the whole deployment kit: checkov and ``trivy config``, against the reviewed skip files.

Every finding above LOW must be fixed or listed, with its reason, in one of ``deploy/scan-skips/*.yaml``; a listed
id that no longer fires is stale and fails too, so the skip list stays the list of accepted findings. Also yamllint
over every YAML file of the repository (``.yamllint.yaml``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY, ROOT, run, tool

SKIPS = DEPLOY / "scan-skips"
# The chart needs values to render (its secrets are required): tests/deploy/test_helm.py scans it once per
# environment with that environment's values, against deploy/scan-skips/helm.yaml (stale skips checked there).
CHART = "deploy/helm"
CHART_SKIPS = "helm.yaml"
# What checkov scans: the image, the chart (rendered by helm), Terraform, the workflows.
CHECKOV_DIRS = ["deploy", ".github"]
CHECKOV_FRAMEWORKS = ["dockerfile", "helm", "terraform", "github_actions", "kubernetes"]


def _skips(scanner: str, without: str = "") -> dict[str, str]:
    """{finding id: reason} for ``scanner`` ("checkov" or "trivy") over every skip file but ``without``."""
    found: dict[str, str] = {}
    for path in sorted(SKIPS.glob("*.yaml")):
        if path.name == without:
            continue
        doc = yaml.safe_load(path.read_text()) or {}
        assert isinstance(doc, dict), f"{path}: expected a mapping with keys checkov/trivy"
        for entry in doc.get(scanner) or []:
            assert isinstance(entry, dict) and entry.get("id"), f"{path}: every {scanner} skip needs an id"
            reason = str(entry.get("reason") or "").strip()
            assert len(reason) >= 20, f"{path}: skip {entry['id']} needs a real reason, got {reason!r}"
            found[str(entry["id"])] = reason
    return found


def test_every_skip_has_an_id_and_a_reason() -> None:
    assert SKIPS.is_dir(), "deploy/scan-skips/ holds the reviewed skip files"
    _skips("checkov")
    _skips("trivy")


def _checkov_failures() -> dict[str, list[str]]:
    exe = tool("checkov")
    tool("helm")  # checkov renders the chart with the helm on PATH
    dirs = [d for d in CHECKOV_DIRS if (ROOT / d).is_dir()]
    args = [exe, "--skip-download", "--quiet", "--compact", "-o", "json"]
    for d in dirs:
        args += ["-d", d]
    args += ["--skip-path", CHART, "--framework", *CHECKOV_FRAMEWORKS]
    with tempfile.TemporaryDirectory() as out:
        result = run([*args, "--output-file-path", out], timeout=900)
        assert result.returncode in (0, 1), f"checkov failed to run:\n{result.stderr[-3000:]}"
        reports: Any = json.loads((Path(out) / "results_json.json").read_text())
    if isinstance(reports, dict):
        reports = [reports]
    failures: dict[str, list[str]] = {}
    for report in reports:
        for check in (report.get("results") or {}).get("failed_checks", []):
            where = f"{check.get('file_path')}:{check.get('resource')}"
            failures.setdefault(check["check_id"], []).append(where)
    return failures


def _trivy_failures() -> dict[str, list[str]]:
    exe = tool("trivy")
    tool("helm")
    result = run(
        [
            exe,
            "config",
            "--skip-check-update",
            "--quiet",
            "--format",
            "json",
            "--severity",
            "MEDIUM,HIGH,CRITICAL",
            "--skip-dirs",
            ".deploy-tools",
            "--skip-dirs",
            ".venv",
            "--skip-dirs",
            "build",
            "--skip-dirs",
            "tests",
            "--skip-dirs",
            "src",
            ".",
        ],
        timeout=600,
    )
    assert result.returncode == 0, f"trivy config failed to run:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    failures: dict[str, list[str]] = {}
    for target in report.get("Results") or []:
        for finding in target.get("Misconfigurations") or []:
            if finding.get("Status") == "FAIL":
                failures.setdefault(finding["ID"], []).append(f"{target['Target']}: {finding.get('Title')}")
    return failures


@pytest.mark.parametrize("scanner", ["checkov", "trivy"])
def test_scanner_findings_are_fixed_or_listed_with_a_reason(scanner: str) -> None:
    failures = _checkov_failures() if scanner == "checkov" else _trivy_failures()
    skips = _skips(scanner, without=CHART_SKIPS)
    unlisted = {k: v for k, v in failures.items() if k not in skips}
    assert not unlisted, f"{scanner} findings not in deploy/scan-skips/*.yaml:\n" + "\n".join(
        f"{k}: {', '.join(sorted(set(v))[:5])}" for k, v in sorted(unlisted.items())
    )
    stale = sorted(set(skips) - set(failures))
    assert not stale, f"{scanner} skips that no longer fire (remove them from deploy/scan-skips/): {stale}"


def test_yamllint_passes_on_the_kits_yaml() -> None:
    result = run(
        [tool("yamllint"), "-c", str(ROOT / ".yamllint.yaml"), "--strict", "deploy", ".github", ".yamllint.yaml"]
    )
    assert result.returncode == 0, result.stdout[-5000:]


def test_no_private_key_or_token_is_committed() -> None:
    """A coarse guard beside checkov's secrets scan: no PEM private key or cloud access key under deploy/."""
    markers = ("-----BEGIN RSA PRIVATE KEY", "-----BEGIN PRIVATE KEY", "-----BEGIN EC PRIVATE KEY", "AKIA")
    offenders = [
        str(p.relative_to(ROOT))
        for p in [*DEPLOY.rglob("*"), *(ROOT / ".github").rglob("*")]
        if p.is_file() and any(m in p.read_text(errors="ignore") for m in markers)
    ]
    assert not offenders, f"secrets-like content committed: {offenders}"
