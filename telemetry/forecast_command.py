"""``python -m telemetry forecast``: per resource, usage, headroom, growth and the capacity crossing.

Reads Prometheus's HTTP API only (the series of ``prometheus/rules/capacity.yml``): every
resource with a ``capacity:limit`` series, its live ``capacity:usage``, how far back that usage
goes, and the last week of its weekly peak, then :func:`telemetry.forecast.forecast`. Exit code:
0 nothing crosses within ``--horizon``; 1 something does (or is over its capacity already) —
low-confidence crossings count only with ``--strict``; 2 Prometheus could not answer or has no
capacity series.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from telemetry.capacity_model import BY_NAME
from telemetry.capacity_rules import TREND_WINDOW
from telemetry.forecast import DAY, STEADY_WEEKS, WEEK, Forecast, forecast

DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"
HISTORY_DAYS = 35  # how far back the history length is looked for ("≥ 35 days" beyond)
PEAK_STEP = 900  # s between the weekly-peak points of the fit
assert TREND_WINDOW == "1w"  # the fit below covers one week, like the alerts' predict_linear


Points = list[tuple[float, float]]


class PrometheusError(RuntimeError):
    """Prometheus did not answer, or answered with an error."""


class Prometheus:
    """The two query endpoints of the HTTP API, loopback or not, with a bounded timeout."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310 (operator's URL)
                body = json.load(resp)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PrometheusError(f"{self.url}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{self.url}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]["result"]

    def instant(self, query: str, at: float) -> dict[str, float]:
        """``resource`` label → value."""
        return {r["metric"].get("resource", ""): float(r["value"][1])
                for r in self._get("/api/v1/query", {"query": query, "time": str(at)})}

    def label(self, query: str, at: float, name: str) -> dict[str, str]:
        """``resource`` label → the value of label ``name``."""
        return {r["metric"].get("resource", ""): r["metric"].get(name, "")
                for r in self._get("/api/v1/query", {"query": query, "time": str(at)})}

    def series(self, query: str, start: float, end: float, step: float) -> dict[str, Points]:
        """``resource`` label → points."""
        params = {"query": query, "start": str(start), "end": str(end), "step": str(step)}
        return {r["metric"].get("resource", ""): [(float(t), float(v)) for t, v in r["values"]]
                for r in self._get("/api/v1/query_range", params)}


def collect(prom: Prometheus, now: float) -> list[Forecast]:
    """A forecast for every resource that has a capacity in Prometheus, in the model's order first."""
    limits = prom.instant("capacity:limit", now)
    sources = prom.label("capacity:limit", now, "limit_source")
    usage = prom.instant("capacity:usage", now)
    history = prom.series("capacity:usage", now - HISTORY_DAYS * DAY, now, 3600)
    peaks = prom.series("capacity:usage:p99_1w", now - STEADY_WEEKS * WEEK, now, PEAK_STEP)
    names = [n for n in BY_NAME if n in limits] + sorted(set(limits) - set(BY_NAME))
    out = []
    for name in names:
        points = history.get(name, [])
        days = max(now - points[0][0], 0.0) / DAY if points else 0.0
        found = forecast(name, capacity=limits[name], usage=usage.get(name), peak_points=peaks.get(name, []),
                         history_days=days, now=now)
        out.append(replace(found, capacity_source=sources.get(name, "")))
    return out


def _date(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    if ts <= now:
        return "now"
    return f"{datetime.fromtimestamp(ts, UTC):%Y-%m-%d} (in {(ts - now) / DAY:.0f} d)"


def _day(ts: float | None) -> str:
    return "never" if ts is None else f"{datetime.fromtimestamp(ts, UTC):%Y-%m-%d}"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def render_text(forecasts: list[Forecast], now: float, horizon_days: float) -> str:
    header = ("resource", "unit", "usage now", "weekly peak", "capacity", "capacity from", "headroom",
              "growth/week", "reaches capacity", "range (±2 se)", "confidence")
    rows = [header]
    for f in forecasts:
        unit = BY_NAME[f.resource].unit if f.resource in BY_NAME else ""
        headroom = "-" if f.headroom is None else f"{f.headroom:.0%}"
        growth = "-" if f.growth_per_week is None else f"{f.growth_per_week:+.3g}"
        span = ("-" if f.crossing is None or f.crossing <= now else
                f"{_day(f.crossing_earliest)} … {_day(f.crossing_latest)}")
        rows.append((f.resource, unit, _number(f.usage), _number(f.peak), _number(f.capacity),
                     f.capacity_source or "-", headroom, growth, _date(f.crossing, now), span,
                     "ok" if f.confident else "LOW"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("")
    lines.append(f"at {datetime.fromtimestamp(now, UTC):%Y-%m-%d %H:%M} UTC; horizon {horizon_days:g} days; "
                 "weekly peak = 99th percentile of a week of usage, its trend = a line through the last week")
    lines.append("capacity from: measured (a run), provisioned (set by the operator), live (PromQL: a disk's "
                 "size, a retention limit)")
    for f in forecasts:
        lines += [f"{f.resource}: low confidence: {note}" for note in f.notes]
    return "\n".join(lines) + "\n"


def as_json(forecasts: list[Forecast], now: float) -> list[dict[str, Any]]:
    def iso(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")

    return [{"resource": f.resource, "unit": BY_NAME[f.resource].unit if f.resource in BY_NAME else None,
             "usage": f.usage, "weekly_peak": f.peak, "capacity": f.capacity,
             "capacity_source": f.capacity_source or None, "headroom_ratio": f.headroom,
             "growth_per_week": f.growth_per_week, "history_days": round(f.history_days, 2),
             "crossing": iso(f.crossing), "crossing_earliest": iso(f.crossing_earliest),
             "crossing_latest": iso(f.crossing_latest),
             "days_to_crossing": None if f.crossing is None else round(max(f.crossing - now, 0) / DAY, 2),
             "confident": f.confident, "notes": f.notes} for f in forecasts]


def crossing_within(forecasts: list[Forecast], now: float, horizon_days: float, *, strict: bool) -> list[str]:
    """Resources reaching their capacity within the horizon (confident ones unless ``strict``)."""
    return [f.resource for f in forecasts
            if f.crossing is not None and f.crossing - now <= horizon_days * DAY and (strict or f.confident)]


def run_forecast(url: str, *, horizon_days: float, as_json_output: bool, strict: bool,
                 now: float | None = None) -> int:
    """Print the forecast; the exit code (module docstring)."""
    now = time.time() if now is None else now
    try:
        forecasts = collect(Prometheus(url), now)
    except PrometheusError as exc:
        print(f"forecast: {exc}", file=sys.stderr)
        return 2
    if not forecasts:
        print(f"forecast: {url} has no capacity:limit series: load prometheus/rules/capacity.yml",
              file=sys.stderr)
        return 2
    if as_json_output:
        print(json.dumps({"at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
                          "horizon_days": horizon_days, "resources": as_json(forecasts, now)}, indent=2))
    else:
        print(render_text(forecasts, now, horizon_days), end="")
    crossing = crossing_within(forecasts, now, horizon_days, strict=strict)
    if crossing and not as_json_output:
        print(f"reaching capacity within {horizon_days:g} days: {', '.join(crossing)}")
    return 1 if crossing else 0
