"""The chaos run's results: raw JSON (``reports/chaos-<time>.json``) and ``docs/resilience.md``.

The markdown is generated whole — the method text comes from ``resilience_howto.md`` beside this
module, the table and settings from the run — so figures and prose never drift apart.
"""

from __future__ import annotations

import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.chaos import figures
from loadtests.chaos.figures import CLASSES, Request
from loadtests.chaos.ledger import Accepted, Findings, attribute
from loadtests.chaos.monitoring import Episode

HOW_TO = Path(__file__).resolve().parent / "resilience_howto.md"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class WindowInput:
    name: str
    what: str
    inject: float
    heal: float
    end: float
    notes: dict[str, Any]
    detect: tuple[str, ...] = ()
    no_alert: str = ""


@dataclass(frozen=True)
class Result:
    generated: str
    command: str
    settings: dict[str, Any]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    baseline: tuple[float, float]
    load_end: float
    windows: list[WindowInput]
    requests: list[Request]
    accepted: Accepted
    findings: Findings
    episodes: list[Episode]
    locust_tail: str


def _segments(result: Result) -> list[tuple[str, float, float]]:
    first = result.windows[0].inject if result.windows else result.load_end
    segs = [("probe", 0.0, result.baseline[0] - 5.0), ("baseline", result.baseline[0] - 5.0, first)]
    segs += [(w.name, w.inject, w.end) for w in result.windows]
    segs.append(("after the matrix", result.windows[-1].end if result.windows else first, float("inf")))
    return segs


def _losses(result: Result) -> dict[str, Counter[str]]:
    """Per segment: lost and duplicated items of each kind."""
    f, a, segs = result.findings, result.accepted, _segments(result)
    created = {name: t for name, _n, t in f.order_copies}
    return {
        "crm_lost": attribute(a.crm, f.crm_lost, segs),
        "crm_unrecorded": attribute(a.crm, f.crm_unrecorded, segs),
        "crm_status_not_delivered": attribute(a.crm, f.crm_status_not_delivered, segs),
        "crm_dead_lettered": attribute(a.crm, f.crm_dead_lettered, segs),
        "crm_duplicates": attribute(a.crm, f.crm_duplicates, segs),
        "orders_lost": attribute(a.orders, f.orders_lost, segs),
        "order_copies": attribute(created, list(created), segs),
        "quotes_lost": attribute(a.quotes, f.quotes_lost + f.quotes_failed_without_reason, segs),
        "quotes_unfinished": attribute(a.quotes, f.quotes_unfinished, segs),
        "quotes_dead_lettered": attribute(a.quotes, f.quotes_dead_lettered, segs),
        "quotes_completed_twice": attribute(a.quotes, f.quotes_completed_twice, segs),
        "webhook_conflicts": attribute(a.quotes, f.webhook_conflicts, segs),
    }


def _accepted_counts(result: Result) -> dict[str, Counter[str]]:
    a, segs = result.accepted, _segments(result)
    return {"crm": attribute(a.crm, list(a.crm), segs), "orders": attribute(a.orders, list(a.orders), segs),
            "quotes": attribute(a.quotes, list(a.quotes), segs)}


def _alerts(result: Result, start: float, end: float, heal: float) -> list[dict[str, Any]]:
    out = []
    for e in result.episodes:
        if start <= e.first < end:
            out.append({"name": e.name, "severity": e.severity, "fired_after_s": round(e.first - start, 1),
                        "resolved": not e.open, "resolved_after_heal_s": None if e.open else
                        round(max(e.last - heal, 0.0), 1), "labels": e.labels})
    return out


def _detected(alerts: list[dict[str, Any]], detect: tuple[str, ...]) -> dict[str, Any] | None:
    """The first of the expected alerts to fire in the window, if any did."""
    hits = sorted((a for a in alerts if a["name"] in detect), key=lambda a: a["fired_after_s"])
    return hits[0] if hits else None


def _row(result: Result, w: WindowInput, losses: dict[str, Counter[str]],
         accepted: dict[str, Counter[str]]) -> dict[str, Any]:
    alerts = _alerts(result, w.inject, w.end, w.heal)
    during = figures.window(result.requests, w.inject, w.heal)
    after = figures.window(result.requests, w.heal, w.end)
    lost = sum(losses[k][w.name] for k in ("crm_lost", "crm_unrecorded", "orders_lost", "quotes_lost",
                                           "quotes_unfinished"))
    dups = sum(losses[k][w.name] for k in ("crm_duplicates", "order_copies", "quotes_completed_twice",
                                           "webhook_conflicts"))
    return {"fault": w.name, "what": w.what, "inject": w.inject, "heal": w.heal, "end": w.end,
            "notes": w.notes,
            "during": {c: f.as_dict() for c, f in during.items()},
            "after": {c: f.as_dict() for c, f in after.items()},
            "recovery_s": figures.recovery_seconds(result.requests, w.heal, w.end),
            "slowest_ms": figures.slowest_ms(result.requests, w.inject, w.end),
            "accepted": {k: v[w.name] for k, v in accepted.items()},
            "losses": {k: v[w.name] for k, v in losses.items()},
            "lost": lost, "duplicates": dups, "alerts": alerts, "detect": list(w.detect),
            "no_alert": w.no_alert, "detected": _detected(alerts, w.detect)}


def as_json(result: Result) -> dict[str, Any]:
    losses, accepted = _losses(result), _accepted_counts(result)
    rows = [_row(result, w, losses, accepted) for w in result.windows]
    base = figures.window(result.requests, *result.baseline)
    span = max(result.baseline[1] - result.baseline[0], 1.0)
    other = ["probe", "baseline", "after the matrix", "(outside the windows)"]
    outside_lost = sum(losses[k][s] for s in other for k in ("crm_lost", "crm_unrecorded", "orders_lost",
                                                                "quotes_lost", "quotes_unfinished"))
    outside_dups = sum(losses[k][s] for s in other for k in ("crm_duplicates", "order_copies",
                                                               "quotes_completed_twice", "webhook_conflicts"))
    return {
        "generated": result.generated, "command": result.command, "settings": result.settings,
        "load_before": result.load_before, "load_after": result.load_after,
        "baseline": {"figures": {c: f.as_dict() for c, f in base.items()},
                     "rps": round(sum(f.requests for f in base.values()) / span, 1),
                     "alerts": _alerts(result, result.baseline[0] - 5.0, result.windows[0].inject
                                       if result.windows else result.load_end, result.baseline[0])},
        "rows": rows,
        "outside_windows": {"lost": outside_lost, "duplicates": outside_dups,
                            "losses": {k: dict(v) for k, v in losses.items()}},
        "accepted_total": {"crm": len(result.accepted.crm), "orders": len(result.accepted.orders),
                           "quotes": len(result.accepted.quotes)},
        "findings": result.findings.as_dict(),
        "totals": {"lost": sum(r["lost"] for r in rows) + outside_lost,
                   "duplicates": sum(r["duplicates"] for r in rows) + outside_dups},
        "alert_episodes": [e.as_dict() for e in result.episodes],
        "locust_tail": result.locust_tail,
    }


def _errors(row: dict[str, Any]) -> str:
    parts, shed = [], 0
    for c in CLASSES:
        fails: Counter[str] = Counter()
        for phase in ("during", "after"):
            fails.update(row[phase][c]["failures"])
            shed += sum(row[phase][c]["shed"].values())
        if fails:
            parts.append(f"{c[0]} " + " ".join(f"{s}x{n}" for s, n in sorted(fails.items())))
    text = "; ".join(parts) or "0"
    return f"{text} (shed {shed})" if shed else text


def _p95(row: dict[str, Any]) -> str:
    def one(phase: str) -> str:
        return "/".join("-" if row[phase][c]["p95_ms"] is None else f"{row[phase][c]['p95_ms']:.0f}"
                        for c in CLASSES)
    return f"{one('during')} → {one('after')}"


def _alert_cell(row: dict[str, Any]) -> str:
    """The expected alert and its time to fire (or that it did not fire), then the others' names."""
    hit = row["detected"]
    if hit is not None:
        resolved = (f"resolved {hit['resolved_after_heal_s']:.0f} s after heal" if hit["resolved"]
                    else "still firing at the end")
        cell = f"**{hit['name']}** ({hit['severity']}) +{hit['fired_after_s']:.0f} s, {resolved}"
    elif row["detect"]:
        cell = "**none of " + ", ".join(row["detect"]) + " fired** (finding)"
    else:
        cell = "none expected (see notes)"
    others = sorted({a["name"] for a in row["alerts"]} - ({hit["name"]} if hit else set()))
    return cell + (f"; also: {', '.join(others)}" if others else "")


def table(data: dict[str, Any]) -> str:
    """The one table: a row per fault."""
    lines = ["| fault | client errors (class status x count; shed = 429/503 + Retry-After) "
             "| p95 ms partner/operator/crm, during → after | recovery s | lost | duplicates "
             "| expected alert (severity) + time to fire; other alerts |",
             "|---|---|---|--:|--:|--:|---|"]
    for row in data["rows"]:
        rec = "not within window" if row["recovery_s"] is None else f"{row['recovery_s']:.0f}"
        lines.append(f"| `{row['fault']}` | {_errors(row)} | {_p95(row)} | {rec} | {row['lost']} "
                     f"| {row['duplicates']} | {_alert_cell(row)} |")
    return "\n".join(lines)


def _settings(data: dict[str, Any]) -> str:
    s, acc, out = data["settings"], data["accepted_total"], data["outside_windows"]
    lb, la = data["load_before"], data["load_after"]
    return (
        f"Generated {data['generated']} by `{data['command'].strip()}`. Capacity probe: {s['probe_users']} "
        f"users closed-loop for {s['probe_seconds']:.0f} s → **{s['capacity_rps']} req/s**; measured run: "
        f"{s['users']} users at think times x{s['think_scale']} aiming at {s['load_fraction']:.0%} of it, "
        f"baseline achieved **{data['baseline']['rps']} req/s**. Fault held {s['fault_seconds']:.0f} s, "
        f"watched {s['after_seconds']:.0f} s after heal; MES price delay {s['price_delay']} s; alert "
        f"clock compressed x{s['compression']}; drain {s['drained_seconds']} s. Machine: {s['cpus']} CPUs "
        f"shared with other agents, load average {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f} before, "
        f"{la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f} after. Accepted during the run: {acc['crm']} CRM orders, "
        f"{acc['orders']} partner orders, {acc['quotes']} quotes; lost outside the fault windows: "
        f"{out['lost']}, duplicated: {out['duplicates']}.")


def _notes(data: dict[str, Any]) -> str:
    lines = []
    for row in data["rows"]:
        bits = [f"{k}={v}" for k, v in row["notes"].items()]
        bits += [f"{k} {v}" for k, v in row["losses"].items() if v]
        bits.append(f"slowest request {row['slowest_ms']:.0f} ms")
        if row["no_alert"]:
            bits.append(f"no alert expected: {row['no_alert']}")
        lines.append(f"- `{row['fault']}` — {row['what']}. " + "; ".join(bits) + ".")
    return "\n".join(lines)


def render(data: dict[str, Any], *, json_path: Path) -> str:
    """``docs/resilience.md`` from a run's raw results (``--render`` redoes it from the JSON)."""
    try:
        raw = json_path.resolve().relative_to(ROOT)
    except ValueError:
        raw = json_path
    return string.Template(HOW_TO.read_text()).safe_substitute(
        settings=_settings(data), table=table(data), notes=_notes(data), json=str(raw))
