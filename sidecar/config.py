"""Command line → one frozen, validated :class:`SidecarConfig` (a bad option fails at start-up)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass

from yarl import URL

from configkit import ConfigError, check, choice, integer, number
from sharedstate.redis_spec import parse_redis_spec
from sidecar.relay.config import RelayConfig
from sidecar.routes import KINDS
from telemetry.redaction import redact_text


@dataclass(frozen=True, kw_only=True, slots=True)
class SidecarConfig:
    """Everything one sidecar needs. Times are in seconds."""

    kind: str
    upstream: str
    instance_id: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 9111
    admin_host: str = "127.0.0.1"
    admin_port: int = 9112
    dsn: str | None = None
    read_dsn: str | None = None  # a read replica for the business probes (default: --dsn)
    redis_url: str | None = None
    probe_interval: float = 15.0
    terminal_count_interval: float = 300.0
    history_poll_interval: float = 1.0
    connect_timeout: float = 5.0
    response_timeout: float = 1800.0  # the legacy MES prices complex models for up to 30 minutes
    health_path: str = "/healthz"
    probe_statement_timeout: float = 5.0
    access_log: str | None = None
    drain_timeout: float = 10.0
    relay: RelayConfig | None = None  # MES only: relay CRM orders from Redis into this MES

    def __post_init__(self) -> None:
        url = URL(self.upstream)
        choice(self.kind, "--kind", KINDS)
        check(url.scheme in ("http", "https") and bool(url.host) and url.path in ("", "/"), "--upstream",
              "expected a base URL without a path, like http://127.0.0.1:9101, "
              f"got {redact_text(self.upstream)!r}")
        check(bool(self.instance_id), "--instance-id", "must not be empty")
        integer(self.listen_port, "--listen", minimum=0, maximum=65535)
        integer(self.admin_port, "--admin", minimum=0, maximum=65535)
        for option, dsn in (("--dsn", self.dsn), ("--read-dsn", self.read_dsn)):  # values never echoed
            check(dsn is None or dsn.startswith("postgres"), option, "expected a postgresql:// DSN")
        check(self.dsn is None or self.kind == "mes", "--dsn", "is for --kind mes only")
        check(self.read_dsn is None or self.dsn is not None, "--read-dsn", "needs --dsn (the primary)")
        check(self.redis_url is None or self.kind == "mes", "--redis-url", "is for --kind mes only")
        if self.redis_url is not None:
            parse_redis_spec(self.redis_url, "--redis-url")
        number(self.probe_interval, "--probe-interval", above=0)
        number(self.terminal_count_interval, "--terminal-count-interval", minimum=0)
        number(self.history_poll_interval, "--history-poll-interval", above=0)
        number(self.connect_timeout, "--connect-timeout", above=0)
        number(self.response_timeout, "--timeout", above=0)
        check(self.health_path.startswith("/"), "--health-path",
              f"must start with '/', got {self.health_path!r}")
        check(self.relay is None or self.kind == "mes", "--relay-redis-url", "is for --kind mes only")

    @property
    def replica_name(self) -> str:
        """``host:port`` of ``--read-dsn`` (the ``replica`` label: no user, password or database)."""
        url = URL(self.read_dsn or "")
        return f"{url.host}:{url.port or 5432}"

    @property
    def upstream_base(self) -> str:
        """The upstream URL without a trailing slash, ready for ``+ raw_path``."""
        return self.upstream.rstrip("/")


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def _add_relay_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("CRM relay (MES only; docs/sidecar.md, Relay)")
    g.add_argument("--relay-redis-url", help="Redis of the CRM queue crm:orders (enables the relay)")
    g.add_argument("--relay-group", default="mes-relay", help="consumer group")
    g.add_argument("--relay-consumer", help="consumer name (default: --instance-id)")
    g.add_argument("--relay-max-in-flight", type=int, default=16, help="upper bound of the adaptive limit")
    g.add_argument("--relay-min-in-flight", type=int, default=1, help="lower bound of the adaptive limit")
    g.add_argument("--relay-timeout", type=float, default=10.0, help="seconds per delivery")
    g.add_argument("--relay-failure-threshold", type=int, default=3, help="failures in a row → pause")
    g.add_argument("--relay-backoff-max", type=float, default=30.0, help="longest pause, seconds")
    g.add_argument("--relay-reclaim-idle", type=float, default=60.0,
                   help="seconds before another consumer's pending entry is claimed")
    g.add_argument("--relay-status-stream", default="crm:orders:status",
                   help="stream in the CRM's Redis that receives DELIVERED + MES order id ('' = none)")
    g.add_argument("--relay-dead-letter-stream", default="crm:orders:dead",
                   help="stream that receives poison and rejected orders")


def _relay_config(args: argparse.Namespace) -> RelayConfig | None:
    if not args.relay_redis_url:
        return None
    return RelayConfig(
        redis_url=args.relay_redis_url, consumer=args.relay_consumer or args.instance_id or f"{args.kind}-1",
        group=args.relay_group, min_in_flight=args.relay_min_in_flight,
        initial_in_flight=max(args.relay_min_in_flight, min(4, args.relay_max_in_flight)),
        max_in_flight=args.relay_max_in_flight, delivery_timeout=args.relay_timeout,
        failure_threshold=args.relay_failure_threshold, backoff_max=args.relay_backoff_max,
        reclaim_idle=args.relay_reclaim_idle, status_stream=args.relay_status_stream,
        dead_letter_stream=args.relay_dead_letter_stream)


def parse_args(argv: Sequence[str] | None = None) -> tuple[SidecarConfig, str | None]:
    """Parse the command line; returns the config and ``--log-level``. Exits 2 on bad options."""
    p = argparse.ArgumentParser(prog="python -m sidecar", description="Sidecar for one legacy instance.")
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--listen", type=_host_port, default=("127.0.0.1", 9111), help="HOST:PORT (proxy)")
    p.add_argument("--upstream", required=True, help="base URL of the legacy instance")
    p.add_argument("--instance-id", help="legacy instance id (default <kind>-1)")
    p.add_argument("--admin", type=_host_port, default=("127.0.0.1", 9112), help="HOST:PORT (/metrics …)")
    p.add_argument("--dsn", help="MES database (the primary), read-only use: enables the probes and, with "
                                 "--redis-url, the status-history poller")
    p.add_argument("--read-dsn", default=os.environ.get("SIDECAR_READ_DSN"),
                   help="read replica of --dsn for the business probes (env SIDECAR_READ_DSN; default: "
                        "--dsn); its lag is exported as mes_replica_lag_*")
    p.add_argument("--redis-url", help="Redis for order-change events (enables events)")
    p.add_argument("--probe-interval", type=float, default=15.0)
    p.add_argument("--terminal-count-interval", type=float, default=300.0,
                   help="seconds between exact counts of CLOSED/CANCELLED orders (a table scan)")
    p.add_argument("--history-poll-interval", type=float, default=1.0)
    p.add_argument("--connect-timeout", type=float, default=5.0)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds to the legacy's response headers")
    p.add_argument("--health-path", default="/healthz", help="legacy path /readyz checks")
    p.add_argument("--access-log", default=os.environ.get("ACCESS_LOG"), help="file (default stdout)")
    p.add_argument("--log-level", default=None)
    _add_relay_args(p)
    args = p.parse_args(argv)
    try:
        relay = _relay_config(args)
        config = SidecarConfig(
            kind=args.kind, upstream=args.upstream, instance_id=args.instance_id or f"{args.kind}-1",
            listen_host=args.listen[0], listen_port=args.listen[1], admin_host=args.admin[0],
            admin_port=args.admin[1], dsn=args.dsn, read_dsn=args.read_dsn, redis_url=args.redis_url,
            probe_interval=args.probe_interval, terminal_count_interval=args.terminal_count_interval,
            history_poll_interval=args.history_poll_interval, connect_timeout=args.connect_timeout,
            response_timeout=args.timeout, health_path=args.health_path, access_log=args.access_log,
            relay=relay)
    except ConfigError as exc:
        p.error(str(exc))
    return config, args.log_level
