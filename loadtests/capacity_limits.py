"""The capacities a ``python -m loadtests.capacity`` run measures, written to ``prometheus/capacity.yml``.

One resource is measured by the stepped run itself: ``mes_rps``, the requests/s one MES instance
answered at the largest legacy-direct step within the thresholds (partners and operators call MES
#1 directly there; CRM intake and the quote-turnaround pseudo-requests are left out). The other
figures of the file (benches, provisioning) are kept as they are; the rule file
``prometheus/rules/capacity.yml`` is rendered again from the result (docs/capacity.md).
"""

from __future__ import annotations

from pathlib import Path

from loadtests.capacity_report import Measurement
from telemetry.capacity_model import CAPACITY_FILE, Capacity, load_capacities, write_capacities
from telemetry.capacity_rules import RULES_FILE
from telemetry.capacity_rules import write as write_rules

MES_SCENARIOS = ("partner", "operator")  # what the legacy-direct target sends to MES #1
PSEUDO_REQUESTS = ("partner quote turnaround",)


def mes_rps(m: Measurement) -> float:
    """Requests/s the MES instance answered in one legacy-direct run."""
    requests = sum(e.requests for e in m.endpoints().values()
                   if e.scenario in MES_SCENARIOS and e.name not in PSEUDO_REQUESTS)
    return requests / max(m.duration, 1e-9)


def measured(steps: list[Measurement], *, command: str, generated: str,
             load: tuple[float, float] | None = None) -> dict[str, Capacity]:
    """The capacities this run measured (none when no legacy step passed); ``load``: the machine's
    1-minute load average before and after the run, said next to the figure."""
    legacy = [m for m in steps if m.target == "legacy"]
    passed = [m for m in legacy if m.passed]
    if not passed:
        return {}
    best = max(passed, key=lambda m: m.users)
    failed = [m for m in legacy if not m.passed and m.users > best.users]
    beyond = (f"; {failed[0].users} users ({mes_rps(failed[0]):.1f} req/s) failed: "
              f"{failed[0].first_failure()}" if failed else "; no larger step was tried")
    return {"mes_rps": Capacity(
        resource="mes_rps", value=round(mes_rps(best), 1),
        source=f"{command}, {generated} ({best.report_prefix})",
        method=f"requests/s MES #1 answered (partner and operator calls, legacy direct) at the largest "
               f"passing step, {best.users} users{beyond}"
               + (f"; load average {load[0]:.1f} -> {load[1]:.1f} on a shared machine (the load "
                  "generator, the platform and PostgreSQL on the same cores)" if load else ""))}


def update(found: dict[str, Capacity], *, capacity_file: Path = CAPACITY_FILE,
           rules_file: Path = RULES_FILE) -> list[str]:
    """Merge ``found`` into the capacity file, render the rule file; the resources updated."""
    if not found:
        return []
    capacities = {**load_capacities(capacity_file), **found}
    write_capacities(capacities, capacity_file)
    write_rules(rules_file, capacity_file=capacity_file)
    return sorted(found)
