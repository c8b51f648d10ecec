"""What clients saw in a window of time, from the request journal (:mod:`loadtests.chaos.journal`).

A request belongs to the window in which it *started* (answer time minus latency). Per user
class (the first word of the request name: partner, operator, crm): requests, real failures by
status, shed answers (429/503 *with* ``Retry-After``: the documented "come back later") apart,
p95 latency. Status 0 = no answer (connection error, timeout).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHED = frozenset({429, 503})
CLASSES = ("partner", "operator", "crm")


@dataclass(frozen=True)
class Request:
    """One journal line."""

    start: float
    end: float
    name: str
    status: int
    ok: bool
    retry_after: bool
    ident: str | None

    @property
    def user_class(self) -> str:
        return self.name.split(" ", 1)[0]

    @property
    def shed(self) -> bool:
        """A 429/503 that told the client when to come back: load shedding, not a failure."""
        return not self.ok and self.status in SHED and self.retry_after

    @property
    def failed(self) -> bool:
        return not self.ok and not self.shed


def read_journal(*paths: Path) -> list[Request]:
    out = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue  # a line cut by a killed writer
            out.append(Request(start=d["t"] - d["ms"] / 1000, end=d["t"], name=d["n"], status=int(d["s"]),
                               ok=bool(d["ok"]), retry_after=bool(d.get("ra")), ident=d.get("id")))
    return sorted(out, key=lambda r: r.start)


def p95(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class ClassFigures:
    requests: int = 0
    failures: Counter[int] = field(default_factory=Counter)  # status → real failures
    shed: Counter[int] = field(default_factory=Counter)      # status → 429/503 with Retry-After
    p95_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "failures": {str(k): v for k, v in sorted(self.failures.items())},
                "shed": {str(k): v for k, v in sorted(self.shed.items())}, "p95_ms": self.p95_ms}


def window(requests: Iterable[Request], start: float, end: float) -> dict[str, ClassFigures]:
    """Figures per user class for requests started in ``[start, end)``."""
    out = {c: ClassFigures() for c in CLASSES}
    latencies: dict[str, list[float]] = {c: [] for c in CLASSES}
    for r in requests:
        if not start <= r.start < end or r.user_class not in out:
            continue
        f = out[r.user_class]
        f.requests += 1
        latencies[r.user_class].append((r.end - r.start) * 1000)
        if r.shed:
            f.shed[r.status] += 1
        elif r.failed:
            f.failures[r.status] += 1
    for c in CLASSES:
        value = p95(latencies[c])
        out[c].p95_ms = None if value is None else round(value, 1)
    return out


def recovery_seconds(requests: Sequence[Request], heal: float, end: float, *,
                     clean: float = 5.0) -> float | None:
    """Seconds from ``heal`` until service resumed: the end of the last non-OK answer (503 shed
    included) before the first ``clean`` seconds without one.

    A 429 with ``Retry-After`` is a partner over its quota — the steady mix answers some even
    without a fault (the baseline's own shed column), so it never marks the service as not yet
    recovered; it stays in the shed column. 0 when the first ``clean`` seconds after the heal
    are already clean; None when no such stretch begins before the window ends (not recovered
    within the window). Sporadic errors later in the window still count in the window's
    errors, not in the recovery time.
    """
    bad = sorted(r.end for r in requests if heal <= r.start < end and not r.ok and not _quota(r))
    cursor = heal
    for t in bad:
        if t - cursor >= clean:
            break
        cursor = max(cursor, t)
    if end - cursor < clean:
        return None
    return round(cursor - heal, 1)


def _quota(r: Request) -> bool:
    return r.shed and r.status == 429


def slowest_ms(requests: Iterable[Request], start: float, end: float) -> float:
    """The longest request started in the window (a hang shows here)."""
    return round(max(((r.end - r.start) * 1000 for r in requests if start <= r.start < end), default=0.0), 1)
