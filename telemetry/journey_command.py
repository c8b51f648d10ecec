"""``order-journey``: the command that puts the sources together (log files or Elasticsearch, and
the MES database's replica) and prints one order's journey (:mod:`telemetry.journey` reads and
renders, :mod:`telemetry.journey_db` reads the database).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from telemetry.journey import (
    DEFAULT_ES_INDEX,
    DEFAULT_JAEGER_UI_URL,
    DEFAULT_LOG_DIR,
    ElasticsearchLogs,
    LogFiles,
    LogSource,
    collect_journey,
    moment_text,
    render_journey,
)
from telemetry.journey_db import DATABASE_ERRORS, MesDatabase, Sources


def elasticsearch_source(url: str, index: str) -> ElasticsearchLogs:
    """An :class:`ElasticsearchLogs` on ``url`` (``$ES_API_KEY`` authenticates, if set)."""
    from elasticsearch import Elasticsearch

    client = Elasticsearch(url, api_key=os.environ.get("ES_API_KEY") or None, request_timeout=10,
                           max_retries=1)
    return ElasticsearchLogs(client, index)


def _source_errors() -> tuple[type[BaseException], ...]:
    """Errors meaning "could not read the logs": file errors, the database's, and the ES client's
    when installed."""
    errors: list[type[BaseException]] = [OSError, *DATABASE_ERRORS]
    try:
        from elastic_transport import TransportError
        from elasticsearch import ApiError
    except ImportError:
        return tuple(errors)
    return (*errors, TransportError, ApiError)


def order_journey(order_id: str, *, logs: Sequence[Path] = (), es_url: str | None = None,
                  es_index: str = DEFAULT_ES_INDEX, jaeger_ui_url: str | None = None,
                  dsn: str | None = None) -> int:
    """The ``order-journey`` command: print the journey; exit code 0, 1 (nothing found) or 2 (no source).

    ``dsn``: also the order's ``order_status_history`` rows from the MES database (a read replica,
    :mod:`telemetry.journey_db`)."""
    source: LogSource = (elasticsearch_source(es_url, es_index) if es_url
                         else LogFiles(list(logs) or [DEFAULT_LOG_DIR]))
    database = None
    if dsn:
        database = MesDatabase(dsn)
        source = Sources([source, database])
    try:
        journey = collect_journey(source, order_id)
        where = source.describe()
    except _source_errors() as exc:  # the source, not the order, failed: say which and how
        print(f"order-journey: cannot read logs: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    if not journey.events:
        print(f"order-journey: no log line with order.id={order_id} in {where}", file=sys.stderr)
        return 1
    jaeger = jaeger_ui_url or os.environ.get("JAEGER_UI_URL") or DEFAULT_JAEGER_UI_URL
    print(render_journey(journey, jaeger_ui_url=jaeger))
    if database is not None and database.replayed_up_to is not None:
        print(f"database:    a replica, replayed up to {moment_text(database.replayed_up_to)}")
    if isinstance(source, ElasticsearchLogs) and source.truncated:
        print(f"order-journey: more than {source.size} hits, the timeline is cut", file=sys.stderr)
    return 0
