"""A steady wrk load on a legacy MES while the database kit migrates it (bench/mes_migration.lua):
started before a step, stopped (SIGINT: wrk prints its report) when the step is done; the bench
and tests/integration/mesdb/test_mesdb_split.py use it."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.wrk import WrkError, WrkResult, parse_report, wrk_command

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "mes_migration.lua"
_P95 = re.compile(r"^p95_us (\d+)$", re.MULTILINE)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MesLoad:
    """One wrk run on the MES: requests, failures (non-2xx/3xx answers, socket errors), p50/p95."""

    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    seconds: float


def _result(report: str) -> MesLoad:
    parsed: WrkResult = parse_report(report)
    p95 = _P95.search(report)
    if p95 is None:
        raise WrkError(f"no p95 line (mes_migration.lua's done()) in:\n{report}")
    return MesLoad(
        requests=parsed.requests,
        failures=parsed.errors,
        p50_ms=parsed.p50_ms,
        p95_ms=int(p95.group(1)) / 1000.0,
        seconds=parsed.seconds,
    )


@contextmanager
def wrk_load(
    url: str, *, archived_ids: Sequence[int], crm_ref: str, rate_per_s: float = 20.0
) -> Iterator[list[MesLoad]]:
    """wrk on ``url`` (2 threads, 4 connections, 30 s request timeout) for as long as the block
    runs; the list it yields holds the result once the block is left."""
    threads = 2
    argv = wrk_command(
        url,
        threads=threads,
        connections=4,
        duration_s=3600,
        script=SCRIPT,
        script_args=[f"{rate_per_s / threads:.3f}"],
    )
    argv = [argv[0], "--timeout", "30s", *argv[1:]]
    env = {
        **os.environ,
        "MES_STEADY_LUA": str(ROOT / "bench" / "steady.lua"),
        "MES_ARCHIVED_IDS": ",".join(str(i) for i in archived_ids) or "1",
        "MES_CRM_REF": crm_ref,
    }
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    found: list[MesLoad] = []
    try:
        yield found
    finally:
        proc.send_signal(signal.SIGINT)  # wrk stops and prints its report
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise WrkError("wrk did not stop within 60 s of SIGINT") from None
    if proc.returncode != 0:
        raise WrkError(f"wrk exited {proc.returncode}: {err.strip() or out}")
    found.append(_result(out))
