"""Two routes of ``bench.policies`` in interleaved pairs: what one policy costs, with its spread.

    .venv/bin/python -m bench.policies --pair partner,unchecked --pairs 12 --duration 3  # OpenAPI validation
    .venv/bin/python -m bench.policies --pair partner,unchecked --pairs 20 --rate 1000   # at a steady rate
    .venv/bin/python -m bench.policies --pair unchecked,uncounted                       # usage accounting
    .venv/bin/python -m bench.policies --pair order,order-unchecked --pairs 12 --duration 3  # a POSTed body

At saturation (wrk -t2 -c64) unless ``--rate``. A pair runs both routes back to back, in
alternating order (AB, BA, AB, …): a change of the machine's load during a pair falls on both,
and neither is always first. Per run it reads the gateway's CPU seconds (utime + stime of every
process of its process group, master and workers, from ``/proc/<pid>/stat``) before and after,
so each pair gives

* the throughput ratio A/B (req/s): what a partner sees, but on a shared machine it moves with
  whatever else runs (the box's wrk, nginx and Redis share the same cores with it);
* the CPU ratio B/A of the gateway's CPU seconds per request: the throughput ratio the gateway
  would reach on a core of its own; it hardly moves with the load around it.

With ``--rate R`` both routes run at one steady R req/s (``bench/steady.lua``, -c8) instead of
saturation: the same work per second for both, so the gateway batches the same number of requests
per loop turn in both and their CPU per request compares more tightly (a larger share of it is
then per-request overhead that does not depend on the policy, so the relative cost reads lower;
the added µs per request is the figure that carries over).

Both are reported as the median over the pairs with their interquartile range and min-max, the
reference route's figures side by side, and the load average during the runs. No absolute rate
is a target: only ratios, which hold across machines of different speed.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Callable, Sequence

from bench.processes import box_busy_seconds
from bench.targets import Target

#: The variant pairs the issue asks about: (A with the policy, B without it) → what A adds.
POLICIES = {("partner", "unchecked"): "OpenAPI validation", ("unchecked", "uncounted"): "usage accounting",
            ("order", "order-unchecked"): "OpenAPI validation of a JSON body"}
COST_LIMIT = 0.95  # B/A at least: the policy costs at most 5 % (issue 20)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    """One wrk run of one route at saturation."""

    rps: float
    requests: int
    gateway_cpu_s: float  # CPU seconds of the gateway's processes during the run
    errors: int
    load: float  # 1-minute load average at the end of the run
    busy: float  # the whole machine's busy fraction during the run (0-1, all cores)

    @property
    def cpu_us(self) -> float:
        """Gateway CPU microseconds per request."""
        return 1e6 * self.gateway_cpu_s / max(1, self.requests)


def measured(run: Callable[[], tuple[float, int, int]], gateway_cpu: Callable[[], float],
             seconds: float) -> Run:
    """``run()`` (→ req/s, requests, errors) with the gateway's CPU and the machine's load around it."""
    cpu0, busy0 = gateway_cpu(), box_busy_seconds()
    rps, requests, errors = run()
    cpu1, busy1 = gateway_cpu(), box_busy_seconds()
    cores = os.cpu_count() or 1
    return Run(rps=rps, requests=requests, gateway_cpu_s=cpu1 - cpu0, errors=errors,
               load=os.getloadavg()[0], busy=min(1.0, (busy1 - busy0) / (seconds * cores)))


def interleaved(pair: tuple[str, str], pairs: int, run: Callable[[str], Run],
                echo: Callable[[str], None] = print) -> list[tuple[Run, Run]]:
    """``pairs`` pairs of (A, B) runs, A first in even pairs and B first in odd ones."""
    out: list[tuple[Run, Run]] = []
    for i in range(pairs):
        order = pair if i % 2 == 0 else pair[::-1]
        got = {name: run(name) for name in order}
        a, b = got[pair[0]], got[pair[1]]
        out.append((a, b))
        first = "AB" if order == pair else "BA"
        echo(f"pair {i + 1:>2} {first} {pair[0]} {a.rps:>7.0f} req/s {a.cpu_us:>6.0f} µs/req"
             f" | {pair[1]} {b.rps:>7.0f} req/s {b.cpu_us:>6.0f} µs/req | req/s {a.rps / b.rps:.3f}"
             f"  cpu {b.cpu_us / a.cpu_us:.3f} | load {a.load:.1f} busy {100 * max(a.busy, b.busy):.0f} %"
             f" | errors {a.errors + b.errors}")
    return out


@dataclasses.dataclass(frozen=True)
class Spread:
    """Median, interquartile range and range of a sample."""

    median: float
    q1: float
    q3: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if len(values) < 2:
            return cls(values[0], values[0], values[0], values[0], values[0])
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(statistics.median(values), q1, q3, min(values), max(values))

    def text(self, fmt: str = ".3f") -> str:
        return (f"{self.median:{fmt}} (IQR {self.q1:{fmt}} to {self.q3:{fmt}}, "
                f"range {self.low:{fmt}} to {self.high:{fmt}})")


def report(pair: tuple[str, str], results: list[tuple[Run, Run]], *, paced: bool = False) -> list[str]:
    """The side-by-side table and the two ratios with their spread; the verdict lines last.
    ``paced``: both ran at one steady rate, so their req/s ratio is the pacing's, not a cost."""
    a_name, b_name = pair
    what = POLICIES.get(pair, f"{a_name} over {b_name}")
    rps = {n: Spread.of([r[i].rps for r in results]) for i, n in enumerate(pair)}
    cpu = {n: Spread.of([r[i].cpu_us for r in results]) for i, n in enumerate(pair)}
    throughput = Spread.of([a.rps / b.rps for a, b in results])
    cpu_ratio = Spread.of([b.cpu_us / a.cpu_us for a, b in results])
    added = Spread.of([a.cpu_us - b.cpu_us for a, b in results])
    loads = Spread.of([r.load for pr in results for r in pr])
    busy = Spread.of([100 * r.busy for pr in results for r in pr])
    lines = [f"\n{what}: {a_name} (with) vs {b_name} (without), {len(results)} interleaved pairs",
             f"{'route':<11}{'req/s median':>14}{'IQR':>17}{'gw µs/req median':>18}{'IQR':>13}"]
    for name in pair:
        lines.append(f"{name:<11}{rps[name].median:>14.0f}{rps[name].q1:>9.0f}-{rps[name].q3:<7.0f}"
                     f"{cpu[name].median:>18.0f}{cpu[name].q1:>7.0f}-{cpu[name].q3:<5.0f}")
    lines += [
        f"throughput ratio {a_name}/{b_name} per pair: {throughput.text()}"
        f" -> cost {100 * (1 - throughput.median):.1f} %",
        f"gateway CPU per request {b_name}/{a_name} per pair: {cpu_ratio.text()}"
        f" -> cost {100 * (1 - cpu_ratio.median):.1f} % (the throughput ratio on a core of its own)",
        f"gateway CPU {a_name} minus {b_name} per pair: {added.text('+.1f')} µs per request",
        f"machine during the runs: load average {loads.text('.1f')}, busy {busy.text('.0f')} % of "
        f"{os.cpu_count()} cores",
        Target(label=f"{a_name} / {b_name} gateway CPU per request: {what} (load-insensitive)",
               value=cpu_ratio.median if resolves(cpu_ratio) else None, limit=COST_LIMIT, at_least=True,
               missing=f"IQR {cpu_ratio.q1:.3f}-{cpu_ratio.q3:.3f}: more or longer pairs needed",
               detail=f"IQR {cpu_ratio.q1:.3f}-{cpu_ratio.q3:.3f}").line(),
        Target(label=f"{a_name} / {b_name} saturation req/s: {what}",
               value=throughput.median if resolves(throughput) and not paced else None, limit=COST_LIMIT,
               at_least=True,
               detail=f"IQR {throughput.q1:.3f}-{throughput.q3:.3f}",
               missing="both ran at one steady rate (--rate): no saturation figure" if paced else
                       f"IQR {throughput.q1:.3f}-{throughput.q3:.3f} is wider than the "
                       f"{100 * (1 - COST_LIMIT):.0f} % it is to resolve: the machine's load moved; "
                       "the CPU ratio above is the figure").line(),
    ]
    return lines


def resolves(ratio: Spread, limit: float = COST_LIMIT) -> bool:
    """Whether the pairs agree well enough to tell a cost of ``1 - limit``: IQR at most twice it."""
    return ratio.q3 - ratio.q1 <= 2 * (1 - limit)
