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
    """One limited resource: ``usage`` is PromQL giving one series in ``unit``.

    ``limit``, when set, is PromQL giving its capacity live (a disk: what its filesystem holds);
    the capacity file's figure for it, if any, is then the fallback used while that has no series.
    """

    name: str  # the bounded ``resource`` label value
    title: str
    kind: str  # one of KINDS
    unit: str  # as people read it: "req/s", "busy slots", "rows", "bytes"
    grafana_unit: str  # the dashboard's unit for the same figure
    usage: str
    per: str  # what one capacity figure covers ("one MES instance (the busiest)")
    limit: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"resource name {self.name!r}: lower snake case, at most 40 characters")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {KINDS}")


def store_filesystem(metric: str, store: str) -> str:
    """PromQL: ``metric`` (a node_filesystem_* gauge) of the filesystem holding ``store``.

    ``mes_edge_store_mountpoint_info`` names it (node_exporter's textfile collector, written by
    ``devstack/exporters.py`` in make run and ``prometheus/node-exporter/`` under compose); several
    stores may share one filesystem, and one filesystem may show under several devices.
    """
    return (f'max(mes_edge_store_mountpoint_info{{store="{store}"}} * on (instance, mountpoint) '
            f"group_left () max by (instance, mountpoint) ({metric}))")


_TSDB_BYTES = ("max((prometheus_tsdb_storage_blocks_bytes + prometheus_tsdb_wal_storage_size_bytes)"
               " or prometheus_tsdb_storage_blocks_bytes)")  # Prometheus 2.42 (Debian) has no WAL size
_ES_USED = "sum(elasticsearch_filesystem_data_size_bytes - elasticsearch_filesystem_data_available_bytes)"
#: Elasticsearch makes every index read-only at the flood-stage watermark, 95 % of the disk by default
_ES_FLOOD_STAGE = 0.95
_FS_USED = "node_filesystem_size_bytes - node_filesystem_avail_bytes"

#: Every resource the platform plans capacity for (docs/capacity.md, "The resources").
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
        name="redis_ops", title="Redis operations/s", kind="throughput", unit="ops/s", grafana_unit="ops",
        usage="max(rate(redis_commands_processed_total[5m]))",
        per="one Redis server (the busiest): every command of every database, as redis_exporter counts "
            "them (rate limits, cache, pricing queue, usage, events)"),
    Resource(
        name="mes_orders_rows", title="Orders in the MES orders table", kind="storage", unit="rows",
        grafana_unit="short",
        usage="sum(max by (status) (orders_by_status))",
        per="the MES database's hot table (orders; archived rows are in orders_archive)"),
    Resource(
        name="mes_database_bytes", title="MES database size", kind="storage", unit="bytes",
        grafana_unit="bytes", usage="max(mes_database_size_bytes)",
        limit="max(mes_database_size_bytes) + on () "
              + store_filesystem("node_filesystem_avail_bytes", "mes_database"),
        per="the MES database on its disk (pg_database_size, read by the probing sidecar); capacity: "
            "its size + the free bytes of the filesystem holding it (node_exporter), else the "
            "provisioned figure"),
    Resource(
        name="metrics_store_bytes", title="Metrics store (Prometheus TSDB)", kind="storage", unit="bytes",
        grafana_unit="bytes", usage=_TSDB_BYTES,
        limit=f"(max(prometheus_tsdb_retention_limit_bytes) > 0) or ({_TSDB_BYTES} + on () "
              + store_filesystem("node_filesystem_avail_bytes", "metrics") + ")",
        per="Prometheus's TSDB (blocks + WAL); capacity: its --storage.tsdb.retention.size when set "
            "(beyond it the oldest blocks go: retention shrinks), else its size + the free bytes of "
            "its filesystem"),
    Resource(
        name="log_store_bytes", title="Log store disk", kind="storage", unit="bytes", grafana_unit="bytes",
        usage=f"{_ES_USED} or " + store_filesystem(_FS_USED, "logs"),
        limit=f"{_ES_FLOOD_STAGE} * sum(elasticsearch_filesystem_data_size_bytes) or "
              + store_filesystem("node_filesystem_size_bytes", "logs"),
        per="Elasticsearch's data disks, all nodes (elasticsearch_exporter; capacity: the flood-stage "
            "watermark, 95 %); without Elasticsearch (make run) the filesystem of the log directory"),
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
        value = int(self.value) if self.value.is_integer() else self.value  # 5500, not 5500.0
        return {"value": value, "source": self.source, "method": self.method}

    @property
    def origin(self) -> str:
        """``provisioned`` (a figure someone set) or ``measured`` (a run): the ``limit_source`` label."""
        return "provisioned" if self.source.startswith("provisioned:") else "measured"


def load_capacities(path: Path = CAPACITY_FILE, *, complete: bool = True) -> dict[str, Capacity]:
    """The capacity file: every resource of :data:`RESOURCES` once (optional for a live ``limit``;
    ``complete=False``: a bench adding a resource's first figure), a positive value, its source."""
    doc = yaml.safe_load(path.read_text())
    entries = doc.get("capacities") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: a mapping 'capacities: {{resource: {{value, source, method}}}}' expected")
    unknown = set(entries) - set(BY_NAME)
    missing = {r.name for r in RESOURCES if r.limit is None} - set(entries) if complete else set()
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
