"""``python -m loadtests``: one bounded, headless Locust run with CSV/HTML reports and a verdict.

    python -m loadtests                          # normal shape against `make run`
    python -m loadtests --shape peak --duration 90
    python -m loadtests --target legacy --shape peak   # the MES/CRM directly (today's world)

Creates the partner API keys with the gateway CLI in the key store `make run` uses
(``.run/api-keys.json``), runs Locust in a child process (its own process group, killed by PID
if it outlives the shape by a minute) and exits with Locust's exit code: 0 when every threshold
of ``thresholds.yaml`` was met. Reports: ``reports/<target>-<shape>-<UTC time>_*.csv``, ``.html``
and ``.json`` (the summary the capacity report reads).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.partner_keys import ensure_partner_keys
from loadtests.settings import PACKAGE_DIR, SHAPE_NAMES, TARGETS, load

ROOT = PACKAGE_DIR.parent
# loadtests.hooks prints its summary between these lines (before Locust's final tables)
SUMMARY_MARK, SUMMARY_END = "=== load test summary ===", "=== end of summary ==="
LOCUSTFILE = PACKAGE_DIR / "locustfile.py"
GRACE = 60.0  # s a run may exceed its shape before it is killed


@dataclass(frozen=True)
class RunResult:
    """A finished run: Locust's exit code, its summary (None if it wrote none), report prefix."""

    exit_code: int
    summary: dict[str, Any] | None
    prefix: Path
    output: str


def start_locust(*, shape: str, env: Mapping[str, str], prefix: Path,
                 locustfile: Path = LOCUSTFILE) -> subprocess.Popen[str]:
    """Locust headless in its own process group, ``env`` (``LOADTEST_*``) added; reports at ``prefix``."""
    child_env = {**os.environ, **env, "LOADTEST_SHAPE": shape, "LOADTEST_SUMMARY_JSON": f"{prefix}.json",
                 "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
            "--csv", str(prefix), "--html", f"{prefix}.html", "--loglevel", "WARNING",
            "--stop-timeout", "5", "--exit-code-on-error", "1"]
    return subprocess.Popen(argv, cwd=ROOT, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def run_locust(*, shape: str, env: Mapping[str, str], reports: Path, label: str,
               quiet: bool = False, locustfile: Path = LOCUSTFILE) -> RunResult:
    """Run the locustfile headless with ``env`` (``LOADTEST_*``) added; bounded by the shape."""
    cfg = load({**os.environ, **env})  # validates the settings before starting anything
    reports.mkdir(parents=True, exist_ok=True)
    prefix = reports / f"{label}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    proc = start_locust(shape=shape, env=env, prefix=prefix, locustfile=locustfile)
    try:
        output, _ = proc.communicate(timeout=cfg.shapes.duration_of(shape) + GRACE)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=10)
        output += f"\nlocust killed after {cfg.shapes.duration_of(shape) + GRACE:.0f} s"
    if not quiet:  # Locust's own tables first, our verdict last
        print(reorder(output), end="", flush=True)
    try:
        summary = json.loads(Path(f"{prefix}.json").read_text())
    except (OSError, ValueError):
        summary = None
    return RunResult(exit_code=proc.returncode, summary=summary, prefix=prefix, output=output)


def reorder(output: str) -> str:
    """Locust's output with our summary block moved to the end (the last thing a reader sees)."""
    head, mark, rest = output.partition(SUMMARY_MARK)
    ours, end, tail = rest.partition(SUMMARY_END)
    if not (mark and end):
        return output
    return f"{head.rstrip()}\n{tail.strip()}\n\n{ours.strip()}\n"


def wait_up(url: str, timeout: float = 5.0) -> bool:
    """True when ``url`` answers 200 within ``timeout`` seconds (loopback health check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (loopback URL)
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__.split("\n")[0])
    p.add_argument("--shape", choices=SHAPE_NAMES, default=os.environ.get("LOADTEST_SHAPE", "normal"))
    p.add_argument("--target", choices=TARGETS, default=os.environ.get("LOADTEST_TARGET", "platform"))
    p.add_argument("--users", type=int, help="normal level (default: mix.yaml shapes.users)")
    p.add_argument("--duration", type=float, help="s per shape (default: mix.yaml shapes.duration)")
    p.add_argument("--reports", type=Path, default=ROOT / "reports")
    p.add_argument("--key-store", type=Path,
                   default=Path(os.environ.get("GATEWAY_API_KEY_STORE", ROOT / ".run" / "api-keys.json")))
    p.add_argument("--admin-url", default="http://127.0.0.1:9901", help="gateway admin (readiness check)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    env: dict[str, str] = {"LOADTEST_TARGET": args.target}
    if args.users:
        env["LOADTEST_USERS"] = str(args.users)
    if args.duration:
        env["LOADTEST_DURATION"] = str(args.duration)
    cfg = load({**os.environ, **env})
    health = f"{args.admin_url}/readyz" if args.target == "platform" else f"{cfg.targets.mes_urls[0]}/healthz"
    if not wait_up(health):
        print(f"{health} does not answer: start the platform first (`make run`)", file=sys.stderr)
        return 2
    if args.target == "platform":
        keys = ensure_partner_keys(args.key_store, cfg.partners)
        env["LOADTEST_PARTNER_KEYS_FILE"] = str(keys)
        time.sleep(1.1)  # the gateway re-reads a changed key store at most once a second
    print(f"load test: target {args.target}, shape {args.shape}, up to {cfg.shapes.peak_users(args.shape)} "
          f"users, {cfg.shapes.duration_of(args.shape):.0f} s, reports in {args.reports}/", flush=True)
    result = run_locust(shape=args.shape, env=env, reports=args.reports, label=f"{args.target}-{args.shape}")
    print(f"reports: {result.prefix}_stats.csv {result.prefix}.html {result.prefix}.json; "
          f"exit code {result.exit_code}", flush=True)
    return result.exit_code
