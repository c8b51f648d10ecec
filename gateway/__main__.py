"""``python -m gateway --config gateway.yaml [--workers N] [--check] [--dev]``."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="mes-edge gateway")
    parser.add_argument("--config", required=True, help="gateway YAML file")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GATEWAY_WORKERS", "1")),
                        help="processes sharing the ports with SO_REUSEPORT (default 1)")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument("--dev", action="store_true",
                        help="accept known dev secrets (empty API-key pepper, the make-run operator token); "
                             "also MES_EDGE_DEV=1")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # started by the master
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers: must be >= 1, got {args.workers}")  # the configkit message form
    master = args.workers > 1 and not args.worker and not args.check
    # the master itself records no metrics: keep prometheus_client out of multiprocess mode here
    metrics_dir = os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None) if master else None

    from gateway.config import load_config
    from gateway.errors import ConfigError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"gateway: invalid config: {exc}", file=sys.stderr)
        return 2
    from gateway.auth.startup_secrets import DEV_ENV, default_secrets, dev_mode, refusal_message

    if args.dev:
        os.environ[DEV_ENV] = "1"  # the master's workers inherit it
    elif not dev_mode(False) and (problems := default_secrets(config)):
        print(refusal_message(problems), file=sys.stderr)
        return 2
    if args.check:
        print(f"gateway: config {args.config} is valid "
              f"({len(config.routes)} routes, {len(config.clusters)} clusters)")
        return 0
    from telemetry import setup_logging

    setup_logging("gateway", level=config.logging.level, log_file=config.logging.app_log)
    if master:
        from gateway.master import run_master

        return run_master(args.config, args.workers, metrics_dir=metrics_dir)
    import uvloop

    from gateway.server import serve

    try:
        uvloop.run(serve(args.config, reuse_port=args.worker, freeze_gc=True))
    except ConfigError as exc:
        print(f"gateway: invalid config: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gateway: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
