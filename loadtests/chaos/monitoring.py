"""Detection: the platform's own Prometheus, its clock compressed, and a poller of its alerts.

The shipped rules wait minutes (``for: 5m``, ``rate(…[5m])``) — right for production, longer
than a fault window here. :func:`compress_prometheus` rewrites the running Prometheus's
config: scrape and evaluate every second, and every rule's ``for:`` and every range ``[…]`` in its
expressions divided by ``factor`` (floor 5 s for both: a range keeps a few samples, a ``for:``
still ignores a blip). An alert's
time to fire in the report is therefore measured on the compressed clock; multiplied by the
factor it is the production figure. What does not scale: thresholds on ``increase(…)`` over a
shortened window are ``factor`` times harder to reach (the report says so).

:class:`AlertPoller` asks ``/api/v1/alerts`` every second and keeps each alert's firing
episodes (name, severity, labels, first and last time seen firing).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

import yaml

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_RANGE = re.compile(r"\[((?:\d+(?:ms|s|m|h|d|w|y))+)(:(?:(?:\d+(?:ms|s|m|h|d|w|y))+)?)?\]")


def seconds(text: str) -> float:
    """A Prometheus duration (``1h30m``) in seconds."""
    return sum(int(n) * _UNIT[u] for n, u in _DURATION.findall(text))


def _duration(value: float) -> str:
    return f"{max(round(value), 1)}s"


def compress_expr(expr: str, factor: int, *, floor: float = 5.0) -> str:
    """Every range selector (and subquery range) of ``expr`` divided by ``factor``."""
    def scaled(m: re.Match[str]) -> str:
        rng = _duration(max(seconds(m.group(1)) / factor, floor))
        step = m.group(2) or ""
        if step not in ("", ":"):
            step = ":" + _duration(max(seconds(step[1:]) / factor, 1.0))
        return f"[{rng}{step}]"
    return _RANGE.sub(scaled, expr)


def compress_rules(doc: dict[str, Any], factor: int) -> dict[str, Any]:
    """A rule file with every ``for:`` and range divided by ``factor``; evaluated every second."""
    for group in doc.get("groups", []):
        group["interval"] = "1s"
        for rule in group.get("rules", []):
            rule["expr"] = compress_expr(str(rule["expr"]), factor)
            if "for" in rule:  # floor 5 s: a blip of a second or two is not what `for:` is about
                rule["for"] = _duration(max(seconds(str(rule["for"])) / factor, 5.0))
            if "keep_firing_for" in rule:
                rule["keep_firing_for"] = _duration(seconds(str(rule["keep_firing_for"])) / factor)
    return doc


#: Rule files left out of the compressed Prometheus: the capacity forecasts extrapolate days of
#: history (``predict_linear`` over 6 h-7 d) to a horizon of days; compressed, they would read a
#: load test's minutes of growth as weeks and fire on the run itself. They are tested on 60 days of
#: backfilled history instead (tests/stack/test_capacity_forecast.py, docs/capacity.md).
NOT_COMPRESSIBLE = frozenset({"capacity.yml"})


def compressible(rule_file: str) -> bool:
    """Whether a rule file still means something on a clock ``factor`` times faster."""
    return Path(rule_file).name not in NOT_COMPRESSIBLE


def compress_prometheus(config_path: Path, port: int, *, factor: int, timeout: float = 30.0) -> None:
    """Rewrite the running Prometheus's config (1 s scrapes, compressed rules) and reload it."""
    cfg = yaml.safe_load(config_path.read_text())
    cfg["global"] = {**cfg.get("global", {}), "scrape_interval": "1s", "scrape_timeout": "1s",
                     "evaluation_interval": "1s"}
    out = config_path.parent / "rules-compressed"
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for pattern in cfg.get("rule_files", []):
        for name in filter(compressible, sorted(glob(pattern))):
            doc = compress_rules(yaml.safe_load(Path(name).read_text()), factor)
            target = out / Path(name).name
            target.write_text(yaml.safe_dump(doc, sort_keys=False))
            files.append(str(target))
    cfg["rule_files"] = files
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    request = urllib.request.Request(f"http://127.0.0.1:{port}/-/reload", method="POST")
    with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 (loopback)
        pass


@dataclass
class Episode:
    """One stretch of time an alert was seen firing."""

    name: str
    severity: str
    labels: dict[str, str]
    first: float
    last: float
    open: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "severity": self.severity, "labels": self.labels, "first": self.first,
                "last": self.last, "open": self.open}


@dataclass
class AlertPoller:
    """Polls Prometheus's alerts every ``interval`` s in a thread; keeps firing episodes."""

    port: int
    interval: float = 1.0
    episodes: list[Episode] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> AlertPoller:
        self._thread = threading.Thread(target=self._run, name="alert-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def firing(self) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/alerts"
        with urllib.request.urlopen(url, timeout=2) as resp:
            alerts = json.load(resp)["data"]["alerts"]
        return [a for a in alerts if a.get("state") == "firing"]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = time.time()
            try:
                firing = self.firing()
            except (OSError, ValueError, KeyError):
                self.errors += 1  # Prometheus down (the monitoring fault) or restarting
                continue
            seen = set()
            for alert in firing:
                labels = {str(k): str(v) for k, v in alert.get("labels", {}).items()}
                key = json.dumps(labels, sort_keys=True)
                seen.add(key)
                episode = next((e for e in self.episodes
                                if e.open and json.dumps(e.labels, sort_keys=True) == key), None)
                if episode is None:
                    self.episodes.append(Episode(name=labels.get("alertname", "?"),
                                                 severity=labels.get("severity", ""), labels=labels,
                                                 first=now, last=now))
                else:
                    episode.last = now
            for episode in self.episodes:
                if episode.open and json.dumps(episode.labels, sort_keys=True) not in seen:
                    episode.open = False
