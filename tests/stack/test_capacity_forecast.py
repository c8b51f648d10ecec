"""The forecast and the capacity alerts against a real Prometheus holding 60 days of history.

The history (tests/stack/capacity_synthetic.py: linear, weekly seasonal, a step change, noisy
bursts, and only four days) is backfilled with ``promtool tsdb create-blocks-from openmetrics``;
a first Prometheus serves it so ``promtool tsdb create-blocks-from rules`` can record the weekly
peak and the capacities over the same 60 days (a recording rule only ever records from when it
is loaded); a second Prometheus, with the shipped trend and alert rules of
prometheus/rules/capacity.yml, answers ``python -m telemetry forecast`` and the alert
expressions evaluated over the whole history.

Tolerances (the daily peak is at 14:00 UTC, so the weekly peak lags the trend by up to a day;
on weekends the weekly shape's peak waits for Monday): forecast dates within 2 days (3 for the
weekly and the step shapes), the day an alert expression first holds within 1.5 days of the trend's
crossing minus 14 (or 3) days (3 days for the weekly shape). The history ends on the latest
Saturday 12:30 UTC (``history_end``), so every run reads the same series and gets the same
dates; measured on 2026-12-05: linear day 62.2 for 61, weekly 69.0 for 70, step 92.06 for 90
(the line through the week after the step leans late); alerts linear 48.25 (47) and 59.1 (58),
weekly 57.75 (56). (With the history ending at the time of the run the step's date moved with
the hour, 91 to 92.05.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.monitoring import start_prometheus, wait_ready
from devstack.ports import free_port
from devstack.process import ServerProcess
from telemetry import forecast_command
from telemetry.capacity_rules import CRITICAL_DAYS, RULES_FILE, WARNING_DAYS
from tests.stack.capacity_synthetic import CAPACITY, DAY, DAYS, SHAPES, STEP, openmetrics

pytestmark = pytest.mark.slow
BY_NAME = {s.name: s for s in SHAPES}
PEAK_RULE = "capacity:usage:p99_1w"
#: a few large blocks instead of one per 2 hours (720 here, 5 minutes to write on the shared box):
#: Debian's promtool 2.42 has the flag, hidden from --help
BLOCKS = ("--quiet", "--max-block-duration=1440h")
RECORDED_STEP = 1800  # s between the backfilled samples of the recording rules


#: The history ends on a Saturday at 12:30 UTC: the daily and weekly cycles are fixed to UTC, so
#: with an end at the time of the run the forecast dates moved with the time of day (step: day 91
#: to 92.05 for 90 in runs at different hours); now every run reads the same series.
END_AFTER_EPOCH = 2 * DAY + 12 * 3600 + 1800  # 1970-01-01 was a Thursday: +2 days is a Saturday
WEEK = 7 * DAY


def history_end(now: float) -> float:
    """The latest Saturday 12:30 UTC at least two samples before ``now``."""
    return ((now - 2 * STEP - END_AFTER_EPOCH) // WEEK) * WEEK + END_AFTER_EPOCH


@dataclass(frozen=True)
class History:
    url: str
    start: float  # day 0
    end: float  # day 60: "now" for the forecast

    def day(self, ts: float) -> float:
        return (ts - self.start) / DAY


def _run(*argv: str, timeout: float = 300) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv[:4])}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def _shipped_groups() -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in yaml.safe_load(RULES_FILE.read_text())["groups"]}


def _limits_group() -> dict[str, Any]:
    return {"name": "synthetic-limits", "rules": [
        {"record": "capacity:limit", "expr": f"vector({CAPACITY:g})",
         "labels": {"resource": s.resource, "kind": "throughput", "limit_source": "measured"}}
        for s in SHAPES]}


def _live_rules(root: Path) -> Path:
    """The synthetic capacities and every shipped rule that does not read real metrics."""
    groups = _shipped_groups()
    headroom = [r for r in groups["capacity-model"]["rules"]
                if not str(r.get("record")).startswith(("capacity:usage", "capacity:limit"))]
    live = root / "live.yml"
    live.write_text(yaml.safe_dump({"groups": [
        {**_limits_group(), "rules": _limits_group()["rules"] + headroom},
        groups["capacity-trends"], groups["capacity-forecast"]]}))
    return live


def _recorded(url: str, start: float, end: float) -> str:
    """The limits and the weekly peak over the history, as OpenMetrics: what the recording rules
    would have recorded, evaluated by the first Prometheus every 30 minutes.

    ``promtool tsdb create-blocks-from rules`` does the same, but writes one block per two hours
    (~700 here, minutes to write) and has no --max-block-duration, so the rules' expressions are sent
    to the same query API here and the result backfilled like the history.
    """
    prom = forecast_command.Prometheus(url, timeout=600)  # 60 days of weekly quantiles: slow on a busy box
    peak = next(r for r in _shipped_groups()["capacity-trends"]["rules"] if r.get("record") == PEAK_RULE)
    lines = [f"# TYPE {PEAK_RULE} gauge"]
    for resource, points in prom.series(str(peak["expr"]), start, end, RECORDED_STEP).items():
        labels = f'{{kind="throughput",resource="{resource}"}}'
        lines += [f"{PEAK_RULE}{labels} {v:.6g} {t:.0f}" for t, v in points]
    lines.append("# TYPE capacity:limit gauge")
    for shape in SHAPES:
        labels = f'{{kind="throughput",limit_source="measured",resource="{shape.resource}"}}'
        lines += [f"capacity:limit{labels} {CAPACITY:g} {t}"
                  for t in range(int(start), int(end) + 1, RECORDED_STEP)]
    return "\n".join([*lines, "# EOF"]) + "\n"


def _prometheus(root: Path, name: str, rule_file: Path | None) -> tuple[ServerProcess, str]:
    config = root / f"{name}.yml"
    config.write_text(yaml.safe_dump({"global": {"evaluation_interval": "15s"},
                                      "rule_files": [str(rule_file)] if rule_file else []}))
    port = free_port()
    proc = start_prometheus(root, port, config, retention="100d", log_path=root / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/-/ready", proc, timeout=120)
    except BaseException:
        proc.stop()
        raise
    return proc, url


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    promtool = shutil.which("promtool")
    if promtool is None or shutil.which("prometheus") is None:
        pytest.fail("promtool/prometheus missing: apt-get install -y prometheus (scripts/install-deps.sh)")
    import time

    root = tmp_path_factory.mktemp("capacity-history")
    end = history_end(time.time())
    start = end - DAYS * DAY
    source = root / "history.om"
    source.write_text(openmetrics(SHAPES, start))
    data = root / "prometheus"  # start_prometheus's TSDB folder
    _run(promtool, "tsdb", "create-blocks-from", "openmetrics", *BLOCKS, str(source), str(data))
    proc, url = _prometheus(root, "first", None)
    try:
        recorded = _recorded(url, start, end)
    finally:
        proc.stop()
    (root / "recorded.om").write_text(recorded)
    _run(promtool, "tsdb", "create-blocks-from", "openmetrics", *BLOCKS, str(root / "recorded.om"), str(data))
    live = _live_rules(root)
    proc, url = _prometheus(root, "second", live)
    try:
        yield History(url=url, start=start, end=end)
    finally:
        proc.stop()


def _forecasts(history: History, at: float | None = None) -> dict[str, dict[str, Any]]:
    prom = forecast_command.Prometheus(history.url, timeout=120)
    now = history.end if at is None else at
    rows = forecast_command.as_json(forecast_command.collect(prom, now), now)
    assert {r["capacity_source"] for r in rows} == {"measured"}  # capacity:limit's limit_source label
    return {str(r["resource"]).removeprefix("synthetic_"): r for r in rows}


def _expected(name: str) -> float:
    day = BY_NAME[name].crossing_day
    assert day is not None
    return day


def _crossing_day(row: dict[str, Any]) -> float:
    days = row["days_to_crossing"]
    assert isinstance(days, float | int), row
    return DAYS + days


@pytest.mark.parametrize(("name", "tolerance"), [("linear", 2.0), ("weekly", 3.0), ("step", 3.0)])
def test_forecast_gives_the_crossing_day_of_the_synthetic_trend(history: History, name: str,
                                                                tolerance: float) -> None:
    row = _forecasts(history)[name]
    assert row["confident"], row["notes"]
    assert abs(_crossing_day(row) - _expected(name)) <= tolerance, row


def test_forecast_refuses_confidence_on_noisy_bursts(history: History) -> None:
    row = _forecasts(history)["noisy"]
    assert not row["confident"]
    assert any("strays" in n for n in row["notes"]), row["notes"]


def test_forecast_refuses_confidence_on_four_days_of_history(history: History) -> None:
    row = _forecasts(history)["short"]
    assert not row["confident"]
    assert any("only 4" in n for n in row["notes"]), row["notes"]


def test_forecast_right_after_a_step_is_not_confident(history: History) -> None:
    """Three days after the step the last week's peak holds the jump: the line would be too steep."""
    row = _forecasts(history, at=history.start + 38 * DAY)["step"]
    assert not row["confident"], row


def test_forecast_command_exits_1_for_a_confident_crossing_within_the_horizon(
        history: History, capsys: pytest.CaptureFixture[str]) -> None:
    assert forecast_command.run_forecast(history.url, horizon_days=14, as_json_output=False, strict=False,
                                         now=history.end) == 1
    out = capsys.readouterr().out
    assert "reaching capacity within 14 days: synthetic_linear, synthetic_weekly" in out
    assert "synthetic_short: low confidence: only 4" in out
    assert "synthetic_noisy: low confidence: the weekly peak strays" in out
    # within a day nothing crosses (the linear shape does in ~2; the short one is not confident)
    assert forecast_command.run_forecast(history.url, horizon_days=1, as_json_output=True, strict=False,
                                         now=history.end) == 0
    document = json.loads(capsys.readouterr().out)
    assert {r["resource"] for r in document["resources"]} == {s.resource for s in SHAPES}


def _first_true_day(history: History, alert: str, resource: str) -> float | None:
    rule = next(r for r in _shipped_groups()["capacity-forecast"]["rules"] if r.get("alert") == alert)
    prom = forecast_command.Prometheus(history.url, timeout=120)
    series = prom.series(str(rule["expr"]), history.start + 7 * DAY, history.end, 3600)
    points = series.get(resource, [])
    return history.day(points[0][0]) if points else None


@pytest.mark.parametrize(("alert", "days_ahead"), [("CapacityExhaustionForecast", WARNING_DAYS),
                                                   ("CapacityExhaustionImminent", CRITICAL_DAYS)])
def test_alert_expressions_first_hold_when_the_trend_is_that_many_days_from_the_capacity(
        history: History, alert: str, days_ahead: int) -> None:
    linear = _first_true_day(history, alert, "synthetic_linear")
    assert linear is not None
    assert abs(linear - (_expected("linear") - days_ahead)) <= 1.5, linear
    if alert == "CapacityExhaustionForecast":
        weekly = _first_true_day(history, alert, "synthetic_weekly")
        assert weekly is not None
        assert abs(weekly - (_expected("weekly") - days_ahead)) <= 3.0, weekly


@pytest.mark.parametrize("shape", ["noisy", "short", "step"])
def test_alert_expressions_never_hold_for_bursts_a_short_history_or_a_step(history: History,
                                                                         shape: str) -> None:
    """The step: the week after it tilts the last week's line, but not the week before's."""
    for alert in ("CapacityExhaustionForecast", "CapacityExhaustionImminent"):
        assert _first_true_day(history, alert, f"synthetic_{shape}") is None, alert
