"""Order journey: every log line about one order, from every service, in time order.

On-call's first question about a stuck order is "where is it, and what happened to it?".
The answer is in the structured JSON logs (``docs/telemetry.md``), spread over the gateway's
access log, the sidecars, the legacy stand-ins and the pricing workers. This module:

1. finds every line whose ``order.id`` is the order (``matching``);
2. collects the join keys of those lines — ``http.request.id``, ``trace.id`` and ``crm.order_id`` —
   and adds every line sharing one of them (``joined``), so the access-log lines of the requests
   that touched the order and the CRM's intake lines appear too (repeated for up to
   ``MAX_JOIN_HOPS`` hops, so CRM order id → CRM intake line → its request id → the gateway's and
   sidecar's access-log lines; lines about a *different* order are left out);
3. prints them sorted by ``@timestamp`` with a summary: trace ids (with a Jaeger link), request ids,
   services, and the last known status.

Two sources: local files (``.run/logs/*.log`` and rotated ``*.log.1`` …; non-JSON lines are skipped,
lines written twice — stdout copy and ``$LOG_FILE`` — are shown once) or Elasticsearch (two ``bool``
queries with the official client). CLI: ``python -m telemetry order-journey ORDER_ID``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = ["JOIN_FIELDS", "ElasticsearchLogs", "Journey", "JourneyEvent", "LogFiles", "LogSource",
           "collect_journey", "field_value", "render_journey"]

#: Fields whose values tie a line to the order's lines (same request, same trace, same CRM order).
JOIN_FIELDS = ("http.request.id", "trace.id", "crm.order_id")
#: CRM order id → the CRM's intake line → its request id → the gateway/sidecar access lines
MAX_JOIN_HOPS = 3
DEFAULT_LOG_DIR = Path(".run/logs")
DEFAULT_JAEGER_UI_URL = "http://127.0.0.1:16686"
DEFAULT_ES_INDEX = "mes-edge-logs-*"
#: Most hits one Elasticsearch query returns (index.max_result_window defaults to 10 000).
ES_MAX_HITS = 5000
_ROTATED = re.compile(r"\.log(\.\d+)?$")


def field_value(doc: Mapping[str, Any], name: str) -> Any:
    """``doc[name]`` for a flat dotted ECS key (our log lines), else the nested path (an ES ``_source``)."""
    if name in doc:
        return doc[name]
    value: Any = doc
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _timestamp(doc: Mapping[str, Any]) -> datetime | None:
    raw = field_value(doc, "@timestamp")
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class JourneyEvent:
    """One log line of the journey."""

    timestamp: datetime
    doc: Mapping[str, Any]

    def get(self, name: str) -> str | None:
        """The field as text, or None when absent or empty."""
        return _text(field_value(self.doc, name))


@dataclass(slots=True)
class Journey:
    """The order's lines in time order, and what ties them together."""

    order_id: str
    events: list[JourneyEvent] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        """Distinct values of ``name`` in order of first appearance."""
        return list(dict.fromkeys(v for e in self.events if (v := e.get(name)) is not None))

    def last_status(self) -> JourneyEvent | None:
        """The latest successful line that set a status (creation or change), if any."""
        changes = [e for e in self.events
                   if e.get("order.status.new") and e.get("event.outcome") != "failure"]
        return changes[-1] if changes else None


class LogSource(Protocol):
    """Where log lines come from: files on this machine, or Elasticsearch."""

    def matching(self, order_id: str) -> Iterable[Mapping[str, Any]]:
        """Lines whose ``order.id`` is ``order_id``."""
        ...

    def joined(self, keys: Mapping[str, set[str]]) -> Iterable[Mapping[str, Any]]:
        """Lines whose value of some field in ``keys`` is one of that field's values."""
        ...

    def describe(self) -> str:
        """Where was looked, for messages."""
        ...


class LogFiles:
    """JSON log files: directories are expanded to ``*.log`` and rotated ``*.log.N`` files."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def files(self) -> list[Path]:
        """Every file to read; raises ``FileNotFoundError`` for a path that does not exist."""
        found: list[Path] = []
        for path in self.paths:
            if path.is_dir():
                found.extend(sorted(p for p in path.iterdir() if p.is_file() and _ROTATED.search(p.name)))
            elif path.is_file():
                found.append(path)
            else:
                raise FileNotFoundError(f"no such log file or directory: {path}")
        return found

    def _documents(self) -> Iterator[Mapping[str, Any]]:
        for path in self.files():
            with path.open(encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    if not line.startswith("{"):
                        continue  # plain-text output (tracebacks, third-party prints)
                    try:
                        doc = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(doc, dict):
                        yield doc

    def matching(self, order_id: str) -> Iterator[Mapping[str, Any]]:
        return (d for d in self._documents() if _text(field_value(d, "order.id")) == order_id)

    def joined(self, keys: Mapping[str, set[str]]) -> Iterator[Mapping[str, Any]]:
        for doc in self._documents():
            if any(_text(field_value(doc, name)) in values for name, values in keys.items()):
                yield doc

    def describe(self) -> str:
        return f"{len(self.files())} log file(s) under {', '.join(map(str, self.paths))}"


class ElasticsearchLogs:
    """Log documents in Elasticsearch, read with the official client (``elasticsearch`` 9.x).

    ``term``/``terms`` on the field and on its ``.keyword`` sub-field, so the queries work with the
    ECS index template (keyword fields) and with dynamic mapping (text + keyword) alike.
    """

    def __init__(self, client: Any, index: str, *, size: int = ES_MAX_HITS) -> None:
        self.client = client
        self.index = index
        self.size = size
        self.truncated = False

    @staticmethod
    def order_query(order_id: str) -> dict[str, Any]:
        """The first query: lines of the order."""
        return {"bool": {"should": [{"term": {"order.id": order_id}},
                                    {"term": {"order.id.keyword": order_id}}],
                         "minimum_should_match": 1}}

    @staticmethod
    def join_query(keys: Mapping[str, set[str]]) -> dict[str, Any]:
        """The second query: lines sharing a request id, trace id or CRM order id with the first ones."""
        should: list[dict[str, Any]] = []
        for name, values in keys.items():
            if values:
                ordered = sorted(values)
                should += [{"terms": {name: ordered}}, {"terms": {f"{name}.keyword": ordered}}]
        return {"bool": {"should": should, "minimum_should_match": 1}}

    def _search(self, query: dict[str, Any]) -> list[Mapping[str, Any]]:
        response = self.client.search(index=self.index, query=query, size=self.size,
                                      sort=[{"@timestamp": {"order": "asc", "unmapped_type": "date"}}],
                                      track_total_hits=True)
        hits = response["hits"]
        total = hits.get("total", {}).get("value", 0)
        self.truncated = self.truncated or total > len(hits["hits"])
        return [hit["_source"] for hit in hits["hits"]]

    def matching(self, order_id: str) -> list[Mapping[str, Any]]:
        return self._search(self.order_query(order_id))

    def joined(self, keys: Mapping[str, set[str]]) -> list[Mapping[str, Any]]:
        return self._search(self.join_query(keys))

    def describe(self) -> str:
        return f"Elasticsearch index {self.index!r}"


def collect_journey(source: LogSource, order_id: str) -> Journey:
    """The order's lines plus the lines joined to them, deduplicated, sorted by ``@timestamp``."""
    seen: set[str] = set()
    events: list[JourneyEvent] = []

    def add(docs: Iterable[Mapping[str, Any]]) -> None:
        for doc in docs:
            other_order = _text(field_value(doc, "order.id"))
            if other_order is not None and other_order != order_id:
                continue  # same request or trace, but a line about another order
            timestamp = _timestamp(doc)
            key = json.dumps(doc, sort_keys=True, default=str)
            if timestamp is None or key in seen:
                continue
            seen.add(key)
            events.append(JourneyEvent(timestamp, doc))

    add(source.matching(order_id))
    asked: dict[str, set[str]] = {name: set() for name in JOIN_FIELDS}
    for _hop in range(MAX_JOIN_HOPS):
        keys = {name: {v for e in events if (v := e.get(name)) is not None} - asked[name]
                for name in JOIN_FIELDS}
        if not any(keys.values()):
            break
        for name, values in keys.items():
            asked[name] |= values
        add(source.joined({name: values for name, values in keys.items() if values}))
    events.sort(key=lambda e: e.timestamp)  # stable: equal times keep file order
    return Journey(order_id=order_id, events=events)


def _status(event: JourneyEvent) -> str:
    old, new = event.get("order.status.old"), event.get("order.status.new")
    if new is None:
        return "-"
    return f"{old}→{new}" if old else f"→{new}"


def _duration(event: JourneyEvent) -> str:
    raw = field_value(event.doc, "event.duration")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return "-"
    return f"{raw / 1e6:.1f} ms"


def moment_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_journey(journey: Journey, *, jaeger_ui_url: str = DEFAULT_JAEGER_UI_URL) -> str:
    """The timeline (one line per event) and the summary, as printed by the CLI."""
    rows = [(moment_text(e.timestamp), e.get("service.name") or "-",
             e.get("event.action") or e.get("event.dataset") or "-", _status(e),
             e.get("event.outcome") or "-", _duration(e), e.get("message") or "")
            for e in journey.events]
    header = ("TIME", "SERVICE", "EVENT", "STATUS", "OUTCOME", "DURATION", "MESSAGE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(6)]
    lines = [f"Order {journey.order_id}: {len(journey.events)} event(s)", ""]
    for row in [header, *rows]:
        cells = [row[i].rjust(widths[i]) if i == 5 else row[i].ljust(widths[i]) for i in range(6)]
        lines.append("  ".join([*cells, row[6]]).rstrip())
    lines.append("")
    base = jaeger_ui_url.rstrip("/")
    traces = journey.values("trace.id")
    lines.append(f"trace ids:   {', '.join(traces) if traces else '(none: tracing was off)'}")
    lines += [f"  jaeger:    {base}/trace/{trace_id}" for trace_id in traces]
    requests = journey.values("http.request.id")
    lines.append(f"request ids: {', '.join(requests) if requests else '-'}")
    lines.append(f"services:    {', '.join(journey.values('service.name')) or '-'}")
    last = journey.last_status()
    if last is not None:
        lines.append(f"last status: {last.get('order.status.new')} since {moment_text(last.timestamp)} "
                     f"({last.get('service.name') or '-'})")
    failures = [e for e in journey.events if e.get("event.outcome") == "failure"]
    if failures:
        lines.append(f"failures:    {len(failures)}, last: {failures[-1].get('message') or '-'}")
    return "\n".join(lines)
