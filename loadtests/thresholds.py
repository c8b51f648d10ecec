"""Pass/fail criteria (``thresholds.yaml``) and their evaluation on a run's figures.

Pure data in, verdicts out: :mod:`loadtests.hooks` feeds it Locust's live statistics at the end
of a run, :mod:`loadtests.capacity` the summaries of finished runs. No Locust import.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loadtests.settings import PACKAGE_DIR, SCENARIOS, SettingsError

DEFAULT_THRESHOLDS = PACKAGE_DIR / "thresholds.yaml"
SHED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, kw_only=True)
class ScenarioThresholds:
    """The criteria of one scenario."""

    max_failure_ratio: float
    max_shed_ratio: float
    min_requests: int
    p95_ms: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class EndpointResult:
    """What one endpoint (Locust request name) did in a run; ``shed`` = 429/503 answers."""

    name: str
    requests: int
    failures: int
    shed: int
    p50_ms: float
    p95_ms: float
    rps: float

    @property
    def scenario(self) -> str:
        """The scenario is the first word of the request name (``partner GET /orders``)."""
        return self.name.split(" ", 1)[0]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "requests": self.requests, "failures": self.failures, "shed": self.shed,
                "p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "rps": self.rps}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EndpointResult:
        return cls(name=str(data["name"]), requests=int(data["requests"]), failures=int(data["failures"]),
                   shed=int(data["shed"]), p50_ms=float(data["p50_ms"]), p95_ms=float(data["p95_ms"]),
                   rps=float(data["rps"]))


@dataclass(frozen=True, kw_only=True)
class Check:
    """One criterion checked: what, the measured value, the limit, pass or not."""

    scenario: str
    what: str
    value: float
    limit: float
    passed: bool

    def line(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        return f"{mark}  {self.scenario:<9} {self.what:<48} {self.value:>10.4g}  (limit {self.limit:g})"


def load(path: str | Path | None = None) -> dict[str, ScenarioThresholds]:
    """Read the thresholds file (``$LOADTEST_THRESHOLDS`` or ``thresholds.yaml``)."""
    path = Path(path or os.environ.get("LOADTEST_THRESHOLDS") or DEFAULT_THRESHOLDS)
    raw = yaml.safe_load(path.read_text())
    out = {}
    for scenario in SCENARIOS:
        try:
            s = raw["scenarios"][scenario]
            out[scenario] = ScenarioThresholds(
                max_failure_ratio=float(s["max_failure_ratio"]), max_shed_ratio=float(s["max_shed_ratio"]),
                min_requests=int(s.get("min_requests", 1)),
                p95_ms={str(k): float(v) for k, v in (s.get("p95_ms") or {}).items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsError(f"{path}: scenarios.{scenario}: {exc.__class__.__name__}: {exc}") from None
    return out


def evaluate(results: Iterable[EndpointResult], thresholds: Mapping[str, ScenarioThresholds],
             *, scenarios: Iterable[str] = SCENARIOS) -> list[Check]:
    """Every check of every scenario in ``scenarios`` (those that were meant to run)."""
    by_scenario: dict[str, list[EndpointResult]] = {s: [] for s in scenarios}
    for result in results:
        if result.scenario in by_scenario:
            by_scenario[result.scenario].append(result)
    checks: list[Check] = []
    for scenario, endpoints in by_scenario.items():
        limits = thresholds[scenario]
        requests = sum(e.requests for e in endpoints)
        failures = sum(e.failures for e in endpoints)
        shed = sum(e.shed for e in endpoints)
        checks.append(Check(scenario=scenario, what="requests", value=requests, limit=limits.min_requests,
                            passed=requests >= limits.min_requests))
        if requests:
            checks.append(Check(scenario=scenario, what="failure ratio (without 429/503)",
                                value=failures / requests, limit=limits.max_failure_ratio,
                                passed=failures / requests <= limits.max_failure_ratio))
            checks.append(Check(scenario=scenario, what="429/503 share", value=shed / requests,
                                limit=limits.max_shed_ratio, passed=shed / requests <= limits.max_shed_ratio))
        for endpoint in endpoints:
            limit = limits.p95_ms.get(endpoint.name)
            if limit is not None and endpoint.requests:
                checks.append(Check(scenario=scenario, what=f"p95 ms {endpoint.name}", value=endpoint.p95_ms,
                                    limit=limit, passed=endpoint.p95_ms <= limit))
    return checks


def passed(checks: Iterable[Check]) -> bool:
    """True when every check passed."""
    return all(c.passed for c in checks)
