"""Usage as partners and operators read it: a bounded range of UTC days, rows with every kind."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from gateway.errors import RequestInvalid
from gateway.usage.store import UsageStore
from sharedstate.usage_counts import KINDS, days_between

FIELDS = ("partner_id", "date", *KINDS)


def parse_range(first: str | None, last: str | None, *, max_days: int, today: dt.date | None = None
                ) -> tuple[dt.date, dt.date]:
    """``from``/``to`` (``YYYY-MM-DD``, UTC days, both included) → dates; every problem listed at once
    as ``invalid_params``, 422 like every document violation (missing, not a date, range not allowed)."""
    params: list[dict[str, str]] = []
    dates: dict[str, dt.date] = {}
    for name, value in (("from", first), ("to", last)):
        if not value:
            params.append(_param(name, "is required"))
            continue
        try:
            dates[name] = dt.date.fromisoformat(value) if len(value) == 10 else _bad()
        except ValueError:
            params.append(_param(name, "must be a date, YYYY-MM-DD"))
    if params:
        raise RequestInvalid("; ".join(f"{p['name']} {p['reason']}" for p in params), params=params,
                             malformed=False, path_only=False)
    start, end = dates["from"], dates["to"]
    if end < start:
        params.append(_param("to", "must not be before from"))
    elif (end - start).days + 1 > max_days:
        params.append(_param("to", f"the range must be at most {max_days} days"))
    if params:
        raise RequestInvalid(params[0]["reason"], params=params, malformed=False, path_only=False)
    return start, end


def _bad() -> dt.date:
    raise ValueError("not YYYY-MM-DD")


def _param(name: str, reason: str) -> dict[str, str]:
    return {"name": name, "in": "query", "pointer": f"/{name}", "reason": reason}


def _row(counts: dict[str, int]) -> dict[str, int]:
    return {k: counts.get(k, 0) for k in KINDS}


async def partner_days(store: UsageStore, partner: str, first: dt.date, last: dt.date
                       ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One partner's rows (every day of the range, zeros included) and totals."""
    days = days_between(first, last)
    counts = await store.read(partner, days)
    per_day = [_row(counts.get(d, {})) for d in days]
    totals = {k: sum(r[k] for r in per_day) for k in KINDS}
    return [{"date": d, **r} for d, r in zip(days, per_day, strict=True)], totals


async def export_rows(store: UsageStore, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """Every partner's non-empty days of the range, ordered by partner then day."""
    days = days_between(first, last)
    partners = await store.partners(days)
    rows: list[dict[str, Any]] = []
    for partner in sorted({p for ps in partners.values() for p in ps}):
        counts = await store.read(partner, [d for d in days if partner in partners[d]])
        rows.extend({"partner_id": partner, "date": d, **_row(c)} for d, c in sorted(counts.items()))
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
