"""``python -m telemetry order-journey ORDER_ID …`` — on-call tools over the platform's telemetry."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from telemetry.journey import DEFAULT_ES_INDEX, DEFAULT_LOG_DIR
from telemetry.journey_command import order_journey


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (1: nothing found, 2: usage or unreadable source)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.logs and args.es_url:
        parser.error("use either --logs or --es-url, not both")
    es_url = args.es_url or (None if args.logs else os.environ.get("ES_URL"))
    return order_journey(args.order_id, logs=args.logs, es_url=es_url, es_index=args.es_index,
                         jaeger_ui_url=args.jaeger_url, dsn=args.dsn)


if __name__ == "__main__":
    raise SystemExit(main())
