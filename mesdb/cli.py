"""``python -m mesdb {analyse,apply,revert,split,unsplit,archive}`` — the DBA's entry point.

Exit codes: 0 done, 1 the database refused or a check failed, 2 bad usage, 3 cannot connect.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import psycopg

from mesdb import limits, metrics, mover, report, split, tuning
from mesdb.analyse import analyse
from mesdb.db import connect, resolve_dsn
from mesdb.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, KitError
from telemetry.logging import setup_logging
from telemetry.metrics import start_metrics_server

log = logging.getLogger("mesdb.archiver")


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _duration(text: str) -> int:
    try:
        return limits.duration_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mesdb", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", help="libpq connection string (default: $MESDB_DSN, else the PG* variables)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    try:
        defaults = limits.Limits.from_environment()
    except ValueError as exc:
        parser.error(f"$MESDB_LOCK_TIMEOUT / $MESDB_LOCK_ATTEMPTS / $MESDB_STATEMENT_TIMEOUT: {exc}")
    parser.add_argument(
        "--lock-timeout",
        type=_duration,
        default=defaults.lock_timeout_ms,
        metavar="DURATION",
        help="longest wait of one DDL statement for its lock, e.g. 500ms, 2s "
        "(default: $MESDB_LOCK_TIMEOUT, else 1s); the MES queues behind it no longer",
    )
    parser.add_argument(
        "--lock-attempts",
        type=_positive(int),
        default=defaults.lock_attempts,
        help="tries of a DDL step that timed out on its lock (default: $MESDB_LOCK_ATTEMPTS, else 10)",
    )
    parser.add_argument(
        "--statement-timeout",
        type=_duration,
        default=defaults.statement_timeout_ms,
        metavar="DURATION",
        help="longest run of one batch of split/archive/unsplit "
        "(default: $MESDB_STATEMENT_TIMEOUT, else 60s)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    age = argparse.ArgumentParser(add_help=False)
    age.add_argument(
        "--older-than-days",
        type=_positive(float),
        default=mover.DEFAULT_AGE.days,
        help="CLOSED/CANCELLED this long ago are cold (default 30)",
    )
    batch = argparse.ArgumentParser(add_help=False)
    batch.add_argument("--batch", type=_positive(int), default=5000, help="orders per transaction (5000)")
    commands.add_parser(
        "analyse", parents=[age], help="what the legacy's statements cost and what the kit would change"
    )
    apply = commands.add_parser("apply", help="create the indexes (concurrently) and set plan_cache_mode")
    apply.add_argument(
        "--role", help="set plan_cache_mode for this role in the database (default: the database)"
    )
    apply.add_argument("--no-measure", action="store_true", help="skip the before/after EXPLAIN runs")
    commands.add_parser("revert", help="remove exactly what apply/split added (unsplit first)")
    sp = commands.add_parser(
        "split", parents=[age, batch], help="move archived orders to orders_archive, online"
    )
    sp.add_argument("--pause", type=float, default=0.0, help="seconds between batches (0)")
    sp.add_argument(
        "--prepare-only",
        action="store_true",
        help="create the archive and swap the constraints; move nothing (the archiver will)",
    )
    sp.add_argument(
        "--max-batches", type=_positive(int), help="stop after this many (resume by running again)"
    )
    commands.add_parser("unsplit", parents=[batch], help="rollback: archived orders back into orders")
    ar = commands.add_parser(
        "archive", parents=[age, batch], help="move orders that closed since (the archiver)"
    )
    ar.add_argument("--every", type=_positive(float), help="repeat every N seconds until SIGTERM/SIGINT")
    ar.add_argument(
        "--metrics-port",
        type=int,
        help="with --every: serve Prometheus /metrics on this port (default: none; 0 picks a free one)",
    )
    ar.add_argument(
        "--metrics-addr", default="127.0.0.1", help="address for --metrics-port (default 127.0.0.1)"
    )
    return parser


def _archiver(dsn: str, args: argparse.Namespace, age: timedelta) -> int:
    """One archiver pass, or (``--every``) one per interval on a fresh connection each time, so a
    restarted server or a killed session costs one pass, not the archiver."""
    if args.every is None:
        with connect(dsn) as conn:
            moved = split.archive(conn, age=age, batch=args.batch)
        print(report.as_json(moved) if args.json else report.render_move(moved), flush=True)
        return EXIT_OK
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    setup_logging("mesdb-archiver")
    metrics.INTERVAL.set(args.every)
    if args.metrics_port is not None:
        server, _ = start_metrics_server(args.metrics_port, addr=args.metrics_addr)
        log.info(
            "archiver metrics on %s:%d",
            args.metrics_addr,
            server.server_port,
            extra={"event.action": "service-start", "mesdb.every_s": args.every},
        )
    while True:
        _archiver_pass(dsn, args, age)
        if stop.wait(args.every):
            log.info("archiver stopped", extra={"event.action": "service-stop"})
            return EXIT_OK


def _archiver_pass(dsn: str, args: argparse.Namespace, age: timedelta) -> None:
    """One pass of the long-running archiver: an ECS log line and the metrics, either outcome; a
    failure is retried at the next round."""
    started = time.monotonic()
    try:
        with connect(dsn) as conn:
            moved = split.archive(conn, age=age, batch=args.batch)
    except (psycopg.OperationalError, KitError) as exc:
        seconds = time.monotonic() - started
        metrics.observe_pass("error", seconds=seconds)
        log.error(
            "mesdb archive: %s",
            exc,
            extra={
                "event.action": "archive-pass",
                "event.outcome": "failure",
                "event.duration": int(seconds * 1e9),
                "error.type": type(exc).__name__,
            },
        )
        return
    seconds = time.monotonic() - started
    metrics.observe_pass("ok", seconds=seconds, moved=moved.rows)
    log.info(
        report.render_move(moved),
        extra={
            "event.action": "archive-pass",
            "event.outcome": "success",
            "event.duration": int(seconds * 1e9),
            "mesdb.orders_moved": moved.rows,
            "mesdb.batches": moved.batches,
        },
    )


def run(args: argparse.Namespace) -> int:
    limits.use(
        limits.Limits(
            lock_timeout_ms=args.lock_timeout,
            lock_attempts=args.lock_attempts,
            statement_timeout_ms=args.statement_timeout,
        )
    )
    age = timedelta(days=getattr(args, "older_than_days", mover.DEFAULT_AGE.days))
    dsn = resolve_dsn(args.dsn)
    if args.command == "archive":
        return _archiver(dsn, args, age)
    with connect(dsn) as conn:
        result: object
        if args.command == "analyse":
            result = analyse(conn, age=age)
            text = report.render_analysis(result)
        elif args.command == "apply":
            result = tuning.apply(conn, role=args.role, measured=not args.no_measure)
            text = report.render_changes(result)
        elif args.command == "revert":
            result = tuning.revert(conn)
            text = report.render_changes(result)
        elif args.command == "split" and args.prepare_only:
            split.prepare(conn)
            result, text = {"prepared": True}, "prepared: orders_archive attached, constraints swapped"
        elif args.command == "split":
            result = split.split(
                conn, age=age, batch=args.batch, pause_s=args.pause, max_batches=args.max_batches
            )
            text = report.render_move(result)
        elif args.command == "unsplit":
            result = split.unsplit(conn, batch=args.batch)
            text = report.render_move(result)
        else:
            raise AssertionError(f"unknown command {args.command}")
    print(report.as_json(result) if args.json else text)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="mesdb: %(message)s")
    try:
        return run(args)
    except KitError as exc:
        print(f"mesdb {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except psycopg.Error as exc:
        print(
            f"mesdb {args.command}: PostgreSQL error {exc.sqlstate or ''}: {str(exc).strip()}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_USAGE
