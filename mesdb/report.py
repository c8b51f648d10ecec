"""Text and JSON renderings of what the kit measured (``--json`` prints the dataclasses as they are)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from mesdb.analyse import Analysis
from mesdb.measure import Effect
from mesdb.mover import MoveReport
from mesdb.plans import PlanSummary
from mesdb.tuning import ChangeResult


def as_json(value: Any) -> str:
    """Any of the kit's results as JSON (dataclasses become objects)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {k: plain(x) for k, x in dataclasses.asdict(v).items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return json.dumps(plain(value), indent=2, default=str)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} ms"


def plan_line(p: PlanSummary, cold_share: float | None = None) -> str:
    """One plan in one line: time, cost, buffers, rows examined (cold), shape."""
    cold = p.cold_rows_examined if cold_share is None else int(p.rows_examined * cold_share)
    mark = "" if cold_share is None else "~"
    timing = _ms(p.execution_ms) if p.analyzed else f"not run ({p.not_run_because})"
    return (
        f"{timing}, cost {p.total_cost:,.0f}, buffers {p.shared_hit:,} hit/{p.shared_read:,} read, "
        f"rows examined {p.rows_examined:,} ({mark}{cold:,} cold) — {p.shape}"
    )


def render_analysis(a: Analysis) -> str:
    total = a.hot_rows + a.archivable_rows
    cold_share = None if a.split_done else (a.archivable_rows / total if total else 0.0)
    out = [
        f"PostgreSQL {a.server_version}; statements from {a.statements_source}; "
        f"plan_cache_mode = {a.plan_cache_mode}",
        f"orders: {a.hot_rows:,} hot, {a.archivable_rows:,} archivable (CLOSED/CANCELLED > "
        f"{a.archive_age_days:g} days{' , still in the hot table' if a.split_done else ''}); "
        f"split: {'yes' if a.split_done else 'no'}",
        "",
        "tables:",
    ]
    out += [
        f"  {t.name}: {t.rows:,} rows, table {t.table_bytes / 2**20:,.1f} MiB, indexes "
        f"{t.indexes_bytes / 2**20:,.1f} MiB, seq scans {t.seq_scans:,} ({t.seq_rows_read:,} rows read), "
        f"index scans {t.index_scans:,}, dead rows {t.dead_rows:,}"
        for t in a.tables
    ]
    out += ["", "indexes:"]
    out += [
        f"  {i.name} ({i.table}): {i.bytes / 2**20:,.2f} MiB, {i.scans:,} scans"
        f"{'' if i.valid else ' — INVALID'}"
        for i in a.indexes
    ]
    out += ["", "statements (cold = archivable rows; ~ = estimated from the table's share before the split):"]
    for s in a.statements:
        stats = (
            "" if s.calls is None else f" — {s.calls:,} calls, mean {_ms(s.mean_ms)}, total {_ms(s.total_ms)}"
        )
        query = " ".join(s.query.split())
        out.append(f"  {query[:200]}{' …' if len(query) > 200 else ''}{stats}")
        for v in s.variants:
            out.append(f"    [{v.label or 'as is'}] generic: {plan_line(v.generic, cold_share)}")
            out.append(f"    [{v.label or 'as is'}] custom:  {plan_line(v.custom, cold_share)}")
    out += ["", "the kit would:"] + [f"  - {p}" for p in a.proposals or ["nothing: all in place"]]
    return "\n".join(out)


def effect_line(e: Effect) -> str:
    """One targeted call without and with one change."""
    return (
        f"{e.label}: {_ms(e.before.execution_ms)} → {_ms(e.after.execution_ms)} ({e.compared}); rows "
        f"examined {e.before.rows_examined:,} → {e.after.rows_examined:,}; now {e.after.shape}"
    )


def render_changes(results: list[ChangeResult]) -> str:
    out: list[str] = []
    for r in results:
        out.append(f"{r.outcome:>9}  {r.name}: {r.why}")
        out += [f"           {effect_line(e)}" for e in r.effects]
    return "\n".join(out) if out else "nothing to do"


def render_move(r: MoveReport) -> str:
    return f"{r.direction}: {r.rows:,} orders in {r.batches} verified batches, {r.seconds:.1f} s"
