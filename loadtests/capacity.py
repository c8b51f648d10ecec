"""``python -m loadtests.capacity``: legacy direct vs the platform at the 2x peak → ``docs/capacity.md``.

Against the running ``make run`` platform, in one command:

1. seed the MES database up to ``--seed-orders`` (``legacy_sim seed --append``);
2. measure the idle database rate (sidecar probes, health checks) as a baseline;
3. the 2x peak (``peak`` shape, 2 x ``--users``) against ``legacy`` (MES :9101 + CRM :9201
   directly, synchronous ``POST /price``) and then against ``platform`` (gateway :8080/:8081);
4. step the user count (``--steps``), both targets interleaved, each step a fresh bounded run
   judged by ``thresholds.yaml``; a target stops stepping at its first failing step;
5. write the report (:mod:`loadtests.capacity_report`) and the measured capacities into
   ``prometheus/capacity.yml`` + ``prometheus/rules/capacity.yml`` (:mod:`loadtests.capacity_limits`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from gateway.auth.startup_secrets import DEV_OPERATOR_TOKEN
from loadtests import capacity_limits, pg_activity
from loadtests.capacity_report import Measurement, Report, render
from loadtests.partner_keys import ensure_partner_keys
from loadtests.runner import ROOT, run_locust, wait_up
from loadtests.settings import TARGETS, load
from telemetry.capacity_model import CAPACITY_FILE, load_capacities

DSN = "postgresql://postgres@127.0.0.1:55432/mes"
SETTLE = 11.0  # s: PostgreSQL 15 flushes idle backends' statistics within 10 s


def seed(dsn: str, wanted: int) -> tuple[int, int]:
    """Append seeded orders until the table holds ``wanted``; returns (orders, active)."""
    have, _ = pg_activity.count_orders(dsn)
    if have < wanted:
        print(f"seeding {wanted - have} orders (have {have}) …", flush=True)
        argv = [sys.executable, "-m", "legacy_sim", "seed", "--dsn", dsn, "--orders", str(wanted - have),
                "--append"]
        subprocess.run(argv, check=True, capture_output=True, timeout=900, cwd=ROOT)
    return pg_activity.count_orders(dsn)


def gateway_features(admin_url: str) -> dict[str, Any]:
    """What the running gateway has switched on (effective config from the admin listener)."""
    token = os.environ.get("GATEWAY_OPERATOR_TOKEN", DEV_OPERATOR_TOKEN)  # make run's dev token by default
    request = urllib.request.Request(f"{admin_url}/config", headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 (loopback)
        cfg = json.load(resp)
    routes = cfg.get("routes", [])
    return {
        "cached_routes": [r["name"] for r in routes if r.get("cache")],
        "quote_routes": [r["name"] for r in routes if r.get("handler") == "quotes"],
        "adaptive_concurrency": bool(cfg.get("clusters", {}).get("mes", {}).get("adaptive_concurrency")),
        "rate_limited": bool(cfg.get("ratelimit")),
    }


def measure(*, target: str, shape: str, users: int, duration: float, dsn: str, env: dict[str, str],
            reports: Path) -> Measurement:
    """One bounded run plus the database rate over it."""
    run_env = {**env, "LOADTEST_TARGET": target, "LOADTEST_USERS": str(users),
               "LOADTEST_DURATION": str(duration)}
    start = pg_activity.sample(dsn)
    began = time.monotonic()
    result = run_locust(shape=shape, env=run_env, reports=reports, label=f"capacity-{target}-{shape}-{users}",
                        quiet=True)
    elapsed = time.monotonic() - began
    time.sleep(SETTLE)
    db = pg_activity.rate(start, pg_activity.sample(dsn), seconds=elapsed)
    summary = result.summary or {}
    verdict = "PASS" if summary.get("passed") else "FAIL"
    print(f"  {target:<8} {shape:<6} {summary.get('peak_users', users):>4} users: {verdict} "
          f"(exit {result.exit_code}), "
          f"{db.transactions_per_s:.0f} DB xact/s", flush=True)
    if result.summary is None:
        print(result.output[-2000:], flush=True)
    return Measurement(target=target, shape=shape, users=users, duration=elapsed, summary=summary, db=db,
                       exit_code=result.exit_code, report_prefix=str(result.prefix.relative_to(ROOT)))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtests.capacity", description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=20, help="normal level; the peak runs 2x (default 20)")
    p.add_argument("--peak-duration", type=float, default=90.0, help="s of each 2x-peak run")
    p.add_argument("--steps", default="20,40,80,160,320", help="user counts to step through")
    p.add_argument("--step-duration", type=float, default=40.0, help="s of each step run")
    p.add_argument("--seed-orders", type=int, default=200_000, help="orders in the MES database (seeded)")
    p.add_argument("--dsn", default=os.environ.get("MES_DSN", DSN))
    p.add_argument("--admin-url", default="http://127.0.0.1:9901")
    p.add_argument("--key-store", type=Path, default=ROOT / ".run" / "api-keys.json")
    p.add_argument("--reports", type=Path, default=ROOT / "reports")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "capacity.md")
    p.add_argument("--capacity-file", type=Path, default=CAPACITY_FILE,
                   help="the capacity model's figures to update (rules: prometheus/rules/capacity.yml)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = "python -m loadtests.capacity " + " ".join(argv if argv is not None else sys.argv[1:])
    cfg = load()
    try:  # before a 15-minute run, not after it: the figures are merged into this file at the end
        load_capacities(args.capacity_file)
    except (OSError, ValueError) as exc:
        print(f"--capacity-file: {exc}", file=sys.stderr)
        return 2
    for url in (f"{args.admin_url}/readyz", *(f"{u}/healthz" for u in cfg.targets.mes_urls),
                f"{cfg.targets.crm_url}/healthz"):
        if not wait_up(url):
            print(f"{url} does not answer: start the platform first (`make run`)", file=sys.stderr)
            return 2
    orders = seed(args.dsn, args.seed_orders)
    env = {"LOADTEST_PARTNER_KEYS_FILE": str(ensure_partner_keys(args.key_store, cfg.partners)),
           "LOADTEST_RAMP": "5"}
    features = gateway_features(args.admin_url)
    idle_start = pg_activity.sample(args.dsn)
    time.sleep(15)
    idle = pg_activity.rate(idle_start, pg_activity.sample(args.dsn))
    load_before = os.getloadavg()
    print(f"2x peak: {2 * args.users} users for {args.peak_duration:.0f} s per target", flush=True)
    peak = [measure(target=t, shape="peak", users=args.users, duration=args.peak_duration, dsn=args.dsn,
                    env=env, reports=args.reports) for t in ("legacy", "platform")]
    steps: list[Measurement] = []
    stepping = list(TARGETS[::-1])  # legacy first within each step
    for users in (int(s) for s in args.steps.split(",") if s.strip()):
        for target in list(stepping):
            m = measure(target=target, shape="normal", users=users, duration=args.step_duration,
                        dsn=args.dsn, env=env, reports=args.reports)
            steps.append(m)
            if not m.passed:
                stepping.remove(target)
        if not stepping:
            break
    report = Report(command=command, orders=orders, features=features, idle=idle, peak=peak, steps=steps,
                    settings=cfg, load_before=load_before, load_after=os.getloadavg(),
                    generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    args.out.write_text(render(report))
    print(f"wrote {args.out}", flush=True)
    found = capacity_limits.measured(steps, command=command, generated=report.generated,
                                     load=(report.load_before[0], report.load_after[0]))
    updated = capacity_limits.update(found, capacity_file=args.capacity_file)
    print(f"capacities updated in {args.capacity_file}: "
          f"{', '.join(updated) or 'none (no legacy step passed)'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
