"""One real run of the platform under a real Prometheus, shared by the tests of tests/stack.

`stack_run` starts (on ephemeral ports, in a temp folder, all stopped by PID before the tests
assert anything): the legacy MES x2 + CRM (legacy_sim) on the session's PostgreSQL/Redis, a
sidecar in front of each (the mes-1 one probing the database), one more sidecar in front of a
closed port (upstream errors), the gateway (`python -m gateway`), then Prometheus with a config
made from prometheus/prometheus.yml (same jobs, these ports, every rule file) and Alertmanager
with prometheus/alertmanager.yml. It drives traffic, waits for the scrapes, and records what
the tests need: metric names and metadata Prometheus knows, the answer to every rule and
dashboard query, rule health, and every JSON log line the processes wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import PostgresServer, RedisServer
from devstack.monitoring import start_alertmanager, start_prometheus, wait_ready
from devstack.ports import free_port, wait_for_port
from devstack.postgres import pg_bin
from devstack.process import ServerProcess
from tests.stack.stack_support import (
    PROMETHEUS,
    dashboard_queries,
    family_name,
    referenced_metrics,
    rule_queries,
)
from tests.support.gateway import gateway_config

ORDER = {"customer": "ACME", "material": "PLA", "quantity": 2, "model_name": "bracket.stl"}


@dataclass
class StackRun:
    """What one run of the platform under Prometheus showed."""

    metric_names: set[str]  # /api/v1/label/__name__/values
    metadata_names: set[str]  # /api/v1/metadata: families declared by a real scrape
    targets: list[dict[str, Any]]  # /api/v1/targets activeTargets
    query_errors: dict[str, str]  # expr -> error, for every rule and dashboard query that failed
    rule_health: list[dict[str, Any]]  # /api/v1/rules, flattened
    alertmanagers: list[str]  # URLs Prometheus sends alerts to
    log_lines: list[dict[str, Any]]  # every JSON object line of every log file
    log_dir: Path
    missing_after_wait: set[str] = field(default_factory=set)


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback)
        return json.load(resp)


def _request(method: str, url: str, body: Any = None, *, raw: bytes | None = None) -> int:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(  # noqa: S310 (loopback URLs we built)
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (loopback)
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)
    except OSError:
        return 0


def _post_order(url: str) -> int | None:
    req = urllib.request.Request(  # noqa: S310 (loopback URLs we built)
        url,
        data=json.dumps(ORDER).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (loopback)
            return int(json.load(resp)["id"])
    except (OSError, KeyError, ValueError):
        return None


def _create_database(pg: PostgresServer, name: str) -> str:
    subprocess.run(
        [
            pg_bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(pg.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qc",
            f'DROP DATABASE IF EXISTS "{name}"',
            "-c",
            f'CREATE DATABASE "{name}"',
        ],
        check=True,
        capture_output=True,
    )
    return f"postgresql://postgres@127.0.0.1:{pg.port}/{name}"


def _prometheus_config(path: Path, targets: dict[str, list[str]], alertmanager: str) -> Path:
    """prometheus/prometheus.yml with these targets, 1 s intervals and absolute rule/file_sd paths."""
    cfg = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    cfg["rule_files"] = [str(PROMETHEUS / pattern) for pattern in cfg["rule_files"]]
    cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    jobs = []
    for job in cfg["scrape_configs"]:
        name = job["job_name"]
        if name in targets:
            job.pop("file_sd_configs", None)
            labels = job.get("static_configs", [{}])[0].get("labels", {})
            job["static_configs"] = [{"targets": targets[name], "labels": labels}]
        else:
            # prometheus/alertmanager self-scrapes and the pricing workers (file_sd; their own
            # metrics are checked by tests/integration/legacy_adapters) are not part of this check
            continue
        jobs.append(job)
    assert set(targets) <= {j["job_name"] for j in jobs}, "prometheus.yml lost a job"
    cfg["scrape_configs"] = jobs
    path.write_text(yaml.safe_dump(cfg))
    return path


class _Processes:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, ServerProcess]] = []
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "PROMETHEUS_MULTIPROC_DIR", "LOG_FILE"))
        }

    def python(self, name: str, *args: str) -> ServerProcess:
        proc = ServerProcess(
            [sys.executable, *args],
            log_path=self.logs / f"{name}.log",
            env={**self.env, "LOG_FILE": str(self.logs / f"{name}.json.log"), "LOG_LEVEL": "INFO"},
        )
        proc.start()
        self.started.append((name, proc))
        return proc

    def add(self, name: str, proc: ServerProcess) -> None:
        self.started.append((name, proc))

    def check_alive(self) -> None:
        for name, proc in self.started:
            if not proc.alive():
                raise RuntimeError(f"{name} exited:\n{proc.log_tail()}")

    def stop(self) -> None:
        for _, proc in reversed(self.started):
            proc.stop(timeout=10)


def _drive_traffic(
    gw_internal: str, gw_external: str, broken_sidecar: str, redis_port: int, redis_db: int
) -> None:
    for _ in range(6):  # round robin over 3 endpoints, one closed: retries and an ejection
        _request("GET", f"{gw_internal}/orders?per_page=5")
    ids = [i for i in (_post_order(f"{gw_internal}/orders") for _ in range(4)) if i is not None]
    ids += [i for i in (_post_order(f"{gw_external}/partner/v1/orders") for _ in range(2)) if i is not None]
    assert ids, "no order could be created through the gateway"
    for order_id in ids[:3]:
        _request(
            "POST",
            f"{gw_internal}/orders/{order_id}/status",
            {"status": "PRICE_CALCULATED", "price_eur": 12.5},
        )
    _request("POST", f"{gw_internal}/orders/{ids[0]}/status", {"status": "SHIPPED"})  # 409: illegal
    _request("GET", f"{gw_external}/orders")  # 404 unmatched: internal route on the external listener
    _request("POST", f"{gw_external}/partner/v1/orders", raw=b"x" * 200_000)  # 413 body too large
    with socket.create_connection(
        ("127.0.0.1", int(urllib.parse.urlsplit(gw_external).port or 0)), 5
    ) as sock:
        sock.sendall(b"NOT A REQUEST\r\n\r\n")  # protocol error, answered before routing
        sock.recv(4096)
    _request("GET", f"{broken_sidecar}/orders")  # 502: the sidecar's legacy is a closed port
    with ThreadPoolExecutor(8) as pool:  # crm cluster breaker admits 1: some get 503 circuit-open
        list(pool.map(lambda _: _request("POST", f"{gw_internal}/crm/orders", ORDER), range(16)))
    # a poison entry on the CRM queue: the MES consumer moves it to the dead-letter stream
    subprocess.run(
        [
            "redis-cli",
            "-p",
            str(redis_port),
            "-n",
            str(redis_db),
            "XADD",
            "crm:orders",
            "*",
            "v",
            "99",
            "junk",
            "1",
        ],
        check=True,
        capture_output=True,
    )


def _wait_for_scrapes(prom: str, wanted: set[str], timeout: float = 30.0) -> tuple[set[str], set[str]]:
    """Wait until every target is up and every wanted name has a series.

    Names only declared by the scrape (HELP/TYPE, no sample: counters of events that did not
    happen) stop the wait after 3 s of all targets up; the tests judge them.
    """
    deadline = time.monotonic() + timeout
    all_up_since = None
    while True:
        names = set(_get_json(f"{prom}/api/v1/label/__name__/values")["data"])
        targets = _get_json(f"{prom}/api/v1/targets")["data"]["activeTargets"]
        declared = set(_get_json(f"{prom}/api/v1/metadata")["data"])
        if targets and all(t["health"] == "up" for t in targets):
            all_up_since = all_up_since or time.monotonic()
        missing = {
            n
            for n in wanted - names
            if family_name(n).removesuffix("_total") not in {d.removesuffix("_total") for d in declared}
        }
        settled = all_up_since is not None and (
            wanted <= names or (not missing and time.monotonic() - all_up_since > 3)
        )
        if settled or time.monotonic() > deadline:
            return names, wanted - names
        time.sleep(0.5)


def _rule_health(prom: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every rule once it has been evaluated at least twice (rate() needs two samples)."""
    deadline = time.monotonic() + timeout
    while True:
        groups = _get_json(f"{prom}/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if all(r.get("health") != "unknown" for r in rules) or time.monotonic() > deadline:
            return rules
        time.sleep(0.5)


def _query_errors(prom: str) -> dict[str, str]:
    errors = {}
    for query in [*rule_queries(), *dashboard_queries()]:
        url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": query.expr})
        try:
            _get_json(url)
        except urllib.error.HTTPError as exc:
            errors[f"{query.source}: {query.expr}"] = exc.read().decode(errors="replace")
    return errors


def _read_log_lines(log_dir: Path) -> list[dict[str, Any]]:
    lines = []
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and "@timestamp" in obj:
                    obj["_file"] = path.name
                    lines.append(obj)
    return lines


@pytest.fixture(scope="session")
def stack_run(
    pg_server: PostgresServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> StackRun:
    if shutil.which("prometheus") is None or shutil.which("prometheus-alertmanager") is None:
        pytest.fail(
            "prometheus / prometheus-alertmanager missing: apt-get install -y prometheus "
            "prometheus-alertmanager (scripts/install-deps.sh does it as root)"
        )
    root = tmp_path_factory.mktemp("stack")
    logs = root / "logs"
    logs.mkdir()
    dsn = _create_database(pg_server, "stack_metrics")
    redis_db = 7
    redis_url = f"redis://127.0.0.1:{redis_server.port}/{redis_db}"
    subprocess.run(
        ["redis-cli", "-p", str(redis_server.port), "-n", str(redis_db), "FLUSHDB"],
        check=True,
        capture_output=True,
    )
    procs = _Processes(logs)
    port = {
        name: free_port()
        for name in (
            "mes-1",
            "mes-2",
            "crm",
            "sc-mes-1",
            "sc-mes-2",
            "sc-crm",
            "sc-broken",
            "adm-mes-1",
            "adm-mes-2",
            "adm-crm",
            "adm-broken",
            "closed",
            "prometheus",
            "alertmanager",
        )
    }
    try:
        # MES #1 creates the schema; #2 waits for it (startup_wait) — start both, then the CRM
        for i in (1, 2):
            procs.python(
                f"mes-{i}",
                "-m",
                "legacy_sim",
                "mes",
                "--port",
                str(port[f"mes-{i}"]),
                "--dsn",
                dsn,
                "--instance-id",
                f"mes-{i}",
                "--price-delay",
                "0",
            )
        procs.python("crm", "-m", "legacy_sim", "crm", "--port", str(port["crm"]), "--redis-url", redis_url)
        sidecars = [
            (
                "mes-1",
                "mes",
                f"http://127.0.0.1:{port['mes-1']}",
                [
                    "--dsn",
                    dsn,
                    "--redis-url",
                    redis_url,
                    "--probe-interval",
                    "1",
                    "--terminal-count-interval",
                    "0",
                    "--relay-redis-url",  # the CRM → MES relay, as in make run
                    redis_url,
                ],
            ),
            (
                "mes-2",
                "mes",
                f"http://127.0.0.1:{port['mes-2']}",
                ["--redis-url", redis_url, "--relay-redis-url", redis_url],
            ),
            ("crm", "crm", f"http://127.0.0.1:{port['crm']}", []),
            ("broken", "mes", f"http://127.0.0.1:{port['closed']}", ["--connect-timeout", "1"]),
        ]
        for name, kind, upstream, extra in sidecars:
            procs.python(
                f"sidecar-{name}",
                "-m",
                "sidecar",
                "--kind",
                kind,
                "--instance-id",
                name,
                "--upstream",
                upstream,
                "--listen",
                f"127.0.0.1:{port['sc-' + name]}",
                "--admin",
                f"127.0.0.1:{port['adm-' + name]}",
                "--access-log",
                str(logs / f"sidecar-{name}-access.log"),
                *extra,
            )
        am = start_alertmanager(
            root, port["alertmanager"], PROMETHEUS / "alertmanager.yml", log_path=logs / "alertmanager.out"
        )
        procs.add("alertmanager", am)
        for name in ("mes-1", "mes-2", "crm", "sc-mes-1", "sc-mes-2", "sc-crm", "sc-broken"):
            wait_for_port(port[name], timeout=30)
        gw_dir = root / "gateway"
        gw_dir.mkdir()
        sc = {name: f"http://127.0.0.1:{port['sc-' + name]}" for name in ("mes-1", "mes-2", "crm")}
        cfg = gateway_config(
            gw_dir,
            clusters={
                "mes": {
                    "endpoints": [sc["mes-1"], sc["mes-2"], f"http://127.0.0.1:{port['closed']}"],
                    "balancer": "round_robin",
                    "timeouts": {"connect": 1.0, "per_try": 5.0, "overall": 10.0},
                    "retry": {"attempts": 2, "retry_on": ["connect-failure", "reset", "gateway-error"]},
                    "outlier": {
                        "consecutive_failures": 1,
                        "base_ejection_time": 30.0,
                        "max_ejection_percent": 50,
                    },
                },
                "crm": {
                    "endpoints": [sc["crm"]],
                    "health_check": {"path": "/healthz", "interval": 1.0},
                    "breaker": {"max_requests": 1, "max_pending": 0},
                },
            },
            routes=[
                {
                    "name": "partner-orders",
                    "listener": "external",
                    "prefix": "/partner/v1/orders",
                    "methods": ["GET", "POST"],
                    "cluster": "mes",
                    "rewrite_prefix": "/orders",
                    "auth": {"required": False},  # API keys are the partner-edge issue's business
                },
                {
                    "name": "orders",
                    "listener": "internal",
                    "prefix": "/orders",
                    "methods": ["GET", "POST"],
                    "cluster": "mes",
                },
                {
                    "name": "crm-orders",
                    "listener": "internal",
                    "prefix": "/crm/orders",
                    "methods": ["GET", "POST"],
                    "cluster": "crm",
                    "rewrite_prefix": "/orders",
                },
            ],
        )
        cfg["listeners"]["external"]["max_body_bytes"] = 65536  # a 200 kB POST gets 413
        cfg["logging"] = {
            "access_log": str(logs / "gateway-access.log"),
            "app_log": str(logs / "gateway.json.log"),
        }
        (gw_dir / "gateway.yaml").write_text(yaml.safe_dump(cfg))
        gw = ServerProcess(
            [sys.executable, "-m", "gateway", "--config", str(gw_dir / "gateway.yaml"), "--workers", "1"],
            log_path=logs / "gateway.log",
            env=procs.env,
        )
        gw.start()
        procs.add("gateway", gw)
        admin = f"http://127.0.0.1:{cfg['admin']['port']}"
        wait_ready(f"{admin}/readyz", gw)
        prom_cfg = _prometheus_config(
            root / "prometheus.yml",
            {
                "gateway": [f"127.0.0.1:{cfg['admin']['port']}"],
                "sidecar": [f"127.0.0.1:{port['adm-' + n]}" for n in ("mes-1", "mes-2", "crm", "broken")],
                "legacy-mes": [f"127.0.0.1:{port['mes-1']}", f"127.0.0.1:{port['mes-2']}"],
                "legacy-crm": [f"127.0.0.1:{port['crm']}"],
            },
            alertmanager=f"127.0.0.1:{port['alertmanager']}",
        )
        prom_proc = start_prometheus(root, port["prometheus"], prom_cfg, log_path=logs / "prometheus.out")
        procs.add("prometheus", prom_proc)
        prom = f"http://127.0.0.1:{port['prometheus']}"
        wait_ready(f"{prom}/-/ready", prom_proc)
        wait_ready(f"http://127.0.0.1:{port['alertmanager']}/-/ready", am)

        lst = cfg["listeners"]
        _drive_traffic(
            f"http://127.0.0.1:{lst['internal']['port']}",
            f"http://127.0.0.1:{lst['external']['port']}",
            f"http://127.0.0.1:{port['sc-broken']}",
            redis_server.port,
            redis_db,
        )
        procs.check_alive()
        names, missing = _wait_for_scrapes(prom, set(referenced_metrics()))
        run = StackRun(
            metric_names=names,
            metadata_names=set(_get_json(f"{prom}/api/v1/metadata")["data"]),
            targets=_get_json(f"{prom}/api/v1/targets")["data"]["activeTargets"],
            query_errors=_query_errors(prom),
            rule_health=_rule_health(prom),
            alertmanagers=[
                a["url"] for a in _get_json(f"{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
            ],
            log_lines=[],
            log_dir=logs,
            missing_after_wait=missing,
        )
    finally:
        procs.stop()
    run.log_lines = _read_log_lines(logs)  # after the stop: buffered access logs are flushed
    return run
