"""The long-running archiver's /metrics (``--every N --metrics-port P``): failed passes, then passes
that move orders, counted exactly; the last success set only by a successful pass."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from devstack.ports import free_port
from tests.integration.mesdb.conftest import DUE_IN_HOT, close_long_ago, mesdb_json, query
from tests.support.waiting import eventually


def _samples(port: int) -> dict[str, float]:
    """``name{label="value"}`` (sorted labels) → value, for the archiver's own series."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("mesdb_"):
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


async def test_archiver_metrics_count_failed_and_successful_passes_and_the_orders_moved(
    seeded_dsn: str,
) -> None:
    port = free_port()
    started = time.time()
    # no split yet: every pass fails ("run `mesdb split` first") until the preparation below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mesdb",
            "--dsn",
            seeded_dsn,
            "archive",
            "--every",
            "0.2",
            "--metrics-port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ok, error = 'mesdb_archiver_passes_total{outcome="ok"}', 'mesdb_archiver_passes_total{outcome="error"}'
    seen: dict[str, float] = {}

    def scraped() -> dict[str, float]:
        seen.clear()
        seen.update(_samples(port))
        return seen

    try:

        async def failed_twice() -> bool:
            try:
                return scraped()[error] >= 2
            except OSError:  # not listening yet
                return False

        await eventually(failed_twice, timeout=60, what="two failed passes on /metrics")
        assert seen[ok] == 0
        assert seen["mesdb_archiver_orders_moved_total"] == 0
        assert seen["mesdb_archiver_last_success_timestamp_seconds"] == 0
        assert seen["mesdb_archiver_interval_seconds"] == 0.2
        assert seen["mesdb_archiver_pass_duration_seconds_count"] == seen[error]

        due = query(seeded_dsn, DUE_IN_HOT)[0][0]
        assert due > 0
        mesdb_json(seeded_dsn, "split", "--prepare-only")

        async def all_due_moved_and_a_pass_more() -> bool:
            return bool(scraped()[ok] >= 2 and query(seeded_dsn, DUE_IN_HOT) == [(0,)])

        await eventually(all_due_moved_and_a_pass_more, timeout=120, what="the due orders archived")
        assert seen["mesdb_archiver_orders_moved_total"] == due
        assert seen["mesdb_archiver_last_success_timestamp_seconds"] >= started
        errors_after_split = seen[error]

        closed = query(seeded_dsn, "SELECT id FROM orders WHERE status = 'SHIPPED' ORDER BY id LIMIT 1")[0][0]
        close_long_ago(seeded_dsn, closed)

        async def one_more_moved() -> bool:
            return bool(scraped()["mesdb_archiver_orders_moved_total"] > due)

        await eventually(one_more_moved, timeout=60, what="the order closed meanwhile counted")
        assert seen["mesdb_archiver_orders_moved_total"] == due + 1
        assert seen[error] == errors_after_split
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert '"event.action": "archive-pass"' in out
    assert '"event.outcome": "failure"' in out
    assert '"event.outcome": "success"' in out
