"""``python -m telemetry order-journey ORDER_ID …`` / ``forecast`` / ``capacity-rules`` — on-call tools over
the platform's telemetry."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from telemetry.journey import DEFAULT_ES_INDEX, DEFAULT_LOG_DIR
from telemetry.journey_command import order_journey

CAPACITY_COMMANDS = ("forecast", "capacity-rules")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per tool."""
    parser = argparse.ArgumentParser(prog="python -m telemetry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    journey = sub.add_parser(
        "order-journey", help="an order's timeline from the JSON logs of every service",
        description="Print every log line about ORDER_ID (and the lines of the requests and traces "
                    "that touched it) in time order, then its trace ids with Jaeger links.")
    journey.add_argument("order_id", metavar="ORDER_ID", help="the MES order id (order.id)")
    journey.add_argument("--logs", nargs="+", type=Path, default=[], metavar="DIR_OR_FILE",
                         help=f"log directories (*.log, *.log.N) or files; default {DEFAULT_LOG_DIR}")
    journey.add_argument("--es-url", default=None,
                         help="query Elasticsearch instead of files (default $ES_URL unless --logs is "
                              "given; $ES_API_KEY authenticates)")
    journey.add_argument("--es-index", default=os.environ.get("ES_INDEX", DEFAULT_ES_INDEX),
                         metavar="PATTERN", help=f"index pattern (env ES_INDEX; default {DEFAULT_ES_INDEX})")
    journey.add_argument("--dsn", default=os.environ.get("MES_READ_DSN"),
                         help="also read the order's status history from the MES database: a read replica "
                              "(env MES_READ_DSN; docs/mes-data.md)")
    journey.add_argument("--jaeger-url", default=None,
                         help="Jaeger UI base URL (default $JAEGER_UI_URL or http://127.0.0.1:16686)")
    forecast = sub.add_parser(
        "forecast", help="per resource: usage, headroom, growth per week, when it reaches its capacity",
        description="Query Prometheus (the series of prometheus/rules/capacity.yml) and print, per "
                    "resource, usage, weekly peak, capacity, headroom, growth per week and the date the "
                    "weekly peak reaches the capacity at its one-week trend, with a confidence note "
                    "(docs/capacity.md). Exit 1 when something reaches its capacity within --horizon, "
                    "2 when Prometheus cannot answer.")
    forecast.add_argument("--prometheus-url", default=os.environ.get("PROMETHEUS_URL", "http://127.0.0.1:9090"),
                          help="Prometheus base URL (env PROMETHEUS_URL; default http://127.0.0.1:9090)")
    forecast.add_argument("--horizon", type=float, default=14.0, metavar="DAYS",
                          help="exit 1 when a resource reaches its capacity within this many days "
                               "(default 14)")
    forecast.add_argument("--json", action="store_true", help="one JSON document for machines")
    forecast.add_argument("--strict", action="store_true",
                          help="low-confidence crossings within the horizon fail too")
    rules = sub.add_parser(
        "capacity-rules", help="write prometheus/rules/capacity.yml from the capacity model and file",
        description="Render prometheus/rules/capacity.yml from telemetry/capacity_model.py and "
                    "prometheus/capacity.yml (the measured capacities).")
    rules.add_argument("--check", action="store_true", help="exit 1 if the checked-in rule file differs")
    return parser


def _capacity(args: argparse.Namespace) -> int:
    if args.command == "forecast":
        from telemetry.forecast_command import run_forecast

        return run_forecast(args.prometheus_url, horizon_days=args.horizon, as_json_output=args.json,
                            strict=args.strict)
    from telemetry.capacity_rules import RULES_FILE, write

    if write(check=args.check):
        return 0
    if args.check:
        print(f"{RULES_FILE} is out of date: run python -m telemetry capacity-rules", file=sys.stderr)
        return 1
    print(f"wrote {RULES_FILE}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (1: nothing found, 2: usage or unreadable source)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in CAPACITY_COMMANDS:
        return _capacity(args)
    if args.logs and args.es_url:
        parser.error("use either --logs or --es-url, not both")
    es_url = args.es_url or (None if args.logs else os.environ.get("ES_URL"))
    return order_journey(args.order_id, logs=args.logs, es_url=es_url, es_index=args.es_index,
                         jaeger_ui_url=args.jaeger_url, dsn=args.dsn)


if __name__ == "__main__":
    raise SystemExit(main())
