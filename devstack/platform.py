"""`make run`: the whole platform on embedded defaults, under ``.run/``; one Ctrl-C stops it.

Starts, in order: a private PostgreSQL and Redis, the legacy MES x2 (sharing one
database) and CRM stand-ins, then the gateway; prints the URLs and curl lines.
While it runs, a crashed child is restarted with backoff (``devstack/supervisor.py``);
everything is stopped by PID, in reverse order, on Ctrl-C or when a child keeps crashing.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack import exporters, mes_database, monitoring, moved_ports
from devstack.ports import wait_for_port
from devstack.postgres import PostgresServer
from devstack.process import ServerProcess, wait_ready
from devstack.redis import RedisServer
from devstack.replica import ReplicaServer
from devstack.supervisor import CrashLoop, Supervisor
from gateway.auth.startup_secrets import DEV_ENV, DEV_OPERATOR_TOKEN


@dataclass
class Ports:
    postgres: int = int(os.environ.get("MES_EDGE_PG_PORT", "55432"))
    postgres_replica: int = int(os.environ.get("MES_EDGE_PG_REPLICA_PORT", "55433"))  # MES_REPLICA=1 only
    redis: int = int(os.environ.get("MES_EDGE_REDIS_PORT", "56379"))
    mes: tuple[int, ...] = (9101, 9102)
    crm: int = 9201
    mes_sidecars: tuple[int, ...] = (9111, 9112)      # proxy; admin = port + 10
    crm_sidecar: int = 9211
    prometheus: int = 9090
    alertmanager: int = 9093
    alert_webhook: int = 9095
    external: int = 8080
    internal: int = 8081
    admin: int = 9901
    pricing_metrics: int = 9301                         # pricing worker i serves /metrics on 9301 + i
    mesdb_archiver_metrics: int = 9401                  # `mesdb archive --every` (MESDB=1, the default)
    redis_exporter: int = 9501                          # not 9121/9100, the exporters' defaults: a sidecar
    node_exporter: int = 9502                           # admin listens on 9121; Debian's own daemons on both

    def listening(self, pricing_workers: int = 2) -> dict[str, int]:
        """Every TCP port the platform listens on, by what listens there."""
        ports = {"postgres": self.postgres, "postgres replica": self.postgres_replica,
                 "redis": self.redis, "crm": self.crm,
                 "crm sidecar": self.crm_sidecar, "crm sidecar admin": self.crm_sidecar + 10,
                 "prometheus": self.prometheus, "alertmanager": self.alertmanager,
                 "alert webhook": self.alert_webhook, "gateway external": self.external,
                 "gateway internal": self.internal, "gateway admin": self.admin,
                 "mesdb archiver metrics": self.mesdb_archiver_metrics,
                 "redis exporter": self.redis_exporter, "node exporter": self.node_exporter}
        for i, (mes, sidecar) in enumerate(zip(self.mes, self.mes_sidecars, strict=True), start=1):
            ports |= {f"mes-{i}": mes, f"mes-{i} sidecar": sidecar, f"mes-{i} sidecar admin": sidecar + 10}
        for i in range(pricing_workers):
            ports[f"pricing worker {i + 1} metrics"] = self.pricing_metrics + i
        return ports

    def shifted(self, offset: int) -> Ports:
        """Every port + ``offset`` (tests beside a developer's `make run`)."""
        o = offset
        return Ports(postgres=self.postgres + o, postgres_replica=self.postgres_replica + o,
                     redis=self.redis + o, mes=tuple(p + o for p in self.mes),
                     crm=self.crm + o, mes_sidecars=tuple(p + o for p in self.mes_sidecars),
                     crm_sidecar=self.crm_sidecar + o, prometheus=self.prometheus + o,
                     alertmanager=self.alertmanager + o, alert_webhook=self.alert_webhook + o,
                     external=self.external + o, internal=self.internal + o, admin=self.admin + o,
                     pricing_metrics=self.pricing_metrics + o,
                     mesdb_archiver_metrics=self.mesdb_archiver_metrics + o,
                     redis_exporter=self.redis_exporter + o, node_exporter=self.node_exporter + o)

    def moved_from(self, default: Ports, pricing_workers: int = 2) -> dict[int, int]:
        """Default port → the one in use, for each that differs (the monitoring configs name defaults)."""
        mine, theirs = self.listening(pricing_workers), default.listening(pricing_workers)
        return {theirs[name]: port for name, port in mine.items() if port != theirs[name]}


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))  # all addresses: the external listener binds them
        except OSError:
            return False
    return True


def free_offset(attempts: int = 50) -> int:
    """An offset that moves every port of `make run` onto a free one (``Ports().shifted(offset)``)."""
    ports = Ports().listening().values()
    for offset in random.sample(range(1000, 65535 - max(ports)), attempts):
        if all(_free(port + offset) for port in ports):
            return offset
    raise RuntimeError(f"no offset in {attempts} tries leaves all of make run's ports free")


@dataclass
class Platform:
    root: Path
    ports: Ports = field(default_factory=Ports)
    price_delay: float = float(os.environ.get("MES_PRICE_DELAY", "2"))
    #: MES_REPLICA=1: a streaming replica of the MES database; the probing sidecar reads it (docs/mes-data.md)
    replica: bool = os.environ.get("MES_REPLICA", "0") == "1"
    #: the gateway's YAML (the chaos harness starts it on a copy it can change and SIGHUP)
    gateway_config: str = "config/gateway.yaml"
    #: legacy instance id → the URL its sidecar forwards to instead of the instance itself
    #: (the chaos harness puts a fault-injecting proxy in between: devstack/fault_proxy.py)
    sidecar_upstreams: dict[str, str] = field(default_factory=dict)
    started: list[tuple[str, PostgresServer | RedisServer | ServerProcess]] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def _python(self, name: str, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
        # dev mode: the gateway and workers accept the dev secrets below (refused anywhere else)
        proc = ServerProcess([sys.executable, *args], log_path=self.logs / f"{name}.log",
                             env={**os.environ, DEV_ENV: "1", **(env or {})})
        proc.start()
        self.started.append((name, proc))
        return proc

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        # pg_stat_statements preloaded: `mesdb analyse` reads it
        pg = PostgresServer(self.root / "postgres", port=self.ports.postgres, database="mes",
                            settings={"shared_preload_libraries": "pg_stat_statements"}).start()
        self.started.append(("postgres", pg))
        if mes_database.enabled():
            mes_database.prepare(pg.dsn)
        elif reverted := mes_database.restore_legacy(pg.dsn):  # MESDB=0: the legacy schema as it is
            print(f"MESDB=0: reverted what an earlier run's database kit left: {', '.join(reverted)} "
                  "(docs/mes-data.md)", flush=True)
        read_dsn = None
        if self.replica:
            replica = ReplicaServer(pg, self.root / "postgres-replica", port=self.ports.postgres_replica)
            replica.start()
            self.started.append(("postgres-replica", replica))
            read_dsn = replica.dsn
        redis = RedisServer(self.root / "redis", port=self.ports.redis, persistent=True).start()
        self.started.append(("redis", redis))
        for i, port in enumerate(self.ports.mes, start=1):
            args = ["-m", "legacy_sim", "mes", "--host", "127.0.0.1", "--port", str(port), "--dsn", pg.dsn,
                    "--instance-id", f"mes-{i}", "--price-delay", str(self.price_delay)]
            # no --consume-crm: the MES sidecars relay crm:orders with backpressure (--relay-redis-url)
            self._python(f"mes-{i}", *args, env={"LOG_FILE": str(self.logs / f"mes-{i}.json.log")})
        self._python("crm", "-m", "legacy_sim", "crm", "--host", "127.0.0.1", "--port", str(self.ports.crm),
                     "--redis-url", redis.url, env={"LOG_FILE": str(self.logs / "crm.json.log")})
        for port in (*self.ports.mes, self.ports.crm):
            wait_for_port(port, timeout=30)
        if mes_database.enabled():
            self._python("mesdb-archiver", "-m", "mesdb", "--dsn", pg.dsn, "archive",
                         "--every", mes_database.archive_every_s(),
                         "--metrics-port", str(self.ports.mesdb_archiver_metrics),
                         env={"LOG_FILE": str(self.logs / "mesdb-archiver.json.log")})
        self._start_sidecars(pg.dsn, redis.url, read_dsn)
        self._start_pricing_workers(redis.url)
        gw_env = {**self._gateway_addresses(redis.url),
                  "GATEWAY_ACCESS_LOG": str(self.logs / "gateway-access.log"),
                  "GATEWAY_APP_LOG": str(self.logs / "gateway.json.log"),
                  "PROMETHEUS_MULTIPROC_DIR": str(self.root / "gateway-metrics"),
                  # the store `python -m gateway.api_keys create` writes (same variable, same default)
                  "GATEWAY_API_KEY_STORE": os.environ.get("GATEWAY_API_KEY_STORE",
                                                          str(self.root / "api-keys.json")),
                  "GATEWAY_OPERATOR_TOKENS": os.environ.get("GATEWAY_OPERATOR_TOKENS", DEV_OPERATOR_TOKEN)}
        workers = os.environ.get("GATEWAY_WORKERS", "2")
        gateway = self._python("gateway", "-m", "gateway", "--config", self.gateway_config,
                               "--workers", workers, env=gw_env)
        wait_ready(f"http://127.0.0.1:{self.ports.admin}/readyz", gateway, timeout=60)
        self._start_monitoring(redis.url)

    def _gateway_addresses(self, redis_url: str) -> dict[str, str]:
        """config/gateway.yaml's variables for this platform's ports (the defaults unless moved)."""
        p, base = self.ports, redis_url.rsplit("/", 1)[0]
        wanted = {"GATEWAY_EXTERNAL_PORT": str(p.external), "GATEWAY_INTERNAL_PORT": str(p.internal),
                  "GATEWAY_ADMIN_PORT": str(p.admin), "CRM_URL": f"http://127.0.0.1:{p.crm_sidecar}",
                  "GATEWAY_RATELIMIT_REDIS_URL": f"{base}/1", "PRICING_REDIS_URL": f"{base}/2",
                  "GATEWAY_CACHE_REDIS_URL": f"{base}/3", "GATEWAY_CACHE_EVENTS_REDIS_URL": f"{base}/0",
                  "GATEWAY_USAGE_REDIS_URL": f"{base}/4",
                  **{f"MES_{i}_URL": f"http://127.0.0.1:{port}" for i, port in enumerate(p.mes_sidecars, 1)}}
        return {name: os.environ.get(name, value) for name, value in wanted.items()}

    def _start_monitoring(self, redis_url: str) -> None:
        """The exporters, Prometheus + Alertmanager (Debian packages) with the bundled config; alerts
        go to a log."""
        config = Path(__file__).resolve().parents[1] / "prometheus"
        p = self.ports
        prometheus_yml, alertmanager_yml = config / "prometheus.yml", config / "alertmanager.yml"
        if moved := p.moved_from(Ports(), int(os.environ.get("PRICING_WORKERS", "2"))):
            out = self.root / "monitoring"
            prometheus_yml = moved_ports.prometheus_config(prometheus_yml, out, moved)
            alertmanager_yml = moved_ports.alertmanager_config(alertmanager_yml, out, moved)
        redis_exporter = exporters.start_redis_exporter(self.logs, p.redis_exporter,
                                                        redis_url.rsplit("/", 1)[0])
        self.started.append(("redis-exporter", redis_exporter))
        # the stores whose disks the capacity model watches (docs/capacity.md), by where they live
        stores = {"metrics": self.root / "prometheus", "logs": self.logs,
                  "mes_database": self.root / "postgres"}
        node_exporter = exporters.start_node_exporter(self.root, p.node_exporter, stores,
                                                      log_path=self.logs / "node-exporter.log")
        self.started.append(("node-exporter", node_exporter))
        hook = monitoring.start_webhook_logger(self.root, p.alert_webhook, log_path=self.logs / "alerts.log")
        self.started.append(("alert-webhook", hook))
        am = monitoring.start_alertmanager(self.root, p.alertmanager, alertmanager_yml,
                                           log_path=self.logs / "alertmanager.log")
        self.started.append(("alertmanager", am))
        prom = monitoring.start_prometheus(self.root, p.prometheus, prometheus_yml,
                                           log_path=self.logs / "prometheus.log")
        self.started.append(("prometheus", prom))
        monitoring.wait_ready(f"http://127.0.0.1:{p.prometheus}/-/ready", prom)
        monitoring.wait_ready(f"http://127.0.0.1:{p.alertmanager}/-/ready", am)

    def _start_pricing_workers(self, redis_url: str) -> None:
        """``$PRICING_WORKERS`` (2) pricing workers on Redis db 2, each calling one MES (via its sidecar)."""
        queue_url = redis_url.rsplit("/", 1)[0] + "/2"
        for i in range(int(os.environ.get("PRICING_WORKERS", "2"))):
            sidecar = self.ports.mes_sidecars[i % len(self.ports.mes_sidecars)]
            self._python(f"pricing-worker-{i + 1}", "-m", "legacy_adapters.worker", "--redis-url", queue_url,
                         "--backend", f"http://127.0.0.1:{sidecar}", "--concurrency", "1",
                         "--name", f"pricing-worker-{i + 1}",
                         "--usage-redis-url", redis_url.rsplit("/", 1)[0] + "/4",  # priced models per partner
                         "--metrics-port", str(self.ports.pricing_metrics + i),
                         # config/gateway.yaml's tiers (docs/pricing.md, fair scheduling); internal: operators
                         "--wait-objectives", "gold=600,silver=1200,bronze=1800,internal=600",
                         env={"LOG_FILE": str(self.logs / f"pricing-worker-{i + 1}.json.log"),
                              # per-partner secrets, written by `python -m gateway.api_keys create`
                              "PRICING_WEBHOOK_SECRETS_FILE": str(self.root / "webhook-secrets.json")})

    def _start_sidecars(self, dsn: str, redis_url: str, read_dsn: str | None = None) -> None:
        """One sidecar in front of each legacy instance; the gateway talks to the sidecars."""
        pairs = zip(self.ports.mes, self.ports.mes_sidecars, strict=True)
        legacy = [("mes", f"mes-{i}", port, sidecar) for i, (port, sidecar) in enumerate(pairs, start=1)]
        legacy.append(("crm", "crm-1", self.ports.crm, self.ports.crm_sidecar))
        for kind, instance, port, listen in legacy:
            args = ["-m", "sidecar", "--kind", kind, "--instance-id", instance,
                    "--listen", f"127.0.0.1:{listen}", "--admin", f"127.0.0.1:{listen + 10}",
                    "--upstream", self.sidecar_upstreams.get(instance, f"http://127.0.0.1:{port}"),
                    "--access-log", str(self.logs / f"sidecar-{instance}-access.log")]
            if kind == "mes":
                args += ["--redis-url", redis_url,  # order-change events
                         "--relay-redis-url", redis_url]  # CRM queue → this MES, with backpressure
            if instance == "mes-1":
                # business probes: one sidecar per database is enough; polling the status history
                # every 0.5 s keeps changes made directly on the MES inside the cache's 1 s promise
                args += ["--dsn", dsn, "--history-poll-interval", "0.5"]
                if read_dsn:  # the probes read the replica; the history poller stays on the primary
                    args += ["--read-dsn", read_dsn]
            self._python(f"sidecar-{instance}", *args,
                         env={"LOG_FILE": str(self.logs / f"sidecar-{instance}.json.log")})
        for listen in (*self.ports.mes_sidecars, self.ports.crm_sidecar):
            wait_for_port(listen, timeout=30)

    def stop(self) -> None:
        for name, proc in reversed(self.started):
            print(f"  stopping {name} (pid {proc.pid})", flush=True)
            proc.stop()
        self.started.clear()

    def _replica_line(self) -> str:
        if not self.replica:
            return ""
        return (f"\n  MES read replica     postgresql://postgres@127.0.0.1:{self.ports.postgres_replica}/mes"
                "   (mes-1's sidecar probes read it; lag: mes_replica_lag_seconds)")

    def _database_lines(self) -> str:
        """The read replica (MES_REPLICA=1) and the archiver's /metrics (MESDB=1) lines, when they run."""
        return self._replica_line() + self._archiver_line()

    def _archiver_line(self) -> str:
        if not mes_database.enabled():
            return ""
        return (f"\n  MES archiver         http://127.0.0.1:{self.ports.mesdb_archiver_metrics}/metrics"
                "   (mesdb archive --every; alert MesdbArchiverStalled, docs/metrics-mesdb.md)")

    def banner(self) -> str:
        """What `make run` prints when everything is up: every URL in it answers 200 to a plain GET
        (tests/e2e/test_readme_banner_urls.py fetches them all)."""
        p = self.ports
        local = "http://127.0.0.1"
        consoles = f"{local}:{p.prometheus}/consoles"  # prometheus/consoles/ (grafana/build_consoles.py)
        return f"""
mes-edge is up (state and logs in {self.root}/). Ctrl-C stops everything.
A process that crashes is restarted (restarts: {self.root}/children.json); one that keeps crashing stops all.

  external (partners)  {local}:{p.external}/partner/v1/openapi.json   (the rest needs an API key)
  internal (operators) {local}:{p.internal}/orders   (quote jobs: POST /quotes with an STL, see README)
  admin                {local}:{p.admin}/metrics  {local}:{p.admin}/healthz  {local}:{p.admin}/readyz
                       (/config, /upstreams, /cache/purge: with the operator token below)
  sidecars             MES {local}:{p.mes_sidecars[0]}  {local}:{p.mes_sidecars[1]}
                       CRM {local}:{p.crm_sidecar}
                       (their /metrics on port + 10)
  prometheus           {local}:{p.prometheus}/classic/alerts  {local}:{p.prometheus}/classic/graph
                       (Debian's Prometheus 2.42 has only the classic UI: /classic/alerts, not /alerts)
  dashboards           {consoles}/index.html   (the Grafana dashboards, drawn by Prometheus)
                       {consoles}/gateway.html  {consoles}/orders.html
                       {consoles}/pricing.html  {consoles}/capacity.html
                       (capacity dates: python -m telemetry forecast --prometheus-url <the prometheus above>)
  exporters            Redis {local}:{p.redis_exporter}/metrics  disks {local}:{p.node_exporter}/metrics
                       (the capacity model's Redis ops/s and store disks: docs/capacity.md)
  alertmanager         {local}:{p.alertmanager}/api/v2/alerts   (Debian's package has no web UI: use the API
                       or amtool --alertmanager.url={local}:{p.alertmanager} alert query)
                       alerts are logged to {self.logs}/alerts.log (drill: docs/observability-stack.md)
  legacy MES           {local}:{p.mes[0]}  {local}:{p.mes[1]}   CRM {local}:{p.crm}{self._database_lines()}

Try:
  curl -s '{local}:{p.internal}/orders?per_page=5'
  curl -s -X POST {local}:{p.internal}/orders -H 'Content-Type: application/json' \\
       -d '{{"customer": "ACME", "material": "PLA", "quantity": 2, "model_name": "bracket.stl"}}'
  curl -s -X POST {local}:{p.internal}/crm/orders -H 'Content-Type: application/json' \\
       -d '{{"customer": "ACME", "material": "PETG", "quantity": 1, "model_name": "housing.stl"}}'
  curl -s {local}:{p.external}/orders        # 404 problem+json: internal routes are not external
  curl -s {local}:{p.admin}/upstreams -H 'Authorization: Bearer {DEV_OPERATOR_TOKEN}'  # or /config
  .venv/bin/python -m legacy_sim seed --dsn postgresql://postgres@127.0.0.1:{p.postgres}/mes --orders 1000000
  .venv/bin/python -m mesdb --dsn postgresql://postgres@127.0.0.1:{p.postgres}/mes analyse  # docs/mes-data.md
"""


def run() -> int:
    """`make run`: start everything, supervise the children (``devstack.supervisor``) until Ctrl-C.

    ``MES_EDGE_RUN_DIR`` (``.run``) holds the state; ``MES_EDGE_PORT_OFFSET`` moves every port by
    that much (a second platform beside the first); ``MES_EDGE_MAX_RESTARTS`` (5) is how many
    crashes of one child within 60 s are restarted before everything stops.
    """
    offset = int(os.environ.get("MES_EDGE_PORT_OFFSET", "0"))
    platform = Platform(root=Path(os.environ.get("MES_EDGE_RUN_DIR", ".run")).resolve(),
                        ports=Ports().shifted(offset))
    stop = False

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        platform.start()
        print(platform.banner(), flush=True)
        print("processes: " + ", ".join(f"{name}={proc.pid}" for name, proc in platform.started), flush=True)
        supervisor = Supervisor(
            [(name, proc) for name, proc in platform.started if isinstance(proc, ServerProcess)],
            status_path=platform.root / "children.json",
            max_restarts=int(os.environ.get("MES_EDGE_MAX_RESTARTS", "5")),
            say=lambda line: print(line, flush=True))
        while not stop:
            supervisor.poll()
            time.sleep(0.5)
    except CrashLoop as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        return 1
    except (RuntimeError, TimeoutError, FileNotFoundError) as exc:
        print(f"make run failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("\nstopping mes-edge …", flush=True)
        platform.stop()
    return 0
