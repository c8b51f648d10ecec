"""The fault matrix: each fault is injected, held for the fault window, then healed.

A fault acts only on processes this harness started (by PID, :mod:`loadtests.chaos.stack`).
``inject`` and ``heal`` may leave notes (``notes``) that go into the report, e.g. how many relay
entries were in flight when the relay was killed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from loadtests.chaos.stack import Stack

Notes = dict[str, Any]
PRICING_WORKERS = ("pricing-worker-1", "pricing-worker-2")
#: the alerts that should catch a fault of each kind (any one of them)
ENDPOINT_ALERTS = ("GatewayUpstreamEndpointEjected", "GatewayUpstreamEndpointUnhealthy")
REDIS_ALERTS = ("GatewayRateLimitBackendUnreachable", "GatewayCacheEventsDisconnected",
                "GatewayCacheBackendErrors")
DATABASE_ALERTS = ("GatewayClusterNoHealthyEndpoint", "SidecarProbeErrors", "SidecarProbeStale")
Action = Callable[[Stack, Notes], None]


@dataclass(frozen=True)
class Fault:
    """One row of the matrix; ``detect``: the alerts that should catch it (any one of them),
    or none, and then ``no_alert``: why no alert should fire."""

    name: str
    what: str
    inject: Action
    heal: Action
    detect: tuple[str, ...] = ()
    no_alert: str = ""


def _nothing(_stack: Stack, _notes: Notes) -> None:
    pass


def _kill(name: str) -> Action:
    def act(stack: Stack, notes: Notes) -> None:
        notes["pid"] = stack.component(name).pid
        stack.signal_group(name, signal.SIGKILL)
    return act


def _signal(name: str, sig: int) -> Action:
    """``sig`` to the server ``name`` and all its processes (a freeze stops every one of them)."""
    def act(stack: Stack, _notes: Notes) -> None:
        stack.signal_tree(name, sig)
    return act


def _restart(name: str) -> Action:
    def act(stack: Stack, _notes: Notes) -> None:
        stack.restart(name)
    return act


def _slow(delay: float) -> Action:
    def act(stack: Stack, _notes: Notes) -> None:
        stack.proxy.delay = delay
    return act


def _kill_gateway_worker(stack: Stack, notes: Notes) -> None:
    workers = stack.gateway_workers()
    notes["workers"] = len(workers)
    if workers:
        notes["pid"] = workers[0]
        os.kill(workers[0], signal.SIGKILL)


def _reload(variant: bool) -> Action:
    def act(stack: Stack, _notes: Notes) -> None:
        stack.reload_gateway(variant=variant)
    return act


def _redis_kill(stack: Stack, notes: Notes) -> None:
    notes["pid"] = stack.component("redis").pid
    stack.signal_group("redis", signal.SIGKILL)


def _redis_start(stack: Stack, _notes: Notes) -> None:
    stack.redis_start()


def _pg_stop(stack: Stack, _notes: Notes) -> None:
    stack.postgres_stop()


def _pg_start(stack: Stack, _notes: Notes) -> None:
    stack.postgres_start()


def _crm_order(url: str, i: int) -> dict[str, Any]:
    """One CRM order through the gateway, as a journal line (class ``crm``)."""
    body = json.dumps({"customer": "ACME", "material": "PLA", "quantity": 1,
                       "model_name": f"burst-{time.time_ns():x}-{i}.stl"}).encode()
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (loopback http URL)
                                     headers={"Content-Type": "application/json"})
    started = time.time()
    status, ident, retry_after = 0, None, False
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (loopback)
            status = resp.status
            ident = json.load(resp).get("crm_order_id")
    except urllib.error.HTTPError as exc:
        status, retry_after = exc.code, bool(exc.headers.get("Retry-After"))
    except OSError:
        status = 0
    line: dict[str, Any] = {"t": round(time.time(), 3), "n": "crm POST /orders (burst)", "s": status,
                            "ms": round((time.time() - started) * 1000, 1), "ok": status == 202,
                            "ra": retry_after}
    if ident and status == 202:
        line["id"] = str(ident)
    return line


def _crm_burst(stack: Stack, journal: Path, count: int) -> threading.Thread:
    """``count`` CRM orders through the gateway, 16 at a time, in a thread; journalled like Locust's."""
    url = f"http://127.0.0.1:{stack.ports.internal}/crm/orders"

    def send() -> None:
        with ThreadPoolExecutor(16) as pool:
            lines = list(pool.map(lambda i: _crm_order(url, i), range(count)))
        with journal.open("a") as out:
            out.writelines(json.dumps(line) + "\n" for line in lines)

    thread = threading.Thread(target=send, name="crm-burst")
    thread.start()
    return thread


def _busiest(client: redis.Redis, stream: str, group: str) -> tuple[str, int]:
    """The consumer of ``group`` holding the most entries of ``stream`` in flight, and how many."""
    try:
        consumers = client.xpending(stream, group).get("consumers") or []
    except redis.RedisError:
        return "", 0
    best = max(consumers, key=lambda c: int(c["pending"]), default=None)
    if best is None:
        return "", 0
    name = best["name"].decode() if isinstance(best["name"], bytes) else str(best["name"])
    return name, int(best["pending"])


def _relay_kill(journal: Path) -> Action:
    """A burst of CRM orders; SIGKILL of the relay (its sidecar) once it holds several in flight."""
    def act(stack: Stack, notes: Notes) -> None:
        client = redis.Redis.from_url(stack.redis_url(0))
        burst = _crm_burst(stack, journal, 120)
        deadline = time.monotonic() + 5
        victim, pending = "", 0
        while time.monotonic() < deadline and pending < 5:
            victim, pending = _busiest(client, "crm:orders", "mes-relay")
            time.sleep(0.002)
        client.close()
        victim = victim or "mes-2"
        notes["relay"] = victim
        notes["pending_at_kill"] = pending
        stack.signal_group(f"sidecar-{victim}", signal.SIGKILL)
        burst.join(timeout=60)
    return act


def _relay_restart(stack: Stack, notes: Notes) -> None:
    stack.restart(f"sidecar-{notes.get('relay', 'mes-2')}")


def _pricing_kill_mid_job(stack: Stack, notes: Notes) -> None:
    """SIGKILL a worker while it holds a job (its stream entry pending); waits up to 10 s for one."""
    client = redis.Redis.from_url(stack.redis_url(2))
    deadline = time.monotonic() + 10
    victim = ""
    while time.monotonic() < deadline and victim not in PRICING_WORKERS:
        victim, _ = _busiest(client, "pricing:stream", "pricing-workers")
        time.sleep(0.005)
    client.close()
    notes["mid_job"] = victim in PRICING_WORKERS
    victim = victim if victim in PRICING_WORKERS else PRICING_WORKERS[0]
    notes["worker"] = victim
    stack.signal_group(victim, signal.SIGKILL)


def _pricing_restart_killed(stack: Stack, notes: Notes) -> None:
    stack.restart(str(notes.get("worker", "pricing-worker-1")))


def _pricing_stop_all(stack: Stack, _notes: Notes) -> None:
    """SIGTERM to every worker (running jobs are finished or handed back), as a scale-to-zero does."""
    for name in PRICING_WORKERS:
        stack.process(name).stop(signal.SIGTERM, timeout=15)


def _pricing_start_all(stack: Stack, _notes: Notes) -> None:
    for name in PRICING_WORKERS:
        stack.restart(name)


def matrix(journal: Path) -> list[Fault]:
    """Every fault of the issue, in the order the full run injects them."""
    return [
        Fault("mes-kill", "MES mes-1 SIGKILLed, restarted at heal", _kill("mes-1"), _restart("mes-1"),
              detect=ENDPOINT_ALERTS),
        Fault("mes-freeze", "MES mes-1 SIGSTOP, SIGCONT at heal", _signal("mes-1", signal.SIGSTOP),
              _signal("mes-1", signal.SIGCONT), detect=ENDPOINT_ALERTS),
        Fault("mes-slow", "mes-2 answers 1.5 s late (fault proxy sidecar→MES, per chunk)", _slow(1.5),
              _slow(0.0), detect=("SidecarRouteLatencyHigh", "GatewayRouteLatencyHigh", *ENDPOINT_ALERTS)),
        Fault("sidecar-kill", "sidecar of mes-1 (probes, relay, events) SIGKILLed, restarted at heal",
              _kill("sidecar-mes-1"), _restart("sidecar-mes-1"), detect=("TargetDown", *ENDPOINT_ALERTS)),
        Fault("relay-kill", "120 CRM orders in a burst; the relay holding the most of them in flight "
              "SIGKILLed (its sidecar), restarted at heal", _relay_kill(journal), _relay_restart,
              detect=("TargetDown", *ENDPOINT_ALERTS)),
        Fault("redis-kill", "Redis SIGKILLed, restarted at heal on its append-only file", _redis_kill,
              _redis_start, detect=REDIS_ALERTS),
        Fault("redis-freeze", "Redis SIGSTOP, SIGCONT at heal", _signal("redis", signal.SIGSTOP),
              _signal("redis", signal.SIGCONT), detect=REDIS_ALERTS),
        Fault("postgres-restart", "MES PostgreSQL stopped (fast shutdown), started at heal", _pg_stop,
              _pg_start, detect=DATABASE_ALERTS),
        Fault("postgres-freeze", "MES PostgreSQL (all its processes) SIGSTOP, SIGCONT at heal",
              _signal("postgres", signal.SIGSTOP), _signal("postgres", signal.SIGCONT),
              detect=DATABASE_ALERTS),
        Fault("gateway-worker-kill", "one gateway worker SIGKILLed (the master restarts it)",
              _kill_gateway_worker, _nothing,
              no_alert="the master restarts the worker within 0.2 s while the other serves; a worker "
                       "that keeps crashing makes the master stop (5 x workers restarts a minute): "
                       "TargetDown pages"),
        Fault("gateway-reload", "gateway master SIGHUP with a changed config, SIGHUP back at heal",
              _reload(True), _reload(False),
              no_alert="a reload is an operator's action, not an incident"),
        Fault("pricing-worker-kill", "a pricing worker SIGKILLed mid-job, restarted at heal",
              _pricing_kill_mid_job, _pricing_restart_killed,
              no_alert="the other worker goes on, the job is taken over after the visibility timeout "
                       "(30 s) and priced once; a worker that stays down is TargetDown after 5 min, "
                       "all of them PricingNoWorkerConsuming (page)"),
        Fault("pricing-all-stopped", "both pricing workers stopped (SIGTERM), started again at heal",
              _pricing_stop_all, _pricing_start_all, detect=("PricingNoWorkerConsuming",)),
        Fault("alertmanager-stop", "Alertmanager stopped, restarted at heal", _kill("alertmanager"),
              _restart("alertmanager"), detect=("TargetDown",)),
    ]


SHORT = ("relay-kill", "mes-kill")  # the `make test` version: two faults
