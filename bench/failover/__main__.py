"""``python -m bench.failover``: run the scenarios, print the figures (see the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import tempfile
from pathlib import Path

from bench.failover.report import report
from bench.failover.scenario import SHORT, Plan, run
from bench.failover.topologies import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    parser.add_argument("--topology", default="sentinel,cluster,reshard",
                        help=f"comma-separated scenarios: {', '.join(SCENARIOS)}")
    parser.add_argument("--short", action="store_true", help="the make-test length (a few seconds each side)")
    parser.add_argument("--keep", type=Path, help="run in this folder, keep the logs")
    args = parser.parse_args(argv)
    plan = SHORT if args.short else Plan()
    print("command:", " ".join([sys.executable, "-m", "bench.failover", *(argv or sys.argv[1:])]))
    print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}, load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores")
    for scenario in args.topology.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-failover-{scenario}-") as tmp:
            workdir = Path(tmp) if args.keep is None else args.keep / scenario
            workdir.mkdir(parents=True, exist_ok=True)
            print(report(asyncio.run(run(scenario, workdir, plan))), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
