"""Run wrk 4.1 and parse its ``--latency`` report."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

WRK = "/usr/bin/wrk"

# wrk's format_time_us() picks one of these units
_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+(\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in (\d+(?:\.\d+)?)(us|ms|s|m|h),", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkError(RuntimeError):
    """wrk failed or printed a report this parser does not understand."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class WrkResult:
    """One wrk run: rate, latency percentiles in milliseconds, and error counts."""

    requests_per_s: float
    requests: int
    seconds: float
    latency_ms: dict[str, float]  # "50", "75", "90", "99" -> ms
    socket_errors: int
    non_2xx: int

    @property
    def p50_ms(self) -> float:
        return self.latency_ms["50"]

    @property
    def p99_ms(self) -> float:
        return self.latency_ms["99"]

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS_MS[unit]


def parse_report(text: str) -> WrkResult:
    """Parse wrk's stdout (run with ``--latency``)."""
    rate = _RATE.search(text)
    total = _TOTAL.search(text)
    percentiles = {f"{float(p):g}": _to_ms(value, unit) for p, value, unit in _PERCENTILE.findall(text)}
    if rate is None or total is None or not {"50", "99"} <= percentiles.keys():
        raise WrkError(f"cannot parse wrk report:\n{text}")
    socket_errors = _SOCKET_ERRORS.search(text)
    non_2xx = _NON_2XX.search(text)
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        requests=int(total.group(1)),
        seconds=_to_ms(total.group(2), total.group(3)) / 1000.0,
        latency_ms=percentiles,
        socket_errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def wrk_command(
    url: str,
    *,
    threads: int,
    connections: int,
    duration_s: int,
    script: Path | None = None,
    script_args: Sequence[str] = (),
) -> list[str]:
    """wrk's argv; ``script_args`` reach the script's ``init(args)`` (after ``--``)."""
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    return argv


def run_wrk(argv: list[str], *, duration_s: float) -> tuple[WrkResult, str]:
    """Run wrk (bounded by a timeout) and return the parsed result and its raw report."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 15, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {duration_s + 15:g} s: {argv}") from exc
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout}")
    return parse_report(done.stdout), done.stdout
