"""Locust event hooks: status tally, request budget, and the verdict that sets the exit code.

* ``request``: counts answers per request name and status (0 = no answer: connection error or
  timeout) — Locust keeps no status codes for successes, and the thresholds need 429/503 apart;
  stops the run when ``$LOADTEST_MAX_REQUESTS`` requests were sent (a hard bound on top of the
  shape's duration; an exhausted budget fails the run).
* ``quitting``: evaluates ``thresholds.yaml`` on the run's figures, prints a short summary,
  writes ``$LOADTEST_SUMMARY_JSON`` when set, and sets ``environment.process_exit_code``: 1 when a
  criterion is not met or a scenario raised an exception, else 0 (failed requests such as shed
  503s are judged by the thresholds, not by Locust's any-failure rule).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.event import EventHook
from locust.stats import StatsEntry

from loadtests import thresholds
from loadtests.settings import SCENARIOS, settings
from loadtests.thresholds import SHED_STATUSES, EndpointResult

log = logging.getLogger("loadtests")
SUMMARY_MARK, SUMMARY_END = "=== load test summary ===", "=== end of summary ==="

#: request name -> status -> count (0 = no HTTP answer; pseudo-requests are not counted here)
tally: defaultdict[str, Counter[int]] = defaultdict(Counter)
_state: dict[str, Any] = {"sent": 0, "budget_exhausted": False, "started": time.time()}


def _count(name: str, response: Any = None, **_kwargs: Any) -> None:
    if response is not None:
        tally[name][int(getattr(response, "status_code", 0) or 0)] += 1
    _state["sent"] += 1
    if _state["sent"] == settings().max_requests + 1:
        _state["budget_exhausted"] = True
        log.error("request budget of %d exhausted: stopping the run", settings().max_requests)
        env = _state.get("environment")
        if env is not None and env.runner is not None:
            gevent.spawn(env.runner.quit)


def _keep_environment(environment: Environment, **_kwargs: Any) -> None:
    _state["environment"] = environment


def endpoint_result(entry: StatsEntry) -> EndpointResult:
    """One Locust statistics entry as an :class:`EndpointResult` (failures without 429/503)."""
    shed = sum(n for status, n in tally[entry.name].items() if status in SHED_STATUSES)
    has = entry.num_requests > 0
    return EndpointResult(
        name=entry.name, requests=entry.num_requests, failures=max(entry.num_failures - shed, 0), shed=shed,
        p50_ms=float(entry.get_response_time_percentile(0.5)) if has else 0.0,
        p95_ms=float(entry.get_response_time_percentile(0.95)) if has else 0.0,
        rps=round(float(entry.total_rps), 3))


def active_scenarios() -> list[str]:
    """Scenarios meant to run: weight > 0 and, if set, listed in ``$LOADTEST_SCENARIOS``."""
    wanted = [s for s in os.environ.get("LOADTEST_SCENARIOS", ",".join(SCENARIOS)).split(",") if s]
    return [s for s in SCENARIOS if s in wanted and settings().users[s].weight > 0]


def summary_text(results: list[EndpointResult], checks: list[thresholds.Check], ok: bool) -> str:
    """The short table printed at the end of a run."""
    lines = [f"{'endpoint':<40}{'reqs':>8}{'fail':>7}{'429/503':>9}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>8}"]
    lines += [f"{r.name:<40}{r.requests:>8}{r.failures:>7}{r.shed:>9}{r.p50_ms:>9.0f}{r.p95_ms:>9.0f}"
              f"{r.rps:>8.2f}" for r in results]
    statuses = {name: dict(sorted(c.items())) for name, c in sorted(tally.items()) if c}
    lines.append(f"statuses: {json.dumps(statuses)}")
    lines += [c.line() for c in checks]
    if _state["budget_exhausted"]:
        lines.append(f"FAIL  request budget ($LOADTEST_MAX_REQUESTS={settings().max_requests}) exhausted")
    lines.append(f"VERDICT {'PASS' if ok else 'FAIL'} ({settings().targets.mode}, "
                 f"shape {os.environ.get('LOADTEST_SHAPE', 'normal')})")
    return "\n".join(lines)


def _verdict(environment: Environment, **_kwargs: Any) -> None:
    entries = sorted(environment.stats.entries.values(), key=lambda e: e.name)
    results = [endpoint_result(e) for e in entries]
    checks = thresholds.evaluate(results, thresholds.load(), scenarios=active_scenarios())
    ok = thresholds.passed(checks) and not _state["budget_exhausted"]
    print(f"\n{SUMMARY_MARK}\n{summary_text(results, checks, ok)}\n{SUMMARY_END}", flush=True)
    if path := os.environ.get("LOADTEST_SUMMARY_JSON"):
        cfg = settings()
        shape = os.environ.get("LOADTEST_SHAPE", "normal")
        Path(path).write_text(json.dumps({
            "target": cfg.targets.mode, "shape": shape, "peak_users": cfg.shapes.peak_users(shape),
            "started": _state["started"], "ended": time.time(), "passed": ok,
            "budget_exhausted": _state["budget_exhausted"],
            "endpoints": [r.as_dict() for r in results],
            "statuses": {name: {str(k): v for k, v in c.items()} for name, c in tally.items()},
            "checks": [c.__dict__ for c in checks]}, indent=2))
    runner = environment.runner
    if not ok or (runner is not None and runner.exceptions):
        environment.process_exit_code = 1  # a threshold failed, or a scenario raised (a load-test bug)
    else:
        # Locust alone would exit 1 on any failed request, 503s included; thresholds.yaml is the
        # judge here (shed 429/503 answers have their own share limit)
        environment.process_exit_code = 0


def _listen(hook: EventHook, handler: Callable[..., None]) -> None:
    hook.add_listener(handler)  # type: ignore[no-untyped-call]  # EventHook.add_listener has no hints


_listen(events.request, _count)
_listen(events.init, _keep_environment)
_listen(events.quitting, _verdict)
