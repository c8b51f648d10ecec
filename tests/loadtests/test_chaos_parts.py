"""The chaos harness's parts alone: the alert clock compression, windows, the fault proxy."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from devstack.fault_proxy import FaultProxy
from loadtests.chaos.figures import Request, recovery_seconds, window
from loadtests.chaos.ledger import attribute
from loadtests.chaos.monitoring import compress_expr, compress_rules, compressible, seconds
from loadtests.chaos.run import parser, partner_count, served_rate


def test_ranges_and_for_are_divided_by_the_factor_with_a_floor() -> None:
    expr = "sum(rate(x_total[5m])) / sum(rate(y_total[1h])) > 0 and max_over_time(z[10m:1m]) > 1"
    assert compress_expr(expr, 20) == ("sum(rate(x_total[15s])) / sum(rate(y_total[180s])) > 0 and "
                                       "max_over_time(z[30s:3s]) > 1")
    assert compress_expr("rate(x[1m])", 20) == "rate(x[5s])"  # floor: a few 1 s samples
    doc = compress_rules({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0", "for": "5m"},
                                                              {"record": "r", "expr": "vector(3600)"}]}]}, 20)
    assert doc["groups"][0]["interval"] == "1s"
    assert doc["groups"][0]["rules"][0]["for"] == "15s"
    assert doc["groups"][0]["rules"][1]["expr"] == "vector(3600)"
    assert seconds("1h30m") == 5400


def test_capacity_forecasts_are_not_run_on_the_compressed_clock() -> None:
    # Compressed, a 6 h predict_linear read 18 min of load-test growth: CapacityStorageFullSoon fired.
    assert not compressible("/x/prometheus/rules/capacity.yml")
    assert compressible("/x/prometheus/rules/pricing.yml")


def _r(start: float, status: int = 200, *, ok: bool = True, ra: bool = False, name: str = "crm POST /orders",
       ms: float = 10.0) -> Request:
    return Request(start=start, end=start + ms / 1000, name=name, status=status, ok=ok, retry_after=ra,
                   ident=None)


def test_shed_answers_with_retry_after_are_counted_apart_from_failures() -> None:
    requests = [_r(1.0), _r(2.0, 503, ok=False, ra=True), _r(3.0, 503, ok=False), _r(4.0, 0, ok=False),
                _r(9.0, 502, ok=False)]
    crm = window(requests, 0.0, 5.0)["crm"]
    assert crm.requests == 4
    assert dict(crm.shed) == {503: 1}
    assert dict(crm.failures) == {503: 1, 0: 1}


def test_the_capacity_probe_counts_served_answers_not_shed_ones() -> None:
    # A rate-limited partner's cheap 429s inflated the probe: the measured run, at half of it, was
    # then throttled (CI: a fault window accepted no partner order).
    requests = [_r(1.0), _r(2.0), _r(3.0, 429, ok=False, ra=True), _r(4.0, 503, ok=False, ra=True), _r(5.0),
                _r(12.0)]
    assert served_rate(requests, 0.0, 10.0) == 0.3


def test_every_user_of_the_probe_and_of_the_run_has_its_own_partner_identity() -> None:
    args = parser().parse_args(["--short", "--probe-users", "24", "--users", "30"])
    assert partner_count(args) == 30


def test_recovery_is_the_last_error_after_heal_followed_by_clean_traffic() -> None:
    requests = [_r(10.0 + i) for i in range(20)] + [_r(12.0, 502, ok=False)]
    assert recovery_seconds(requests, 10.0, 30.0) == 2.0
    assert recovery_seconds([_r(11.0)], 10.0, 30.0) == 0.0
    # a sporadic error long after service resumed is an error of the window, not recovery time
    assert recovery_seconds([_r(12.0, 502, ok=False), _r(25.0, 504, ok=False)], 10.0, 30.0) == 2.0
    assert recovery_seconds([_r(10.0 + i, 503, ok=False) for i in range(18)], 10.0, 30.0) is None


def test_quota_answers_do_not_delay_recovery_but_shed_503s_do() -> None:
    quota = [_r(10.0 + i, 429, ok=False, ra=True) for i in range(18)]   # a partner over its limit all along
    assert recovery_seconds([*quota, _r(12.0, 502, ok=False)], 10.0, 30.0) == 2.0
    shed = [_r(10.0 + i, 503, ok=False, ra=True) for i in range(18)]
    assert recovery_seconds(shed, 10.0, 30.0) is None


def test_acceptances_are_attributed_to_the_window_they_started_in() -> None:
    times = {"a": 1.0, "b": 5.0, "c": 50.0}
    counts = attribute(times, ["a", "b", "c"], [("baseline", 0.0, 2.0), ("mes-kill", 2.0, 10.0)])
    assert counts == {"baseline": 1, "mes-kill": 1, "(outside the windows)": 1}


def test_the_fault_proxy_passes_bytes_and_delays_the_answers_when_told() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(echo, "127.0.0.1", 0))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    proxy = FaultProxy(upstream_port=server.sockets[0].getsockname()[1]).start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(b"ping")
            assert sock.recv(16) == b"ping"
            proxy.delay = 0.3
            began = time.monotonic()
            sock.sendall(b"slow")
            assert sock.recv(16) == b"slow"
            assert time.monotonic() - began >= 0.3
    finally:
        proxy.stop()
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
