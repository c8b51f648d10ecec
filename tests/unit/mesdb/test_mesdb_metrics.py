"""mesdb/metrics.py: every archiver series exists before the first pass; one pass moves them exactly."""

from __future__ import annotations

from prometheus_client import REGISTRY

from mesdb import metrics


def _value(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} is not exported"
    return value


def test_every_archiver_series_is_exported_from_import_before_any_pass() -> None:
    for outcome in ("ok", "error"):
        _value("mesdb_archiver_passes_total", outcome=outcome)
    _value("mesdb_archiver_orders_moved_total")
    _value("mesdb_archiver_last_success_timestamp_seconds")
    _value("mesdb_archiver_pass_duration_seconds_count")
    _value("mesdb_archiver_interval_seconds")


def test_a_successful_pass_counts_its_orders_and_sets_the_last_success() -> None:
    ok, error = (
        _value("mesdb_archiver_passes_total", outcome="ok"),
        _value("mesdb_archiver_passes_total", outcome="error"),
    )
    moved, passes = (
        _value("mesdb_archiver_orders_moved_total"),
        _value("mesdb_archiver_pass_duration_seconds_count"),
    )
    metrics.observe_pass("ok", seconds=0.2, moved=7)
    assert _value("mesdb_archiver_passes_total", outcome="ok") == ok + 1
    assert _value("mesdb_archiver_passes_total", outcome="error") == error
    assert _value("mesdb_archiver_orders_moved_total") == moved + 7
    assert _value("mesdb_archiver_pass_duration_seconds_count") == passes + 1
    assert _value("mesdb_archiver_last_success_timestamp_seconds") > 0


def test_a_failed_pass_counts_as_error_and_leaves_the_last_success_alone() -> None:
    metrics.LAST_SUCCESS.set(123.0)
    error, moved = (
        _value("mesdb_archiver_passes_total", outcome="error"),
        _value("mesdb_archiver_orders_moved_total"),
    )
    metrics.observe_pass("error", seconds=0.1)
    assert _value("mesdb_archiver_passes_total", outcome="error") == error + 1
    assert _value("mesdb_archiver_orders_moved_total") == moved
    assert _value("mesdb_archiver_last_success_timestamp_seconds") == 123.0
