"""Every metric a rule or a dashboard uses exists in a real scrape of the running platform."""

from __future__ import annotations

from tests.stack.conftest import StackRun
from tests.stack.stack_support import family_name, recorded_names, referenced_metrics


def _declared(name: str, metadata_names: set[str]) -> bool:
    family = family_name(name)
    return family in metadata_names or family.removesuffix("_total") in metadata_names


def test_every_target_of_the_shipped_jobs_is_scraped(stack_run: StackRun) -> None:
    down = {t["scrapeUrl"]: t["lastError"] for t in stack_run.targets if t["health"] != "up"}
    assert not down
    assert {t["labels"]["job"] for t in stack_run.targets} == {
        "gateway",
        "sidecar",
        "legacy-mes",
        "legacy-crm",
        "pricing-workers",
        "mesdb-archiver",
        "redis",
        "node",
        "prometheus",
    }


def test_every_metric_used_by_rules_and_dashboards_is_scraped(stack_run: StackRun) -> None:
    """Present as series after the traffic, or at least declared (HELP/TYPE) by the real exporter.

    A few counters only get a sample when their event happens (a breaker rejection, a probe
    error); Prometheus still learns their family from the scrape's metadata, which is what
    proves the name is not invented.
    """
    used = {name: where for name, where in referenced_metrics().items() if name not in NOT_IN_MAKE_RUN}
    unknown = {
        name: sorted(where)
        for name, where in used.items()
        if name not in stack_run.metric_names and not _declared(name, stack_run.metadata_names)
    }
    assert not unknown, f"metrics used but never exported: {unknown}"


#: Counters/gauges that get a sample only when their event happens: a failed probe, a breaker or
#: retry-budget refusal, a lost or duplicate event, a running legacy price calculation.
EVENT_ONLY = {
    "pricing_calculations_in_progress",
    "gateway_upstream_retry_budget_exhausted_total",
    "gateway_circuit_breaker_rejections_total",
    "sidecar_events_dropped_total",
    "sidecar_events_publish_errors_total",
    "sidecar_events_duplicates_total",
    # partner edge, cache, pricing: labelled counters of failures and overload, which the healthy
    # run does not provoke (tests/integration/gateway and legacy_adapters do, on their own)
    "gateway_cache_collapsed_total",  # {route}: concurrent misses of one key (timing-dependent)
    "gateway_ratelimit_mode_switches_total",  # {mode}: the rate-limit Redis lost and found
    "pricing_dead_letters_total",  # {reason}: a job failing for good
    "pricing_webhooks_total",  # {outcome}: a quote submitted with a callback_url
}


#: Metrics the capacity model reads where they exist, that make run cannot have (docs/capacity.md):
#: validated by promtool tests (prometheus/tests/capacity-stores_test.yml) only.
NOT_IN_MAKE_RUN = {
    # Elasticsearch (the log store of compose and production) does not run here
    "elasticsearch_filesystem_data_size_bytes",
    "elasticsearch_filesystem_data_available_bytes",
    # the WAL's size: Prometheus 2.54 (compose) has it, Debian's 2.42 not
    "prometheus_tsdb_wal_storage_size_bytes",
}


def test_every_used_metric_has_samples_after_the_traffic_unless_event_only(stack_run: StackRun) -> None:
    no_samples = set(referenced_metrics()) - stack_run.metric_names - NOT_IN_MAKE_RUN
    assert no_samples <= EVENT_ONLY, f"never sampled despite the traffic: {sorted(no_samples - EVENT_ONLY)}"


def test_every_rule_and_dashboard_query_parses_in_prometheus(stack_run: StackRun) -> None:
    assert not stack_run.query_errors


def test_every_rule_evaluates_without_error_on_real_data(stack_run: StackRun) -> None:
    bad = {r["name"]: r.get("lastError") for r in stack_run.rule_health if r.get("health") == "err"}
    assert not bad
    assert {r["name"] for r in stack_run.rule_health if r["type"] == "recording"} == recorded_names()


def test_prometheus_sends_alerts_to_the_alertmanager(stack_run: StackRun) -> None:
    assert len(stack_run.alertmanagers) == 1

