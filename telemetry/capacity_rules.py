# ruff: noqa: E501  (the YAML template below keeps the rule file's own lines)
"""Render ``prometheus/rules/capacity.yml`` from the capacity model and the capacity file.

``python -m telemetry capacity-rules`` writes it (``--check``: exit 1 when the checked-in file
differs). What is generated: one ``capacity:usage`` and one ``capacity:limit`` series per resource
(labels ``resource`` and ``kind``, nothing else: bounded); what is fixed, for every resource
alike: headroom, the weekly peak, its trend, the forecast and the alerts. The windows are
constants here because the forecast command must read the same series the alerts read.
"""

from __future__ import annotations

from pathlib import Path

from contracts.lifecycle import ACTIVE_STATUS_NAMES
from telemetry.capacity_model import CAPACITY_FILE, REPO, RESOURCES, Capacity, Resource, load_capacities

RULES_FILE = REPO / "prometheus" / "rules" / "capacity.yml"
#: the sustained peak: the 99th percentile of a week of usage. Bursts shorter than 1 % of a week
#: (100 minutes) never reach it; a busy hour that recurs every day (7 h a week) does.
PEAK_QUANTILE = 0.99
PEAK_WINDOW = "1w"
#: the trend of that peak: a least-squares line over one week (a whole weekly cycle)
TREND_WINDOW = "1w"
#: A forecast alert needs the line of the last week *and* the line of the week before to reach the
#: capacity by the same date (a jump of the weekly peak — a step, a long burst — tilts one week's
#: line, not two), and two weeks of history (a week for the peak, a week for its line).
HISTORY_GUARD = "2w"
WARNING_DAYS = 14
CRITICAL_DAYS = 3
#: the classic "disk full": the raw usage of a storage resource, a day's line, 4 days ahead
STORAGE_WINDOW = "1d"
STORAGE_DAYS = 4
#: ``StoreDiskFullSoon`` also needs the store's filesystem below this share free: a disk with room
#: to spare is a ticket for the capacity alerts, not a page
STORE_FREE_SHARE = 0.25
DAYS_SHOWN = 365  # capacity:forecast:days_to_limit is clamped to 0 … this (a year: "not in sight")


def _number(value: float) -> str:
    return f"{value:.12g}"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _series_rules(record: str, resource: Resource, expr: str, comment: str, source: str = "") -> str:
    extra = f", limit_source: {source}" if source else ""
    return (
        f"      # {comment}\n"
        f"      - record: {record}\n"
        f"        expr: {_quoted(expr)}\n"
        f"        labels: {{resource: {resource.name}, kind: {resource.kind}{extra}}}\n"
    )


def _limit_rules(resource: Resource, capacity: Capacity | None) -> str:
    """``capacity:limit``: live (``resource.limit``), the capacity file's figure, or both — the
    figure then only while the live one has no series; ``limit_source`` says which one it is."""
    rules = ""
    if resource.limit is not None:
        rules += _series_rules("capacity:limit", resource, resource.limit,
                               f"live: {resource.per}", "live")
    if capacity is not None:
        figure = f"vector({_number(capacity.value)})"
        if resource.limit is not None:
            figure += f" unless on () ({resource.limit})"
        comment = f"{_number(capacity.value)} {resource.unit}: {capacity.source}".replace("\n", " ")
        rules += _series_rules("capacity:limit", resource, figure, comment, capacity.origin)
    return rules


def _forecast_alert(name: str, days: int, *, limit: str, wait: str, severity: str, description: str) -> str:
    """A forecast alert: the last week's line and the week before's both reach the capacity."""
    return f"""\
      - alert: {name}
        expr: |
          predict_linear(capacity:usage:p99_1w[{TREND_WINDOW}], {days} * 86400)
            > on (resource, kind) {limit}
          and on (resource, kind)
          predict_linear(capacity:usage:p99_1w[{TREND_WINDOW}] offset {TREND_WINDOW}, ({days} + 7) * 86400)
            > on (resource, kind) capacity:limit
          and on (resource, kind) capacity:usage offset {HISTORY_GUARD}
        for: {wait}
        labels:
          severity: {severity}
          service: capacity
        annotations:
          summary: "{{{{ $labels.resource }}}}: capacity reached within {days} days at the current trend"
          description: "{description}"
          runbook_url: docs/runbooks/{name}.md

"""


FORECAST_ALERTS = _forecast_alert(
    "CapacityExhaustionForecast", WARNING_DAYS, limit="capacity:limit", wait="1h", severity="ticket",
    description="The weekly peak of {{ $labels.resource }} (capacity:usage:p99_1w), extrapolated along its "
                "one-week trend (and the week before's), reaches its measured capacity (capacity:limit) within "
                f"{WARNING_DAYS} days: {{{{ $value | humanize }}}} in {WARNING_DAYS} days. Run python -m telemetry "
                "forecast for the date and its confidence.",
) + _forecast_alert(
    "CapacityExhaustionImminent", CRITICAL_DAYS, limit='capacity:limit{kind="throughput"}', wait="30m",
    severity="page",
    description="The weekly peak of {{ $labels.resource }}, extrapolated along its one-week trend (and the week "
                f"before's), reaches its measured capacity within {CRITICAL_DAYS} days ({{{{ $value | humanize }}}} "
                f"in {CRITICAL_DAYS} days): add capacity or shed load before then.",
)


def render(resources: tuple[Resource, ...] = RESOURCES, capacities: dict[str, Capacity] | None = None) -> str:
    """The rule file's text (deterministic: the checked-in file must equal it)."""
    capacities = load_capacities() if capacities is None else capacities
    usage = "".join(_series_rules("capacity:usage", r, r.usage, f"{r.title} ({r.unit}), {r.per}")
                    for r in resources)
    limits = "".join(_limit_rules(r, capacities.get(r.name)) for r in resources)
    active = "|".join(ACTIVE_STATUS_NAMES)

    return f"""\
# Generated by `python -m telemetry capacity-rules` from telemetry/capacity_model.py (resources,
# usage) and prometheus/capacity.yml (measured capacities): edit those, not this file.
# The model, the windows and how to read the forecast: docs/capacity.md.
groups:
  - name: capacity-model
    rules:
{usage}{limits}\
      # live headroom: 1 - usage / capacity (below 0: over the measured capacity)
      - record: capacity:utilization:ratio
        expr: capacity:usage / on (resource, kind) capacity:limit
      - record: capacity:headroom:ratio
        expr: 1 - capacity:utilization:ratio

  - name: capacity-trends
    rules:
      # The sustained weekly peak: bursts under 1 % of a week (100 min) do not move it.
      - record: capacity:usage:p99_1w
        expr: quantile_over_time({PEAK_QUANTILE}, capacity:usage[{PEAK_WINDOW}])
      - record: capacity:usage:max_1d
        expr: max_over_time(capacity:usage[1d])
      # Least-squares slope of the weekly peak over a week, per week.
      - record: capacity:usage:growth_per_week
        expr: deriv(capacity:usage:p99_1w[{TREND_WINDOW}]) * 604800
      # Days until the weekly peak reaches the capacity on that line (0: there already;
      # {DAYS_SHOWN}: not within a year, or not growing); only with the alerts' two weeks of history.
      - record: capacity:forecast:days_to_limit
        expr: |
          clamp(
            (capacity:limit - on (resource, kind) capacity:usage:p99_1w)
              / on (resource, kind) clamp_min(capacity:usage:growth_per_week / 7, 1e-9),
            0, {DAYS_SHOWN})
          and on (resource, kind) capacity:usage offset {HISTORY_GUARD}
      # Growth of the order pipeline (docs/capacity.md, "Trends").
      - record: orders:created:per_day
        expr: avg_over_time(orders:new_per_minute:max[1d]) * 1440
      - record: orders:active
        expr: sum(max by (status) (orders_by_status{{status=~"{active}"}}))
      - record: orders:archived:per_day
        expr: sum(increase(mesdb_archiver_orders_moved_total[1d]))
      - record: orders:archived:rows
        expr: max(mes_orders_archive_rows)
      - record: mes:database_bytes:per_day
        expr: max(delta(mes_database_size_bytes[1d]))

  - name: capacity-disks
    rules:
      # The filesystem holding each store (node_exporter; mes_edge_store_mountpoint_info names it):
      # free bytes (what an unprivileged writer can still use) and size.
      - record: capacity:store_free_bytes
        expr: max by (store) (mes_edge_store_mountpoint_info * on (instance, mountpoint) group_left () max by (instance, mountpoint) (node_filesystem_avail_bytes))
      - record: capacity:store_size_bytes
        expr: max by (store) (mes_edge_store_mountpoint_info * on (instance, mountpoint) group_left () max by (instance, mountpoint) (node_filesystem_size_bytes))
      # Production's log store: Elasticsearch's data disks, all nodes (elasticsearch_exporter), up
      # to the flood-stage watermark (95 %: every index turns read-only there).
      - record: capacity:store_free_bytes
        expr: sum(elasticsearch_filesystem_data_available_bytes) - 0.05 * sum(elasticsearch_filesystem_data_size_bytes)
        labels: {{store: logs}}
      - record: capacity:store_size_bytes
        expr: 0.95 * sum(elasticsearch_filesystem_data_size_bytes)
        labels: {{store: logs}}

      # after its recording rules, in their group: it reads this evaluation's samples
      - alert: StoreDiskFullSoon
        expr: |
          predict_linear(capacity:store_free_bytes[{STORAGE_WINDOW}], {STORAGE_DAYS} * 86400) < 0
          and capacity:store_free_bytes / capacity:store_size_bytes < {STORE_FREE_SHARE}
        for: 1h
        labels:
          severity: page
          service: capacity
        annotations:
          summary: "The disk of the {{{{ $labels.store }}}} store is full within {STORAGE_DAYS} days at the last day's rate"
          description: "The filesystem holding the {{{{ $labels.store }}}} store has less than {STORE_FREE_SHARE:.0%} free and, at the rate of the last day (whatever writes to it), has none left within {STORAGE_DAYS} days ({{{{ $value | humanize1024 }}}}B predicted)."
          runbook_url: docs/runbooks/StoreDiskFullSoon.md

  - name: capacity-forecast
    rules:
{FORECAST_ALERTS}      - alert: CapacityStorageFullSoon
        expr: |
          predict_linear(capacity:usage{{kind="storage"}}[{STORAGE_WINDOW}], {STORAGE_DAYS} * 86400)
            > on (resource, kind) capacity:limit
          and on (resource, kind) capacity:usage / on (resource, kind) capacity:limit > 0.5
        for: 1h
        labels:
          severity: page
          service: capacity
        annotations:
          summary: "{{{{ $labels.resource }}}} full within {STORAGE_DAYS} days at the last day's rate"
          description: "{{{{ $labels.resource }}}} is above half of its capacity and, at the rate of the last day, reaches it within {STORAGE_DAYS} days ({{{{ $value | humanize }}}} in {STORAGE_DAYS} days)."
          runbook_url: docs/runbooks/CapacityStorageFullSoon.md
"""


def write(path: Path = RULES_FILE, *, check: bool = False, capacity_file: Path = CAPACITY_FILE) -> bool:
    """Write the rule file (or with ``check`` compare it); True when it was already up to date."""
    text = render(capacities=load_capacities(capacity_file))
    current = path.read_text() if path.exists() else None
    if not check and current != text:
        path.write_text(text)
    return current == text
