"""Before/after figures: the legacy's list, count and order-history statements, every filter path,
each under a generic and a custom plan (``EXPLAIN (ANALYZE, BUFFERS)``).

Each change is measured alone, on the statements it targets: an index just before and just after
its own build (custom plans: what the legacy runs once ``plan_cache_mode`` is set), the setting as
the generic plan the legacy's pooled statements end up with against the custom plan it forces.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from mesdb import legacy
from mesdb.params import variants
from mesdb.plans import PlanSummary, explain, parameter_types

MEASURED = (("list", legacy.LIST), ("count", legacy.COUNT), ("order history", legacy.HISTORY_OF_ORDER))


@dataclass(frozen=True, slots=True)
class Measurement:
    """One legacy call (statement + which filter) planned both ways."""

    label: str
    generic: PlanSummary
    custom: PlanSummary


@dataclass(frozen=True, slots=True)
class Effect:
    """One targeted call, without and with one change."""

    label: str
    compared: str  # what before/after are: "custom plan, without → with" or "generic → custom plan"
    before: PlanSummary
    after: PlanSummary


def measure(conn: psycopg.Connection, prefixes: tuple[str, ...] | None = None) -> list[Measurement]:
    """The measured calls (those whose label starts with one of ``prefixes``; all when ``None``) on
    the database as it is now."""
    found: list[Measurement] = []
    for name, query in MEASURED:
        for variant in variants(conn, query, parameter_types(conn, query)):
            label = f"{name} {variant.label}".strip()
            if prefixes is not None and not label.startswith(prefixes):
                continue
            found.append(
                Measurement(
                    label,
                    explain(conn, query, variant.values, mode="generic"),
                    explain(conn, query, variant.values, mode="custom"),
                )
            )
    return found


def index_effects(before: list[Measurement], after: list[Measurement]) -> list[Effect]:
    """One index's effect: its targeted calls just before and just after its build (custom plans)."""
    built = {m.label: m for m in after}
    return [
        Effect(b.label, "custom plan, without → with this index", b.custom, built[b.label].custom)
        for b in before
        if b.label in built
    ]


def setting_effects(measured: list[Measurement]) -> list[Effect]:
    """``plan_cache_mode = force_custom_plan``'s effect: the generic plan the legacy's pooled
    prepared statements switch to (``auto``, after five executions) against the custom plan."""
    return [Effect(m.label, "generic → custom plan", m.generic, m.custom) for m in measured]
