"""The capacity model as data: the limited resources, how their usage is measured, their capacity.

One source for everything that speaks about capacity: the recording and alerting rules
(:mod:`telemetry.capacity_rules` renders ``prometheus/rules/capacity.yml``), the forecast command
(``python -m telemetry forecast``), the Grafana dashboard and its console page
(``grafana/build_dashboards.py``). Each :class:`Resource` names a PromQL expression giving its
usage as one number (the busiest instance when the capacity is per instance) in the unit of
its capacity; the measured capacities live in ``prometheus/capacity.yml`` (written by
``python -m loadtests.capacity``, each figure with the run it came from). docs/capacity.md
explains the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CAPACITY_FILE = REPO / "prometheus" / "capacity.yml"
KINDS = ("throughput", "storage")  # throughput: a rate the platform serves; storage: what accumulates
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True, kw_only=True)
class Resource:
    """One limited resource: ``usage`` is PromQL giving one series in ``unit``."""

    name: str  # the bounded ``resource`` label value
    title: str
    kind: str  # one of KINDS
    unit: str  # as people read it: "req/s", "busy slots", "rows", "bytes"
    grafana_unit: str  # the dashboard's unit for the same figure
    usage: str
    per: str  # what one capacity figure covers ("one MES instance (the busiest)")

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"resource name {self.name!r}: lower snake case, at most 40 characters")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {KINDS}")


#: Every resource the platform plans capacity for. Redis operations/s and the log/metrics stores'
#: disks are not here: nothing in the platform exports them yet (docs/capacity.md, "Not modelled").
RESOURCES: tuple[Resource, ...] = (
    Resource(
        name="gateway_rps", title="Gateway requests/s", kind="throughput", unit="req/s", grafana_unit="reqps",
        usage="max(sum by (instance) (rate(gateway_requests_total[5m])))",
        per="one gateway instance (all its worker processes; the busiest instance)"),
    Resource(
        name="mes_rps", title="MES requests/s per instance", kind="throughput", unit="req/s",
        grafana_unit="reqps",
        usage='max(sum by (legacy_instance) '
              '(rate(sidecar_request_duration_seconds_count{kind="mes", route!="/healthz"}[5m])))',
        per="one MES instance (the busiest), every call through its sidecar: lists, orders, pricing"),
    Resource(
        name="mes_pricing_slots", title="MES price calculations running", kind="throughput",
        unit="busy slots", grafana_unit="short",
        usage="max(max_over_time(pricing_calculations_in_progress[5m]))",
        per="one MES instance (the busiest): concurrent synchronous price calculations"),
    Resource(
        name="pricing_pool_slots", title="Pricing workers busy", kind="throughput", unit="busy slots",
        grafana_unit="short",
        usage="sum(avg_over_time(pricing_worker_jobs_in_flight[5m]))",
        per="the whole pricing worker pool (jobs running; throughput = slots / calculation time)"),
    Resource(
        name="mes_orders_rows", title="Orders in the MES orders table", kind="storage", unit="rows",
        grafana_unit="short",
        usage="sum(max by (status) (orders_by_status))",
        per="the MES database's hot table (orders; archived rows are in orders_archive)"),
    Resource(
        name="mes_database_bytes", title="MES database size", kind="storage", unit="bytes",
        grafana_unit="bytes", usage="max(mes_database_size_bytes)",
        per="the MES database on its disk (pg_database_size, read by the probing sidecar)"),
)
BY_NAME = {r.name: r for r in RESOURCES}


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """The measured (or provisioned) capacity of one resource and where the figure came from."""

    resource: str
    value: float
    source: str  # the run: command and date, or "provisioned: …"
    method: str  # how the figure follows from the run

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "method": self.method}


def load_capacities(path: Path = CAPACITY_FILE) -> dict[str, Capacity]:
    """The capacity file: every resource of :data:`RESOURCES` once, a positive value, its source."""
    doc = yaml.safe_load(path.read_text())
    entries = doc.get("capacities") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: a mapping 'capacities: {{resource: {{value, source, method}}}}' expected")
    unknown = set(entries) - set(BY_NAME)
    missing = set(BY_NAME) - set(entries)
    if unknown or missing:
        raise ValueError(f"{path}: unknown resources {sorted(unknown)}, missing {sorted(missing)}")
    out = {}
    for name, entry in entries.items():
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{path}: capacities.{name}.value: a positive number expected")
        for key in ("source", "method"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ValueError(f"{path}: capacities.{name}.{key}: text expected (where it came from)")
        out[name] = Capacity(resource=name, value=float(value), source=entry["source"],
                             method=entry["method"])
    return out


HEADER = """\
# Measured capacities of the resources of telemetry/capacity_model.py, one figure each with the
# run it came from. `python -m loadtests.capacity` rewrites the entries it measures and
# prometheus/rules/capacity.yml from them; after editing a figure by hand (a hardware change,
# a new bench), run `python -m telemetry capacity-rules`. docs/capacity.md explains the model.
"""


def write_capacities(capacities: dict[str, Capacity], path: Path = CAPACITY_FILE) -> None:
    """Write the capacity file, resources in :data:`RESOURCES` order."""
    body = {"capacities": {r.name: capacities[r.name].as_dict() for r in RESOURCES if r.name in capacities}}
    path.write_text(HEADER + yaml.safe_dump(body, sort_keys=False, width=100, allow_unicode=True))
