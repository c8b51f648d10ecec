"""The CI/CD definitions: the workflow is valid (check-jsonschema's vendored GitHub workflow schema),
pins every action by commit, runs with least privilege in concurrency groups, and has the same
stages as the Jenkinsfile."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import yaml

from tests.support import chart

WORKFLOW = chart.ROOT / ".github" / "workflows" / "ci-cd.yaml"
STAGES = ["lint", "test", "image", "staging", "production"]


def _workflow() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return workflow


def test_the_workflow_matches_the_github_schema() -> None:
    tool = chart.ROOT / ".venv" / "bin" / "check-jsonschema"
    proc = subprocess.run([str(tool), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_action_is_pinned_by_commit() -> None:
    uses = [step["uses"] for job in _workflow()["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref


def test_least_privilege_and_concurrency() -> None:
    wf = _workflow()
    assert wf["permissions"] == {"contents": "read"}
    assert "group" in wf["concurrency"]
    writers = {name for name, job in wf["jobs"].items() if "write" in str(job.get("permissions", {}))}
    assert writers == {"image"}  # only the image job may push (packages: write)
    for name in ("staging", "production"):
        assert wf["jobs"][name]["concurrency"]["cancel-in-progress"] is False  # never cut a deploy short
    assert wf["jobs"]["production"]["environment"] == "production"  # its required reviewers approve


def test_stages_and_rollback_match_the_jenkinsfile() -> None:
    wf = _workflow()
    assert list(wf["jobs"]) == STAGES
    jenkins = (chart.ROOT / "Jenkinsfile").read_text()
    assert re.findall(r"stage\('([\w-]+)'\)", jenkins) == ["lint", "test", "image", "staging", "approval",
                                                            "production"]
    for text in (WORKFLOW.read_text(), jenkins):
        assert text.count("--atomic") == 2
        assert text.count("helm rollback mes-edge 0") + text.count("$HELM rollback mes-edge 0") == 2
        assert text.count("scripts/staging-smoke.sh") == 2
