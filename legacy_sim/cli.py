"""Command line of the legacy stand-ins: ``mes``, ``crm``, ``crm-consumer``, ``seed``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

SERVICE_NAMES = {"mes": "legacy-mes", "crm": "legacy-crm", "crm-consumer": "legacy-crm-consumer",
                 "seed": "legacy-seed"}


def setup_telemetry(service: str, level: str) -> None:
    """JSON logs (ECS) and, when an OTLP endpoint is configured, tracing — before any app is built."""
    import telemetry

    telemetry.setup_logging(service, level=level)
    telemetry.setup_tracing(service)  # off without OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per stand-in."""
    parser = argparse.ArgumentParser(prog="python -m legacy_sim", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    dsn, dsn_help = os.environ.get("MES_DSN"), "PostgreSQL DSN (env MES_DSN)"
    redis_url, redis_help = os.environ.get("REDIS_URL"), "Redis URL (env REDIS_URL)"

    mes = sub.add_parser("mes", help="legacy MES HTTP server")
    mes.add_argument("--host", default="127.0.0.1")
    mes.add_argument("--port", type=int, default=9101)
    mes.add_argument("--dsn", default=dsn, help=dsn_help)
    mes.add_argument("--instance-id", default="mes-1")
    mes.add_argument("--price-delay", type=float, default=0.5, help="legacy seconds per calculation")
    mes.add_argument("--price-delay-per-ktri", type=float, default=0.0,
                     help="extra seconds per 1000 triangles")
    mes.add_argument("--price-slots", type=int, default=4, help="concurrent calculations (0 = unlimited)")
    mes.add_argument("--request-delay", type=float, default=0.0,
                     help="extra seconds on every API answer: an overloaded MES (drills, shedding tests)")
    mes.add_argument("--pool-min", type=int, default=2)
    mes.add_argument("--pool-max", type=int, default=10)
    mes.add_argument("--statement-timeout", type=float, default=30.0, help="seconds")
    mes.add_argument("--max-model-mb", type=float, default=50.0)
    mes.add_argument("--consume-crm", action="store_true", help="also consume the CRM queue in-process")
    mes.add_argument("--redis-url", default=redis_url, help=redis_help)

    crm = sub.add_parser("crm", help="legacy CRM HTTP server")
    crm.add_argument("--host", default="127.0.0.1")
    crm.add_argument("--port", type=int, default=9201)
    crm.add_argument("--redis-url", default=redis_url, help=redis_help)

    consumer = sub.add_parser("crm-consumer", help="standalone MES-side CRM queue consumer")
    consumer.add_argument("--dsn", default=dsn, help=dsn_help)
    consumer.add_argument("--redis-url", default=redis_url, help=redis_help)
    consumer.add_argument("--instance-id", default="mes-1", help="consumer name in group 'mes'")
    consumer.add_argument("--reclaim-idle", type=float, default=60.0, help="seconds before claiming others'")
    consumer.add_argument("--metrics-port", type=int, default=None,
                          help="serve /metrics on this port (0 = any free port; default: none)")

    seed = sub.add_parser("seed", help="fill the MES database with realistic orders")
    seed.add_argument("--dsn", default=dsn, help=dsn_help)
    seed.add_argument("--orders", type=int, default=1_000_000,
                      help="fill the table up to this many orders; orders already there count "
                           "(default: %(default)s)")
    seed.add_argument("--active", type=int, default=3000)
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--append", action="store_true", help="add --orders orders to what is there")
    return parser


def _require(args: argparse.Namespace, parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} is required (or set its environment variable)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        setup_telemetry(SERVICE_NAMES[args.command], args.log_level.upper())
    except ValueError as exc:  # e.g. a bad OTEL_TRACES_SAMPLER_ARG or LOG_LEVEL
        print(f"legacy_sim {args.command}: {exc}", file=sys.stderr)
        return 2
    from legacy_sim import commands  # after logging and tracing are configured

    if args.command in ("mes", "seed", "crm-consumer"):
        _require(args, parser, "dsn")
    if args.command in ("crm", "crm-consumer") or (args.command == "mes" and args.consume_crm):
        _require(args, parser, "redis_url")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return commands.run(args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"legacy_sim {args.command}: {exc}", file=sys.stderr)
        return 2
    return 0

