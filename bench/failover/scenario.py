"""One failover scenario: capacity first, then steady load at fractions of it, the disruption, the
drain, and the figures (what the clients saw, what the gateways' metrics said, what was lost)."""

from __future__ import annotations

import asyncio
import math
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.failover import checks, load
from bench.failover.stack import BIG, Stack, make_keys, start_backends, start_gateways
from bench.failover.topologies import disrupt, topology


@dataclass(frozen=True, slots=True)
class Plan:
    """Durations (s) and the fractions of the measured capacities the steady load runs at."""

    before: float = 10.0
    after: float = 10.0
    capacity_s: float = 3.0
    partner_fraction: float = 0.3  # of the partner route's saturation req/s (both gateways)
    limit_fraction: float = 0.5  # the partner's limit per second, of its offered req/s
    pricing_fraction: float = 0.5  # quote submissions/s, of the pricing pool's measured jobs/s
    pricing_batch: int = 60
    recover_timeout: float = 60.0
    drain_timeout: float = 60.0


SHORT = Plan(before=2.0, after=2.0, capacity_s=1.0, pricing_batch=8, drain_timeout=60.0)


@dataclass
class Figures:
    """Everything the report prints; ``lost_*`` and ``server_errors`` are the goals (0)."""

    scenario: str
    action: str = ""
    partner_capacity: float = 0.0
    pricing_capacity: float = 0.0
    rates: dict[str, float] | None = None
    limit: int = 0
    statuses: dict[str, dict[int, int]] | None = None
    server_errors: int = 0  # 5xx + no answer through the gateways (partner requests, quotes)
    error_details: str = ""  # the problem bodies of the 5xx through the gateways, distinct
    crm_refused: int = 0  # 5xx + no answer of the CRM stand-in (the legacy CRM, not behind a gateway)
    degraded_episodes: int = 0  # switches to degraded mode, both gateways (short ones the samples miss)
    degraded_s: float | None = None  # first degraded sample → last gateway shared again (nan: never back)
    window_s: float = 0.0
    admitted: int = 0
    allowed: float = 0.0
    over_admitted: float = 0.0
    baseline_over: float = 0.0
    jobs: int = 0
    lost_jobs: int = 0
    lost_states: str = ""  # what the API said of the lost ones (queued, running, missing)
    failed_jobs: int = 0
    priced_twice: int = 0
    crm_orders: int = 0
    lost_orders: int = 0
    crm_ids_twice: int = 0  # CRM order ids handed out twice (the second order is a duplicate to the MES)


def _over(answers: list[load.Answer], start: float, end: float, limit: int) -> tuple[int, float, float]:
    """(admitted, allowed, admitted beyond the limit) of the limited partner in [start, end):
    allowed = limit x duration + limit (the sliding window may carry one window's worth in)."""
    admitted = sum(1 for a in answers if start <= a.sent < end and a.status == 200)
    allowed = limit * (end - start) + limit
    return admitted, allowed, max(0.0, admitted - allowed)


async def _pricing_capacity(stack: Stack, batch: int) -> float:
    """Jobs/s of the worker pool: ``batch`` distinct models submitted at once, until all are done."""
    send = load.quote_post(stack, offset=1_000_000)
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(*(send(session, n) for n in range(batch)))
    ids = [ref for status, ref in answers if status in (200, 202)]
    states = await checks.job_states(stack, ids, wait=120)
    return sum(s == "done" for s in states.values()) / (time.monotonic() - started)


async def run(scenario: str, workdir: Path, plan: Plan = Plan()) -> Figures:
    """Start everything for ``scenario`` in ``workdir``, run it, stop everything; the figures."""
    fig = Figures(scenario)
    with topology(scenario, workdir) as top, ExitStack() as stack:
        keys = make_keys(workdir, top.partner)
        endpoint, crm, dsn = start_backends(stack, workdir, top.spec, cluster=top.cluster)
        with ExitStack() as first:
            tiers: dict[str, object] = {"big": BIG, "limited": BIG}  # no limit while measuring capacity
            probe = Stack(start_gateways(first, workdir, top.spec, endpoint, tiers), keys)
            fig.partner_capacity = await load.saturate(load.partner_get(probe, "capacity"), plan.capacity_s)
        partner_rate = plan.partner_fraction * fig.partner_capacity
        fig.limit = max(2, round(plan.limit_fraction * partner_rate))
        tiers = {"big": BIG, "limited": {"burst": f"{fig.limit}/second"}}  # the known limit
        run_stack = Stack(start_gateways(stack, workdir, top.spec, endpoint, tiers), keys, crm, dsn)
        fig.pricing_capacity = await _pricing_capacity(run_stack, plan.pricing_batch)
        side_rate = max(1.0, plan.pricing_fraction * fig.pricing_capacity)
        fig.rates = {"partner": partner_rate, "quotes": side_rate, "crm": side_rate}
        streams = {name: load.Stream(name) for name in fig.rates}
        sends = {"partner": load.partner_get(run_stack, "limited"), "quotes": load.quote_post(run_stack, 0),
                 "crm": load.crm_post(run_stack)}
        stop_load, stop_watch = asyncio.Event(), asyncio.Event()
        timeline = checks.ModeTimeline()
        watcher = asyncio.create_task(timeline.watch(run_stack, stop_watch))
        tasks = [asyncio.create_task(load.paced(streams[n], fig.rates[n], sends[n], stop_load))
                 for n in streams]
        try:
            await asyncio.sleep(plan.before)
            switches = sum(timeline.switches)
            t_disrupt = time.time()
            fig.action = await disrupt(top)
            t_done = time.time()
            await _recovered(timeline, t_disrupt, plan.recover_timeout)
            await asyncio.sleep(plan.after)
        finally:
            stop_load.set()
            await asyncio.gather(*tasks)
            stop_watch.set()
            await watcher
        fig.degraded_episodes = int(sum(timeline.switches) - switches)
        span = timeline.degraded_span(t_disrupt)
        if span is None:  # never degraded (a reshard): the disruption's own time
            start, end = t_disrupt, t_done
        else:  # degraded until the last gateway was back, or until the load stopped (never back)
            start, end = span[0], (time.time() if math.isnan(span[1]) else span[1])
        fig.degraded_s = None if span is None else span[1] - span[0]
        fig.window_s = max(end - start, 0.0)
        partner = streams["partner"].answers
        fig.admitted, fig.allowed, fig.over_admitted = _over(partner, start, end, fig.limit)
        fig.baseline_over = _over(partner, t_disrupt - fig.window_s - 0.5, t_disrupt - 0.5, fig.limit)[2]
        fig.statuses = {name: s.statuses() for name, s in streams.items()}
        fig.server_errors = sum(_errors(fig.statuses[name]) for name in ("partner", "quotes"))
        fig.crm_refused = _errors(fig.statuses["crm"])
        failed = {a.ref for n in ("partner", "quotes") for a in streams[n].answers if a.status >= 500}
        fig.error_details = " | ".join(sorted(failed))
        ids = [a.ref for a in streams["quotes"].answers if a.status in (200, 202)]  # 200: priced already
        states = await checks.job_states(run_stack, ids, plan.drain_timeout)
        fig.jobs = len(ids)
        lost = [s for s in states.values() if s not in checks.FINAL]
        fig.lost_jobs = len(lost)
        fig.lost_states = ", ".join(f"{lost.count(s)} {s}" for s in sorted(set(lost)))
        fig.failed_jobs = sum(s == "failed" for s in states.values())
        fig.priced_twice = await checks.calculations_twice(dsn)
        refs = [a.ref for a in streams["crm"].answers if a.status == 202]
        fig.crm_orders = len(refs)
        fig.crm_ids_twice = len(refs) - len(set(refs))
        delivered = await checks.relayed(dsn, refs, plan.drain_timeout)
        fig.lost_orders = len(set(refs) - delivered) + fig.crm_ids_twice
    return fig


def _errors(statuses: dict[int, int]) -> int:
    return sum(n for code, n in statuses.items() if code >= 500 or code == 0)


async def _recovered(timeline: checks.ModeTimeline, since: float, wait: float) -> None:
    """Until every gateway's last sample is shared mode, after a degraded one (or 3 s of none)."""
    deadline = time.monotonic() + wait
    quiet_until = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        span = timeline.degraded_span(since)
        if span is not None and not math.isnan(span[1]) and not timeline.degraded_now():
            return
        if span is None and time.monotonic() > quiet_until:
            return
        await asyncio.sleep(0.2)
