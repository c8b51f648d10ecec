"""One real run of the platform under a real Prometheus, shared by the tests of tests/stack.

`stack_run` starts (on ephemeral ports, in a temp folder, all stopped by PID before the tests
assert anything): the legacy MES x2 + CRM (legacy_sim) on a PostgreSQL primary with a streaming replica (as
`MES_REPLICA=1 make run`) and the session's Redis, a sidecar in front of each (the mes-1 one
probing the database's replica and exporting its lag), one more sidecar in front of a
closed port (upstream errors), one pricing worker (`python -m legacy_adapters.worker`, pricing
through the mes-1 sidecar), the gateway (`python -m gateway`) configured like `make run`'s
config/gateway.yaml — API keys, per-tier rate limits, the response cache with its event feed,
adaptive concurrency on `mes`, the quote job API — then Prometheus with a config made from
prometheus/prometheus.yml (same jobs, these ports, every rule file) and Alertmanager with
prometheus/alertmanager.yml. It drives traffic, waits for the scrapes, and records what the
tests need: metric names and metadata Prometheus knows, the answer to every rule and dashboard
query, rule health, and every JSON log line the processes wrote.
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

from devstack import RedisServer
from devstack.exporters import start_node_exporter, start_redis_exporter
from devstack.monitoring import start_alertmanager, start_prometheus, wait_ready
from devstack.ports import free_port, refusing_port, wait_for_port
from devstack.process import ServerProcess
from legacy_sim.pricing.samples import box_stl_binary
from tests.stack.consoles_browser import ConsolePage, console_page_names, record_consoles
from tests.stack.stack_support import (
    PROMETHEUS,
    dashboard_queries,
    family_name,
    referenced_metrics,
    rule_queries,
)
from tests.support.gateway import gateway_config
from tests.support.partner_edge import api_keys_section, make_keys
from tests.support.replica import ReplicaPair

ORDER = {"customer": "ACME", "material": "PLA", "quantity": 2, "model_name": "bracket.stl"}
STL = {"Content-Type": "model/stl"}
#: Tiers of the test: `gold` as in config/gateway.yaml; `trial` so small that a few requests get 429.
TIERS = {
    "gold": {"burst": "50/second", "rate": "1000/minute", "quota": "200000/day"},
    "trial": {"burst": "2/second", "rate": "60/minute"},
}


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
    console_pages: dict[str, ConsolePage] = field(default_factory=dict)  # URL → what Chromium showed
    console_problem: str = ""  # why the browser could not run, if it could not


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback)
        return json.load(resp)


def _exchange(
    method: str,
    url: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str]]:
    """(status, response headers); status 0 when the connection failed."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(  # noqa: S310 (loopback URLs we built)
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (loopback)
            resp.read()
            return int(resp.status), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code), dict(exc.headers)
    except OSError:
        return 0, {}


def _request(
    method: str,
    url: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    return _exchange(method, url, body, raw=raw, headers=headers)[0]


def _post_order(url: str, headers: dict[str, str] | None = None) -> int | None:
    req = urllib.request.Request(  # noqa: S310 (loopback URLs we built)
        url,
        data=json.dumps(ORDER).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (loopback)
            return int(json.load(resp)["id"])
    except (OSError, KeyError, ValueError):
        return None


def _gateway_config(gw_dir: Path, port: dict[str, int], redis_url: str, store: Path) -> dict[str, Any]:
    """config/gateway.yaml's shape on the test's ports: every policy `make run` has, on the test Redis."""
    sc = {name: f"http://127.0.0.1:{port['sc-' + name]}" for name in ("mes-1", "mes-2", "crm")}
    orders_cache = {"ttl": 30, "stale_while_revalidate": 10, "stale_if_error": 120,
                    "key_params": {"status": None, "page": 1, "per_page": 50}}
    partner_cache = {"ttl": 10, "stale_if_error": 60, "vary_partner": True,
                     "key_params": {"status": None, "page": 1, "per_page": 20, "partner_id": None}}
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
                "breaker": {"max_requests": 512, "max_pending": 64},
                "adaptive_concurrency": {"initial_limit": 20, "min_limit": 2, "max_limit": 200,
                                         "max_queue": 50, "max_wait": 0.2},
            },
            "crm": {
                "endpoints": [sc["crm"]],
                "health_check": {"path": "/healthz", "interval": 1.0},
                "breaker": {"max_requests": 1, "max_pending": 0},
            },
        },
        routes=[
            {
                "name": "partner-quotes",
                "listener": "external",
                "prefix": "/partner/v1/quotes",
                "methods": ["GET", "POST"],
                "handler": "quotes",
                "max_body_bytes": 65536,
                "auth": {"scopes": {"GET": ["quotes:read"], "POST": ["quotes:write"]}},
            },
            {
                "name": "partner-orders",
                "listener": "external",
                "prefix": "/partner/v1/orders",
                "methods": ["GET", "POST"],
                "cluster": "mes",
                "rewrite_prefix": "/orders",
                "partner_scope": "orders",
                "auth": {"scopes": {"GET": ["orders:read"], "POST": ["orders:write"]}},
                "ratelimit": {"on_backend_error": "local"},
                "cache": partner_cache,
            },
            {
                "name": "orders",
                "listener": "internal",
                "prefix": "/orders",
                "methods": ["GET", "POST"],
                "cluster": "mes",
                "cache": orders_cache,
            },
            {
                "name": "crm-orders",
                "listener": "internal",
                "prefix": "/crm/orders",
                "methods": ["GET", "POST"],
                "cluster": "crm",
                "rewrite_prefix": "/orders",
            },
            {
                "name": "quotes",
                "listener": "internal",
                "prefix": "/quotes",
                "methods": ["GET", "POST"],
                "handler": "quotes",
                "max_body_bytes": 65536,
            },
        ],
        api_keys=api_keys_section(store),
        ratelimit={"redis_url": redis_url, "default_tier": "gold", "tiers": TIERS},
        quotes={"redis_url": redis_url, "backlog_bound": 50, "probe_interval": 0.5},
        cache={"backend": "redis", "redis_url": redis_url, "events_redis_url": redis_url},
    )
    cfg["listeners"]["internal"]["max_body_bytes"] = 65536  # a 200 kB POST gets 413
    return cfg


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
        else:  # the alertmanager self-scrape and make run's absent Elasticsearch are not part of this check
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
    gw_internal: str,
    gw_external: str,
    broken_sidecar: str,
    redis_port: int,
    redis_db: int,
    keys: dict[str, str],
) -> None:
    partner = {"X-API-Key": keys["acme"]}
    no_cache = {"Cache-Control": "no-cache"}  # refetch: these reads must reach the endpoints
    for _ in range(6):  # round robin over 3 endpoints, one closed: retries and an ejection
        _request("GET", f"{gw_internal}/orders?per_page=5", headers=no_cache)
    ids = [i for i in (_post_order(f"{gw_internal}/orders") for _ in range(4)) if i is not None]
    partner_ids = [_post_order(f"{gw_external}/partner/v1/orders", partner) for _ in range(2)]
    ids += [i for i in partner_ids if i is not None]
    assert ids, "no order could be created through the gateway"
    for order_id in ids[:3]:
        _request(
            "POST",
            f"{gw_internal}/orders/{order_id}/status",
            {"status": "PRICE_CALCULATED", "price_eur": 12.5},
        )
    _request("POST", f"{gw_internal}/orders/{ids[0]}/status", {"status": "SHIPPED"})  # 409: illegal
    _request("GET", f"{gw_external}/orders")  # 404 unmatched: internal route on the external listener
    _request("POST", f"{gw_internal}/orders", raw=b"x" * 200_000)  # 413 body too large (proxy)
    with socket.create_connection(
        ("127.0.0.1", int(urllib.parse.urlsplit(gw_external).port or 0)), 5
    ) as sock:
        sock.sendall(b"NOT A REQUEST\r\n\r\n")  # protocol error, answered before routing
        sock.recv(4096)
    _request("GET", f"{broken_sidecar}/orders")  # 502: the sidecar's legacy is a closed port
    with ThreadPoolExecutor(8) as pool:  # crm cluster breaker admits 1: some get 503 circuit-open
        list(pool.map(lambda _: _request("POST", f"{gw_internal}/crm/orders", ORDER), range(16)))
    # partner edge: auth refusals (missing, invalid), a tier over its burst (429s)
    assert _request("GET", f"{gw_external}/partner/v1/orders") == 401
    assert _request("GET", f"{gw_external}/partner/v1/orders", headers={"X-API-Key": "mes_0_x"}) == 401
    flood = [
        _request("GET", f"{gw_external}/partner/v1/orders", headers={"X-API-Key": keys["trial"]})
        for _ in range(6)
    ]
    assert 429 in flood, flood
    # quotes: one model twice (the second joins the first or reads its cached price), another one
    # from a partner; the pricing worker prices them through the mes-1 sidecar
    for url, body, headers in (
        (f"{gw_internal}/quotes?material=PLA", box_stl_binary(), STL),
        (f"{gw_internal}/quotes?material=PLA", box_stl_binary(), STL),
        (f"{gw_external}/partner/v1/quotes?material=PLA", box_stl_binary(12, 10, 10), {**STL, **partner}),
    ):
        status = _request("POST", url, raw=body, headers=headers)
        assert status in (200, 202), (url, status)
    _read_until_cache_hit(f"{gw_internal}/orders?per_page=5")
    _read_until_cache_hit(f"{gw_external}/partner/v1/orders", partner)
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


def _read_until_cache_hit(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> None:
    """Read until the gateway answers from its cache (the sidecars' events may invalidate earlier reads)."""
    deadline = time.monotonic() + timeout
    while True:
        status, answer = _exchange("GET", url, headers=headers)
        cache_status = answer.get("Cache-Status", "")
        if status == 200 and "; hit" in cache_status:
            return
        if time.monotonic() >= deadline:  # the last answer whole, to tell which part failed
            req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (loopback)
            try:
                with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (loopback)
                    last = f"{resp.status} {dict(resp.headers)} {resp.read()[:600]!r}"
            except urllib.error.HTTPError as exc:
                last = f"{exc.code} {dict(exc.headers)} {exc.read()[:600]!r}"
            except OSError as exc:
                last = repr(exc)
            raise AssertionError(f"{url}: no cache hit ({status}, {cache_status!r}); last answer: {last}")
        time.sleep(0.1)


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
    pg_replica_pair: ReplicaPair, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> StackRun:
    if shutil.which("prometheus") is None or shutil.which("prometheus-alertmanager") is None:
        pytest.fail(
            "prometheus / prometheus-alertmanager missing: apt-get install -y prometheus "
            "prometheus-alertmanager (scripts/install-deps.sh does it as root)"
        )
    root = tmp_path_factory.mktemp("stack")
    logs = root / "logs"
    logs.mkdir()
    dsn, read_dsn = pg_replica_pair.database()
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
            "prometheus",
            "alertmanager",
            "pricing-worker",
            "mesdb-archiver",
            "redis-exporter",
            "node-exporter",
        )
    }
    # the upstream that refuses connections: held bound (never listening) while the stack runs,
    # so no server of this run or of another process can be started on it
    refusing = refusing_port()
    port["closed"] = refusing.__enter__()
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
                    "--read-dsn",
                    read_dsn,
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
        # one pricing worker, pricing through the mes-1 sidecar like make run's workers
        procs.python(
            "pricing-worker-1",
            "-m",
            "legacy_adapters.worker",
            "--redis-url",
            redis_url,
            "--backend",
            f"http://127.0.0.1:{port['sc-mes-1']}",
            "--concurrency",
            "1",
            "--name",
            "pricing-worker-1",
            "--metrics-port",
            str(port["pricing-worker"]),
            "--webhook-secrets",  # as make run: webhooks on (the store may stay absent)
            str(root / "webhook-secrets.json"),
            "--wait-objectives",  # as make run: the per-tier queue-wait objectives the alert reads
            "gold=600,silver=1200,bronze=1800,internal=600",
        )
        am = start_alertmanager(
            root, port["alertmanager"], PROMETHEUS / "alertmanager.yml", log_path=logs / "alertmanager.out"
        )
        procs.add("alertmanager", am)
        started = ("mes-1", "mes-2", "crm", "sc-mes-1", "sc-mes-2", "sc-crm", "sc-broken", "pricing-worker")
        for name in started:
            wait_for_port(port[name], timeout=30)
        # as make run (MESDB=1): the split prepared on the schema the MES created, the archiver running
        prepared = subprocess.run(
            [sys.executable, "-m", "mesdb", "--dsn", dsn, "split", "--prepare-only"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert prepared.returncode == 0, prepared.stderr
        procs.python(
            "mesdb-archiver",
            "-m",
            "mesdb",
            "--dsn",
            dsn,
            "archive",
            "--every",
            "1",
            "--metrics-port",
            str(port["mesdb-archiver"]),
        )
        wait_for_port(port["mesdb-archiver"], timeout=30)
        # the capacity model's exporters, as make run starts them (devstack/exporters.py)
        procs.add("redis-exporter", start_redis_exporter(logs, port["redis-exporter"],
                                                         f"redis://127.0.0.1:{redis_server.port}"))
        stores = {"metrics": root / "prometheus", "logs": logs, "mes_database": root}
        procs.add("node-exporter", start_node_exporter(root, port["node-exporter"], stores,
                                                       log_path=logs / "node-exporter.log"))
        gw_dir = root / "gateway"
        gw_dir.mkdir()
        store, plain_keys = make_keys(
            gw_dir,
            ("acme", "gold", ("orders:read", "orders:write", "quotes:read", "quotes:write")),
            ("trial-partner", "trial", ("orders:read",)),
        )
        keys = dict(zip(("acme", "trial"), plain_keys, strict=True))
        cfg = _gateway_config(gw_dir, port, redis_url, store)
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
                "pricing-workers": [f"127.0.0.1:{port['pricing-worker']}"],
                "mesdb-archiver": [f"127.0.0.1:{port['mesdb-archiver']}"],
                "redis": [f"127.0.0.1:{port['redis-exporter']}"],
                "node": [f"127.0.0.1:{port['node-exporter']}"],
                "prometheus": [f"127.0.0.1:{port['prometheus']}"],  # its TSDB: the metrics store
            },
            alertmanager=f"127.0.0.1:{port['alertmanager']}",
        )
        prom_proc = start_prometheus(root, port["prometheus"], prom_cfg, log_path=logs / "prometheus.out")
        procs.add("prometheus", prom_proc)
        prom = f"http://127.0.0.1:{port['prometheus']}"
        wait_ready(f"{prom}/-/ready", prom_proc)
        wait_ready(f"http://127.0.0.1:{port['alertmanager']}/-/ready", am)

        lst = cfg["listeners"]
        try:
            _drive_traffic(
                f"http://127.0.0.1:{lst['internal']['port']}",
                f"http://127.0.0.1:{lst['external']['port']}",
                f"http://127.0.0.1:{port['sc-broken']}",
                redis_server.port,
                redis_db,
                keys,
            )
        except AssertionError as exc:  # with what the gateway logged: the answer alone rarely says why
            gateway_log = logs / "gateway.log"
            tail = gateway_log.read_text(errors="replace")[-4000:] if gateway_log.exists() else "(no log)"
            raise AssertionError(f"{exc}\n--- {gateway_log} (tail) ---\n{tail}") from exc
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
        run.console_pages, run.console_problem = record_consoles(prom, console_page_names())
    finally:
        procs.stop()
        refusing.__exit__(None, None, None)
    run.log_lines = _read_log_lines(logs)  # after the stop: buffered access logs are flushed
    return run
