"""Before/after figures: the legacy's list, count and order-history statements, every filter path,
each under a generic and a custom plan (``EXPLAIN (ANALYZE, BUFFERS)``)."""

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


def measure(conn: psycopg.Connection) -> list[Measurement]:
    """Every measured call on the database as it is now."""
    found: list[Measurement] = []
    for name, query in MEASURED:
        for variant in variants(conn, query, parameter_types(conn, query)):
            label = f"{name} {variant.label}".strip()
            found.append(
                Measurement(
                    label,
                    explain(conn, query, variant.values, mode="generic"),
                    explain(conn, query, variant.values, mode="custom"),
                )
            )
    return found


def serving(measurements: list[Measurement], prefixes: tuple[str, ...]) -> list[Measurement]:
    """The measurements whose label starts with one of ``prefixes``."""
    return [m for m in measurements if m.label.startswith(prefixes)]
