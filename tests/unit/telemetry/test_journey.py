"""order-journey over local log files: one order's lines from three services, joined and in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from telemetry.__main__ import main
from telemetry.journey import LogFiles, collect_journey, field_value

T_CREATE = "4bf92f3577b34da6a3ce929d0e0e4736"
T_PRICE = "0af7651916cd43dd8448eb211c80319c"
T_OTHER = "11111111111111111111111111111111"


def line(ts: str, service: str, message: str, **fields: object) -> str:
    return json.dumps({"@timestamp": f"2026-03-02T10:{ts}+00:00", "service.name": service,
                       "message": message, **fields})


def write(path: Path, *lines: str) -> None:
    path.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """gateway access log, a sidecar, the MES (with a rotated file, a stdout copy and garbage)."""
    write(tmp_path / "gateway-access.log",
          line("00:00.100", "gateway", "POST /partner/v1/orders 201", **{
              "event.dataset": "gateway.access", "http.request.id": "req-create", "trace.id": T_CREATE,
              "event.duration": 41_000_000, "event.outcome": "success"}),
          line("05:00.900", "gateway", "POST /orders/42/status 200", **{
              "event.dataset": "gateway.access", "http.request.id": "req-price", "trace.id": T_PRICE,
              "event.duration": 9_000_000}),
          line("06:00.000", "gateway", "GET /orders 200", **{"http.request.id": "req-unrelated"}))
    write(tmp_path / "sidecar-mes-1.log",
          line("00:00.020", "sidecar-mes-1", "proxy POST /orders", **{
              "http.request.id": "req-create", "trace.id": T_CREATE}),
          line("05:00.500", "sidecar-mes-1", "proxy POST /orders/{order_id}/status", **{
              "trace.id": T_PRICE}))
    mes_created = line("00:00.050", "legacy-mes", "order 42 created", **{
        "event.action": "order-created", "event.outcome": "success", "event.duration": 3_500_000,
        "order.id": 42, "order.status.new": "SUBMITTED", "http.request.id": "req-create",
        "trace.id": T_CREATE})
    write(tmp_path / "mes-1.log",
          "Traceback (most recent call last):",
          "{not json at all",
          "[1, 2, 3]",
          "",
          line("no-time", "legacy-mes", "line without a timestamp", **{"order.id": 42}),
          mes_created,
          line("00:00.060", "legacy-mes", "order 43 created", **{
              "event.action": "order-created", "order.id": 43, "trace.id": T_CREATE}),
          line("06:00.010", "legacy-mes", "order 43 listed", **{"http.request.id": "req-unrelated"}))
    write(tmp_path / "mes-1.json.log", mes_created)  # $LOG_FILE copy of the same line
    write(tmp_path / "mes-1.log.1",  # rotated: older file name, newer event
          line("05:00.600", "legacy-mes", "order 42 SUBMITTED -> PRICE_CALCULATED", **{
              "event.action": "order-status-changed", "event.outcome": "success", "event.duration": 2_000_000,
              "order.id": "42", "order.status.old": "SUBMITTED", "order.status.new": "PRICE_CALCULATED",
              "http.request.id": "req-price", "trace.id": T_PRICE}))
    (tmp_path / "notes.txt").write_text(line("00:00.000", "x", "not a log file", **{"order.id": 42}))
    return tmp_path


def timeline(out: str) -> list[str]:
    """The event rows printed between the header and the summary."""
    rows = out.split("\n\n")[1].splitlines()
    assert rows[0].startswith("TIME")
    return rows[1:]


def test_journey_prints_every_service_in_time_order_with_trace_links(logs: Path, capsys) -> None:
    assert main(["order-journey", "42", "--logs", str(logs)]) == 0
    out = capsys.readouterr().out
    rows = timeline(out)
    assert [r.split()[1] for r in rows] == ["sidecar-mes-1", "legacy-mes", "gateway", "sidecar-mes-1",
                                            "legacy-mes", "gateway"]
    assert "order-created" in rows[1]
    assert "→SUBMITTED" in rows[1]
    assert "SUBMITTED→PRICE_CALCULATED" in rows[4]
    assert "41.0 ms" in rows[2]
    assert rows[0].startswith("2026-03-02T10:00:00.020Z")
    assert f"http://127.0.0.1:16686/trace/{T_CREATE}" in out
    assert f"http://127.0.0.1:16686/trace/{T_PRICE}" in out
    assert "last status: PRICE_CALCULATED since 2026-03-02T10:05:00.600Z" in out


def test_lines_are_joined_on_request_id_and_trace_id_but_not_other_orders(logs: Path) -> None:
    journey = collect_journey(LogFiles([logs]), "42")
    messages = [e.get("message") for e in journey.events]
    assert "POST /partner/v1/orders 201" in messages  # same http.request.id
    assert "proxy POST /orders/{order_id}/status" in messages  # same trace.id only
    assert "order 43 created" not in messages  # same trace, another order
    assert "GET /orders 200" not in messages
    assert "order 43 listed" not in messages
    assert journey.values("http.request.id") == ["req-create", "req-price"]


def test_crm_lines_are_joined_on_the_crm_order_id(tmp_path: Path) -> None:
    write(tmp_path / "crm.log", line("00:00.000", "legacy-crm", "CRM order CRM-00000007 queued", **{
        "event.action": "crm-queue-write", "crm.order_id": "CRM-00000007"}))
    write(tmp_path / "mes-1.log", line("00:01.000", "legacy-mes", "CRM order CRM-00000007 -> MES order 7", **{
        "event.action": "crm-queue-read", "crm.order_id": "CRM-00000007", "order.id": 7}))
    journey = collect_journey(LogFiles([tmp_path]), "7")
    assert [e.get("event.action") for e in journey.events] == ["crm-queue-write", "crm-queue-read"]


def test_rotated_files_are_read_and_duplicate_copies_shown_once(logs: Path) -> None:
    journey = collect_journey(LogFiles([logs]), "42")
    actions = [e.get("event.action") for e in journey.events]
    assert actions.count("order-created") == 1
    assert "order-status-changed" in actions  # only in mes-1.log.1


def test_garbage_lines_and_non_log_files_are_ignored(logs: Path) -> None:
    journey = collect_journey(LogFiles([logs]), "42")
    assert all(e.get("service.name") != "x" for e in journey.events)
    assert len(journey.events) == 6


def test_explicit_files_are_read_as_given(logs: Path) -> None:
    journey = collect_journey(LogFiles([logs / "mes-1.log.1"]), "42")
    assert [e.get("event.action") for e in journey.events] == ["order-status-changed"]


def test_unknown_order_exits_1_with_a_message(logs: Path, capsys) -> None:
    assert main(["order-journey", "999", "--logs", str(logs)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no log line with order.id=999" in captured.err


def test_missing_log_directory_exits_2(tmp_path: Path, capsys) -> None:
    assert main(["order-journey", "42", "--logs", str(tmp_path / "nope")]) == 2
    assert "cannot read logs" in capsys.readouterr().err


def test_jaeger_url_comes_from_the_environment(logs: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("JAEGER_UI_URL", "https://jaeger.example/")
    assert main(["order-journey", "42", "--logs", str(logs)]) == 0
    assert f"https://jaeger.example/trace/{T_CREATE}" in capsys.readouterr().out


def test_nested_documents_are_read_like_flat_ecs_keys() -> None:
    doc = {"order": {"id": 42, "status": {"new": "SHIPPED"}}, "trace.id": "abc"}
    assert field_value(doc, "order.id") == 42
    assert field_value(doc, "order.status.new") == "SHIPPED"
    assert field_value(doc, "trace.id") == "abc"
    assert field_value(doc, "order.missing") is None
