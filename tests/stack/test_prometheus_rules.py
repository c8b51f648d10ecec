"""Prometheus config, alert rules and their promtool unit tests; Alertmanager routing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack.stack_support import INSTALL_HINT, PROMETHEUS, REPO, RULES, alert_rules

SEVERITIES = {"page", "ticket"}
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*_test.yml"))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(INSTALL_HINT)
    return path


def _run(*argv: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.docker.yml"])
def test_promtool_accepts_the_config_and_its_rule_files(config: str) -> None:
    done = _run(_tool("promtool"), "check", "config", config)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_every_rule_file() -> None:
    done = _run(_tool("promtool"), "check", "rules", *map(str, sorted(RULES.glob("*.yml"))))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    done = _run(_tool("promtool"), "test", "rules", *map(str, UNIT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_local_and_compose_configs_scrape_the_same_jobs_with_the_same_rules() -> None:
    local, docker = (
        yaml.safe_load((PROMETHEUS / f).read_text()) for f in ("prometheus.yml", "prometheus.docker.yml")
    )
    assert [j["job_name"] for j in local["scrape_configs"]] == [
        j["job_name"] for j in docker["scrape_configs"]
    ]
    assert local["rule_files"] == docker["rule_files"]
    for job in local["scrape_configs"]:  # a target label `kind`/`instance` would clash with the metrics' own
        for static in job.get("static_configs", []):
            assert not {"kind", "legacy_instance", "instance"} & set(static.get("labels", {}))


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_every_alert_has_severity_service_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    assert rule["labels"]["service"]
    annotations = rule["annotations"]
    assert annotations["summary"]
    assert annotations["description"]
    assert annotations["runbook_url"].endswith(f"docs/runbooks/{rule['alert']}.md")
    runbook = REPO / "docs" / "runbooks" / f"{rule['alert']}.md"
    text = runbook.read_text()
    for section in ("## What it means", "## Confirm", "## Fix"):
        assert section in text, f"{runbook.name} lacks {section!r}"
    assert "order-journey" in text


def _alert_tests() -> dict[str, dict[str, int]]:
    """alertname → {"fires": n, "quiet": n} over every promtool unit test file."""
    seen: dict[str, dict[str, int]] = {}
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                counts = seen.setdefault(case["alertname"], {"fires": 0, "quiet": 0})
                counts["fires" if case.get("exp_alerts") else "quiet"] += 1
    return seen


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_stays_quiet() -> None:
    seen = _alert_tests()
    for name in {r["alert"] for r in alert_rules()}:
        assert seen.get(name, {}).get("fires"), f"{name}: no promtool test where it fires"
        assert seen.get(name, {}).get("quiet"), f"{name}: no promtool test where it stays quiet"


def test_every_runbook_belongs_to_an_alert() -> None:
    runbooks = {p.stem for p in (REPO / "docs" / "runbooks").glob("*.md")} - {"README"}
    assert runbooks == {r["alert"] for r in alert_rules()}


# ---------------------------------------------------------------- Alertmanager

ALERTMANAGER = PROMETHEUS / "alertmanager.yml"


def test_amtool_accepts_the_alertmanager_config() -> None:
    done = _run(_tool("amtool"), "check-config", str(ALERTMANAGER))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=page", "service=gateway", "alertname=GatewayClusterNoHealthyEndpoint"], "page"),
        (["severity=ticket", "service=orders", "alertname=OrdersStuck"], "ticket"),
        (["service=unknown", "alertname=Whatever"], "ticket"),
    ],
)
def test_alerts_are_routed_by_severity(labels: list[str], receiver: str) -> None:
    done = _run(_tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [receiver]


def _alert_names(matchers: list[str]) -> set[str]:
    """Alert names an `alertname="X"` or `alertname=~"X|Y"` matcher selects."""
    names: set[str] = set()
    for matcher in matchers:
        key, _, value = matcher.partition("=")
        if key.strip() == "alertname":
            names.update(value.lstrip("~").strip('"').split("|"))
    return names


#: Labels an alert's series carry from its expression (`by (...)` / the gauge's own labels).
EXPRESSION_LABELS = {
    "GatewayClusterNoHealthyEndpoint": {"cluster"},
    "GatewayUpstreamErrorRateHigh": {"cluster"},
    "GatewayUpstreamEndpointUnhealthy": {"cluster", "endpoint"},
    "GatewayUpstreamEndpointEjected": {"cluster", "endpoint"},
}


def test_inhibitions_name_real_alerts_that_share_the_equal_labels() -> None:
    """Source and target alerts must all carry every `equal` label, or nothing is ever inhibited."""
    config = yaml.safe_load(ALERTMANAGER.read_text())
    rules = alert_rules()
    known = {r["alert"] for r in rules}
    for inhibit in config["inhibit_rules"]:
        names = _alert_names(inhibit["source_matchers"]) | _alert_names(inhibit["target_matchers"])
        assert names <= known, f"inhibit rule names unknown alerts {names - known}"
        for rule in (r for r in rules if r["alert"] in names):
            carried = set(rule["labels"]) | EXPRESSION_LABELS.get(rule["alert"], set())
            assert set(inhibit.get("equal", [])) <= carried, rule["alert"]
    assert config["route"]["group_by"] == ["service", "alertname"]
    assert all("service" in r["labels"] for r in rules)
