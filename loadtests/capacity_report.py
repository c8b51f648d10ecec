"""Render ``docs/capacity.md`` from the measurements of :mod:`loadtests.capacity`.

The whole file is generated (how-to and method included) so figures and text never drift apart.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from loadtests.pg_activity import DbRate
from loadtests.settings import PACKAGE_DIR, SCENARIOS, Settings
from loadtests.thresholds import EndpointResult

HOW_TO = PACKAGE_DIR / "capacity_howto.md"  # the static part; $mix_table comes from mix.yaml
MODEL = PACKAGE_DIR / "capacity_model.md"  # the capacity model and forecast, appended
WHAT = {  # scenario: (user class, what it does, platform route, legacy route)
    "partner": ("PartnerUser", "list own orders, create an order, quote a model (submit, poll until priced)",
                "`:8080/partner/v1/orders`, `/partner/v1/quotes` + `X-API-Key`",
                "MES `/orders?partner_id=`, synchronous `POST /price`"),
    "operator": ("OperatorUser", "refresh a status-filtered list, open an order, move it one legal step",
                 "`:8081/orders`", "MES `/orders`"),
    "crm": ("CrmIntakeUser", "enter an order, check a recent one", "`:8081/crm/orders`", "CRM `/orders`"),
}
ORDER = ["partner GET /orders", "partner POST /orders", "partner POST /price", "partner POST /quotes",
         "partner GET /quotes/{id}", "partner quote turnaround", "operator GET /orders?status",
         "operator GET /orders/{id}", "operator POST /orders/{id}/status", "crm POST /orders",
         "crm GET /orders/{id}"]


@dataclass(frozen=True)
class Measurement:
    """One bounded run of one target and what the database did meanwhile."""

    target: str
    shape: str
    users: int
    duration: float
    summary: dict[str, Any]
    db: DbRate
    exit_code: int
    report_prefix: str

    @property
    def passed(self) -> bool:
        return bool(self.summary.get("passed")) and self.exit_code == 0

    def endpoints(self) -> dict[str, EndpointResult]:
        return {e["name"]: EndpointResult.from_dict(e) for e in self.summary.get("endpoints", [])}

    def first_failure(self) -> str:
        failed = [c for c in self.summary.get("checks", []) if not c["passed"]]
        if not self.summary:
            return f"no summary (exit {self.exit_code})"
        if not failed:
            return "user errors (see report)" if self.exit_code else ""
        c = failed[0]
        return f"{c['scenario']}: {c['what']} = {c['value']:.4g} > {c['limit']:g}" + (
            f" (+{len(failed) - 1} more)" if len(failed) > 1 else "")


@dataclass(frozen=True)
class Report:
    """Everything the report shows."""

    command: str
    orders: tuple[int, int]
    features: dict[str, Any]
    idle: DbRate
    peak: list[Measurement]
    steps: list[Measurement]
    settings: Settings
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    generated: str
    notes: list[str] = field(default_factory=list)


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f} %" if d else "-"


def _scenario_row(m: Measurement, scenario: str) -> tuple[int, int, int]:
    eps = [e for e in m.endpoints().values() if e.scenario == scenario]
    return sum(e.requests for e in eps), sum(e.failures for e in eps), sum(e.shed for e in eps)


def _peak_tables(legacy: Measurement, platform: Measurement) -> list[str]:
    a, b = legacy.endpoints(), platform.endpoints()
    names = [n for n in ORDER if n in a or n in b] + sorted((set(a) | set(b)) - set(ORDER))
    out = ["| endpoint | legacy reqs | legacy fail / 429+503 | legacy p50 / p95 ms | platform reqs "
           "| platform fail / 429+503 | platform p50 / p95 ms |", "|---|--:|--:|--:|--:|--:|--:|"]
    for name in names:
        cells = []
        for side in (a, b):
            e = side.get(name)
            cells += (["-", "-", "-"] if e is None else
                      [str(e.requests), f"{_pct(e.failures, e.requests)} / {_pct(e.shed, e.requests)}",
                       f"{e.p50_ms:.0f} / {e.p95_ms:.0f}"])
        out.append(f"| `{name}` | " + " | ".join(cells) + " |")
    out += ["", "| scenario | legacy failure ratio | legacy 429/503 | platform failure ratio "
            "| platform 429/503 |", "|---|--:|--:|--:|--:|"]
    for scenario in SCENARIOS:
        (ra, fa, sa), (rb, fb, sb) = _scenario_row(legacy, scenario), _scenario_row(platform, scenario)
        out.append(f"| {scenario} | {_pct(fa, ra)} | {_pct(sa, ra)} | {_pct(fb, rb)} | {_pct(sb, rb)} |")
    out += ["", "| | legacy | platform |", "|---|--:|--:|"]
    total = [_rps(m) for m in (legacy, platform)]
    out.append(f"| requests/s sent (all endpoints, incl. quote turnaround pseudo-requests) | {total[0]:.1f} "
               f"| {total[1]:.1f} |")
    out.append(f"| MES DB transactions/s (minus idle baseline) | {legacy.db.transactions_per_s:.1f} "
               f"| {platform.db.transactions_per_s:.1f} |")
    out.append(f"| MES DB rows read/s (`tup_returned`, minus idle) | {legacy.db.rows_read_per_s:,.0f} "
               f"| {platform.db.rows_read_per_s:,.0f} |")
    out.append(f"| verdict (thresholds.yaml) | {'PASS' if legacy.passed else 'FAIL'} "
               f"| {'PASS' if platform.passed else 'FAIL'} |")
    for m in (legacy, platform):
        if not m.passed:
            out.append(f"\n{m.target} at the peak: {m.first_failure()}")
    return out


def _rps(m: Measurement) -> float:
    return sum(e.requests for e in m.endpoints().values()) / max(m.duration, 1e-9)


def _step_table(steps: list[Measurement]) -> list[str]:
    out = ["| users | target | verdict | req/s | DB xact/s | first failed check |",
           "|--:|---|---|--:|--:|---|"]
    for m in steps:
        out.append(f"| {m.users} | {m.target} | {'PASS' if m.passed else 'FAIL'} | {_rps(m):.1f} "
                   f"| {m.db.transactions_per_s:.1f} | {m.first_failure()} |")
    return out


def _largest(steps: list[Measurement], target: str) -> str:
    ok = [m.users for m in steps if m.target == target and m.passed]
    tried = [m.users for m in steps if m.target == target]
    if not ok:
        return f"below {min(tried)} users (the first step already failed)" if tried else "not measured"
    more = "" if any(m.target == target and not m.passed for m in steps) else " (the largest step tried)"
    return f"**{max(ok)} users**{more}"


def _not_measured(r: Report) -> list[str]:
    f, out = r.features, []
    if not f.get("cached_routes"):
        out.append("- **Order-list caching**: the running gateway has no route with a `cache` policy "
                   "(`/config`), so every operator/partner list still reaches the MES. Its effect is "
                   "**not** in these figures; regenerate once the cache is configured.")
    if not f.get("quote_routes"):
        out.append("- **Async pricing**: no `handler: quotes` route; the platform quote path was not "
                   "measured.")
    if not f.get("adaptive_concurrency"):
        out.append("- **Load shedding**: the `mes` cluster has no `adaptive_concurrency`.")
    return out or ["- Nothing: cache, async pricing, load shedding and rate limits were all on."]


def how_to(s: Settings) -> str:
    """The how-to part, with the traffic mix table of the current ``mix.yaml``."""
    rows = ["| scenario | Locust user | weight | think s | tasks (weights) | does | via the platform "
            "| legacy direct |", "|---|---|--:|---|---|---|---|---|"]
    for name, (user, does, platform, legacy) in WHAT.items():
        mix = s.users[name]
        tasks = ", ".join(f"{t} {w}" for t, w in mix.tasks.items())
        rows.append(f"| {name} | `{user}` | {mix.weight} | {mix.think[0]:g}-{mix.think[1]:g} | {tasks} "
                    f"| {does} | {platform} | {legacy} |")
    return string.Template(HOW_TO.read_text()).safe_substitute(mix_table="\n".join(rows))


def render(r: Report) -> str:
    """The Markdown of ``docs/capacity.md``."""
    s, legacy, platform = r.settings, r.peak[0], r.peak[1]
    mix = ", ".join(f"{k} weight {u.weight} think {u.think[0]:g}-{u.think[1]:g} s"
                    for k, u in s.users.items())
    return "\n".join([
        "# Load tests and capacity",
        "",
        f"<!-- generated by `{r.command}` on {r.generated}; "
        "edit loadtests/capacity_report.py and capacity_howto.md, not this file -->",
        "",
        how_to(s),
        "## Capacity: legacy direct vs the platform",
        "",
        f"Generated {r.generated} by `{r.command}` against `make run` on this machine.",
        "",
        f"- MES database: **{r.orders[0]:,} orders** ({r.orders[1]:,} active), seeded with "
        "`python -m legacy_sim seed --append` (realistic spread: most archived, a few thousand active).",
        "- **legacy** = today's world: partners and operators call MES #1 (`:9101`) directly, quotes by "
        "synchronous `POST /price`, CRM intake calls the CRM (`:9201`). **platform** = partners on the "
        "external listener (`:8080`, API keys, rate limits), operators and CRM intake on the internal one "
        "(`:8081`), the gateway balancing over both MES instances via their sidecars, async quotes "
        "(202 + poll, pricing workers).",
        f"- Gateway features on: cached routes {r.features.get('cached_routes') or 'none'}, quote routes "
        f"{r.features.get('quote_routes') or 'none'}, adaptive concurrency "
        f"{'on' if r.features.get('adaptive_concurrency') else 'off'}, rate limits "
        f"{'on' if r.features.get('rate_limited') else 'off'}.",
        f"- Traffic mix: {mix}; {s.partners} partners (gold tier). Load average before/after: "
        f"{r.load_before[0]:.2f} / {r.load_after[0]:.2f} on a shared box — read the figures as a comparison "
        "made under the same conditions, not as absolute capacity.",
        f"- Idle MES database (sidecar probes, health checks): {r.idle.transactions_per_s:.1f} "
        f"transactions/s, {r.idle.rows_read_per_s:,.0f} rows read/s; subtracted below.",
        "",
        f"### At the 2x peak ({2 * legacy.users} users, {legacy.duration:.0f} s each, same thresholds)",
        "",
        *_peak_tables(legacy, platform),
        "",
        "### Largest load within the thresholds (stepped, "
        f"{r.steps[0].duration if r.steps else 0:.0f} s per step)",
        "",
        f"- legacy direct: {_largest(r.steps, 'legacy')}",
        f"- platform: {_largest(r.steps, 'platform')}",
        "",
        *_step_table(r.steps),
        "",
        "### Not measured / caveats",
        "",
        *_not_measured(r),
        "- Quote turnaround on the platform depends on `PRICING_WORKERS` (2 in `make run`, one "
        "calculation each) against 4 calculation slots per MES instance on the legacy path; "
        "catalogue re-quotes (`repeat_share`) are served from the price cache of the partner that "
        "asked (dedup is per partner: each partner's first quote of a catalogue model is computed).",
        "- Locust, the platform and PostgreSQL share the same cores; at high steps the load generator "
        "itself competes for CPU.",
        "- Transactions/s come from `pg_stat_database` (`xact_commit + xact_rollback`) deltas; "
        "pg_stat_statements is not loaded in `make run`'s PostgreSQL.",
        f"- Per-run CSV/HTML/JSON reports: `reports/capacity-*` (git-ignored); peak runs: "
        f"`{legacy.report_prefix}.html`, `{platform.report_prefix}.html`.",
        *r.notes,
        "",
        MODEL.read_text(),
    ]).rstrip("\n") + "\n"
