"""``python -m gateway.usage export --from 2026-11-01 --to 2026-11-30 --format csv|json``: every
partner's usage per UTC day, from the ``usage:`` section of the gateway config, to stdout."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from configkit import ConfigError
from gateway.config import load_config
from gateway.errors import RequestInvalid
from gateway.usage.report import export_rows, parse_range, to_csv
from gateway.usage.store import open_usage_store
from sharedstate.errors import REDIS_ERRORS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gateway.usage", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="every partner's usage per day (UTC)")
    e.add_argument("--config", default="config/gateway.yaml", help="the gateway config (its usage: section)")
    e.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD (UTC)")
    e.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD (UTC, included)")
    e.add_argument("--format", choices=("csv", "json"), default="csv")
    args = p.parse_args(argv)
    try:
        config = load_config(args.config).usage
        first, last = parse_range(args.first, args.last, max_days=config.max_range_days)
    except (ConfigError, RequestInvalid) as exc:  # a bad config, or a bad --from/--to
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if config.redis_url is None:
        print("error: the config has no usage.redis_url: counts live only in each gateway process",
              file=sys.stderr)
        return 2

    async def export() -> list[dict[str, object]]:
        store = open_usage_store(config)
        try:
            return await export_rows(store, first, last)
        finally:
            await store.aclose()

    try:
        rows = asyncio.run(export())
    except REDIS_ERRORS as exc:
        print(f"error: usage store unreachable: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        json.dump({"from": first.isoformat(), "to": last.isoformat(), "timezone": "UTC", "rows": rows},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(to_csv(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
