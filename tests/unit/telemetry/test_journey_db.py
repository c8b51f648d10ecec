"""order-journey's MES database source, without a database: what it asks and how it names itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telemetry.journey import collect_journey
from telemetry.journey_db import MesDatabase, Sources


def test_a_non_numeric_order_id_is_not_looked_up() -> None:
    # a port nobody listens on: any connection attempt would raise
    assert MesDatabase("postgresql://postgres@127.0.0.1:1/mes").matching("CRM-00000042") == []


def test_the_database_is_described_without_user_or_password() -> None:
    described = MesDatabase("postgresql://mes:s3cret@10.0.0.7:5433/mes").describe()
    assert described == "MES database 10.0.0.7:5433/mes"


class _Lines:
    def __init__(self, name: str, lines: list[dict[str, Any]]) -> None:
        self.name, self.lines = name, lines

    def matching(self, order_id: str) -> list[Mapping[str, Any]]:
        return [line for line in self.lines if line.get("order.id") == order_id]

    def joined(self, keys: Mapping[str, set[str]]) -> list[Mapping[str, Any]]:
        ids = keys.get("http.request.id", set())
        return [line for line in self.lines if line.get("http.request.id") in ids]

    def describe(self) -> str:
        return self.name


def test_sources_read_as_one_the_logs_and_the_database_lines_join_on_one_timeline() -> None:
    logs = _Lines("logs", [
        {"@timestamp": "2026-12-05T04:00:00+00:00", "order.id": "42", "http.request.id": "r1",
         "order.status.new": "SUBMITTED", "service.name": "legacy-mes"},
        {"@timestamp": "2026-12-05T04:00:01+00:00", "http.request.id": "r1", "service.name": "gateway"}])
    database = _Lines("db", [
        {"@timestamp": "2026-12-05T04:05:00+00:00", "order.id": "42", "order.status.old": "SUBMITTED",
         "order.status.new": "CANCELLED", "service.name": "mes-database"}])
    sources = Sources([logs, database])
    journey = collect_journey(sources, "42")
    assert [e.get("service.name") for e in journey.events] == ["legacy-mes", "gateway", "mes-database"]
    last = journey.last_status()
    assert last is not None
    assert last.get("order.status.new") == "CANCELLED"
    assert sources.describe() == "logs and db"
