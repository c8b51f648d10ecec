"""``python -m loadtests.chaos`` (``make chaos``): the fault matrix under the normal traffic mix.

1. start the platform as `make run` does, on shifted ports in a temporary run dir
   (:mod:`loadtests.chaos.stack`), with Prometheus on a compressed clock (:mod:`.monitoring`);
2. measure capacity: the mix, closed loop (think times x ``--probe-think-scale``), ``--probe-users``
   users for ``--probe-seconds``; the achieved request rate is the capacity of this run;
3. run the mix at ``--load-fraction`` of that capacity (``--users`` users, think times scaled to
   match) for the whole matrix: a baseline window, then per fault: inject, hold
   ``--fault-seconds``, heal, watch ``--after-seconds``;
4. stop the load, drain (bounded), reconcile every acceptance against the systems' records
   (:mod:`.ledger`), attribute alerts (:class:`.monitoring.AlertPoller`) to faults;
5. write ``reports/chaos-<time>.json`` and ``docs/resilience.md`` (:mod:`.report`).

``--short`` is the `make test` version: two faults (:data:`.faults.SHORT`), short windows.
Exit code 0 when nothing accepted was lost or duplicated, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.chaos import faults as fault_matrix
from loadtests.chaos import figures, ledger, report
from loadtests.chaos import stack as chaos_stack
from loadtests.chaos.monitoring import AlertPoller
from loadtests.partner_keys import ensure_partner_keys
from loadtests.runner import start_locust
from loadtests.settings import load

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtests.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--short", action="store_true", help="two faults, short windows (make test)")
    p.add_argument("--faults", help="comma-separated fault names (default: all; --list to see them)")
    p.add_argument("--list", action="store_true", help="print the fault names and exit")
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="only rewrite --out from a run's raw results (reports/chaos-<time>.json)")
    p.add_argument("--fault-seconds", type=float, help="how long each fault is held (default 20; short 10)")
    p.add_argument("--after-seconds", type=float, help="watched after each heal (default 25; short 15)")
    p.add_argument("--baseline-seconds", type=float, help="before the first fault (default 20; short 10)")
    p.add_argument("--load-fraction", type=float, default=0.5, help="share of the measured capacity (0.5)")
    p.add_argument("--probe-seconds", type=float, help="capacity probe length (default 25; short 12)")
    p.add_argument("--probe-users", type=int, default=24)
    p.add_argument("--probe-think-scale", type=float, default=0.02)
    p.add_argument("--users", type=int, default=20, help="users of the measured run")
    p.add_argument("--price-delay", type=float, default=0.5, help="s the MES stand-in takes per price")
    p.add_argument("--compression", type=int, default=20, help="alert clock compression factor")
    p.add_argument("--drain-seconds", type=float, default=300.0,
                   help="bound on waiting, after the load stops, for every accepted job to end (300)")
    p.add_argument("--reports", type=Path, default=ROOT / "reports")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "resilience.md")
    p.add_argument("--keep", action="store_true", help="keep the run dir (logs) after the run")
    return p


@dataclass(frozen=True)
class Window:
    """One fault's measured times (epoch seconds)."""

    fault: fault_matrix.Fault
    inject: float
    heal: float
    end: float
    notes: dict[str, Any]


def _defaults(args: argparse.Namespace) -> None:
    short = args.short
    for name, full, brief in (("fault_seconds", 20.0, 10.0), ("after_seconds", 25.0, 15.0),
                              ("baseline_seconds", 20.0, 10.0), ("probe_seconds", 25.0, 12.0)):
        if getattr(args, name) is None:
            setattr(args, name, brief if short else full)


def _selected(args: argparse.Namespace, journal: Path) -> list[fault_matrix.Fault]:
    every = fault_matrix.matrix(journal)
    names = args.faults.split(",") if args.faults else (list(fault_matrix.SHORT) if args.short else None)
    if names is None:
        return every
    by_name = {f.name: f for f in every}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown fault(s) {unknown}; known: {', '.join(by_name)}")
    return [by_name[n] for n in names]


def _locust_env(st: chaos_stack.Stack, keys: Path, journal: Path, *, users: int, think_scale: float,
                duration: float, ramp: float, partners: int) -> dict[str, str]:
    return {"LOADTEST_TARGET": "platform", "LOADTEST_EXTERNAL_URL": f"http://127.0.0.1:{st.ports.external}",
            "LOADTEST_INTERNAL_URL": f"http://127.0.0.1:{st.ports.internal}",
            "LOADTEST_PARTNER_KEYS_FILE": str(keys), "LOADTEST_CALLBACK_URL": st.sink.url,
            "LOADTEST_JOURNAL": str(journal), "LOADTEST_USERS": str(users),
            "LOADTEST_THINK_SCALE": f"{think_scale:.4f}", "LOADTEST_DURATION": str(duration),
            "LOADTEST_RAMP": str(ramp), "LOADTEST_MAX_REQUESTS": "2000000",
            "LOADTEST_PARTNERS": str(partners)}


def _wait_locust(proc: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
    return out or ""


def mean_think(env: dict[str, str]) -> float:
    """The mix's mean think time per task (s), weighted by user share, at scale 1."""
    cfg = load({**os.environ, **env, "LOADTEST_THINK_SCALE": "1"})
    weights = {s: m.weight for s, m in cfg.users.items() if m.weight > 0}
    return float(sum(weights[s] * sum(cfg.users[s].think) / 2 for s in weights) / sum(weights.values()))


def probe_capacity(st: chaos_stack.Stack, keys: Path, journal: Path, args: argparse.Namespace,
                   prefix: Path) -> float:
    """Requests per second the platform served with the mix run closed-loop (the capacity).

    Shed answers (429/503 with ``Retry-After``) are not capacity: a rate-limited partner's cheap
    429s would inflate it, and the measured run would then be throttled instead of served.
    """
    ramp = 2.0
    env = _locust_env(st, keys, journal, users=args.probe_users, think_scale=args.probe_think_scale,
                      duration=args.probe_seconds, ramp=ramp, partners=partner_count(args))
    began = time.time()
    proc = start_locust(shape="normal", env=env, prefix=prefix, locustfile=LOCUSTFILE)
    _wait_locust(proc, args.probe_seconds + 60)
    requests = figures.read_journal(journal)
    return served_rate(requests, began + ramp + 1, began + float(args.probe_seconds))


def served_rate(requests: list[figures.Request], start: float, end: float) -> float:
    """Requests per second started in ``[start, end)`` and served (shed answers left out, and said)."""
    answered = [r for r in requests if start <= r.start < end]
    served = [r for r in answered if not r.shed]
    if len(served) < len(answered):
        print(f"capacity probe: {len(answered) - len(served)} of {len(answered)} answers shed, not counted",
              flush=True)
    return len(served) / max(end - start, 1.0)


def partner_count(args: argparse.Namespace) -> int:
    """Partner identities: one per partner user (users take them round-robin), so the probe's and the
    measured run's partner traffic is spread as many integrations would send it, not 4 tenants
    pushed past their tier's rate limit (the run measures faults, not quotas)."""
    return max(load().partners, int(args.probe_users), int(args.users))


def run(args: argparse.Namespace) -> int:
    _defaults(args)
    root = Path(tempfile.mkdtemp(prefix="mes-edge-chaos-"))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    args.reports.mkdir(parents=True, exist_ok=True)
    journal, probe_journal = root / "journal.jsonl", root / "probe-journal.jsonl"
    harness_journal = root / "harness-journal.jsonl"
    selected = _selected(args, harness_journal)
    load_before = os.getloadavg()
    print(f"chaos: {len(selected)} fault(s), run dir {root}", flush=True)
    st = chaos_stack.start(root, price_delay=args.price_delay, compression=args.compression)
    poller = AlertPoller(st.ports.prometheus).start()
    run_started = time.time()
    try:
        keys = ensure_partner_keys(root / "api-keys.json", partner_count(args))
        time.sleep(1.1)  # the gateway re-reads a changed key store at most once a second
        capacity = probe_capacity(st, keys, probe_journal, args, args.reports / f"chaos-probe-{stamp}")
        think = mean_think({})
        rate = args.load_fraction * capacity
        think_scale = min(max(args.users / max(rate * think, 1e-6), 0.01), 5.0)
        print(f"capacity {capacity:.1f} req/s; target {rate:.1f} req/s: {args.users} users, "
              f"think x{think_scale:.3f}", flush=True)
        ramp = 5.0
        plan = ramp + args.baseline_seconds + len(selected) * (args.fault_seconds + args.after_seconds) + 5
        env = _locust_env(st, keys, journal, users=args.users, think_scale=think_scale, duration=plan,
                          ramp=ramp, partners=partner_count(args))
        locust_started = time.time()
        proc = start_locust(shape="normal", env=env, prefix=args.reports / f"chaos-load-{stamp}",
                            locustfile=LOCUSTFILE)
        time.sleep(ramp)
        baseline = (time.time(), time.time() + args.baseline_seconds)
        time.sleep(args.baseline_seconds)
        windows = []
        for fault in selected:
            notes: dict[str, Any] = {}
            inject = time.time()
            print(f"  {fault.name}: inject", flush=True)
            fault.inject(st, notes)
            time.sleep(max(0.0, inject + args.fault_seconds - time.time()))
            heal = time.time()
            fault.heal(st, notes)
            print(f"  {fault.name}: healed ({time.time() - heal:.1f} s)", flush=True)
            time.sleep(max(0.0, heal + args.after_seconds - time.time()))
            windows.append(Window(fault=fault, inject=inject, heal=heal, end=time.time(), notes=notes))
        locust_out = _wait_locust(proc, max(plan - (time.time() - locust_started), 0) + 60)
        load_end = time.time()
        requests = figures.read_journal(journal, harness_journal)
        probe = figures.read_journal(probe_journal)
        accepted = ledger.Accepted.from_journal([*probe, *requests])
        drained = ledger.drain(accepted, dsn=st.dsn, crm_redis=st.redis_url(0), pricing_redis=st.redis_url(2),
                               timeout=args.drain_seconds)
        findings = ledger.reconcile(accepted, dsn=st.dsn, crm_redis=st.redis_url(0),
                                    pricing_redis=st.redis_url(2), webhooks=st.sink.path, since=run_started)
        time.sleep(2)  # the last alerts' resolution
        poller.stop()
        result = report.Result(
            generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), command=_command(),
            settings={"fault_seconds": args.fault_seconds, "after_seconds": args.after_seconds,
                      "baseline_seconds": args.baseline_seconds, "load_fraction": args.load_fraction,
                      "capacity_rps": round(capacity, 1), "probe_users": args.probe_users,
                      "probe_seconds": args.probe_seconds, "users": args.users,
                      "think_scale": round(think_scale, 4), "price_delay": args.price_delay,
                      "compression": args.compression, "drained_seconds": drained,
                      "port_offset": st.ports.external - 8080, "cpus": os.cpu_count()},
            load_before=load_before, load_after=os.getloadavg(), baseline=baseline, load_end=load_end,
            windows=[report.WindowInput(name=w.fault.name, what=w.fault.what, inject=w.inject, heal=w.heal,
                                        end=w.end, notes=w.notes, detect=w.fault.detect,
                                        no_alert=w.fault.no_alert) for w in windows],
            requests=requests, accepted=accepted, findings=findings, episodes=poller.episodes,
            locust_tail=locust_out[-3000:])
        data = report.as_json(result)
        json_path = args.reports / f"chaos-{stamp}.json"
        json_path.write_text(json.dumps(data, indent=2, default=str))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report.render(data, json_path=json_path))
        print(report.table(data), flush=True)
        print(f"wrote {args.out} and {json_path}", flush=True)
        return 0 if data["totals"]["lost"] == 0 and data["totals"]["duplicates"] == 0 else 1
    finally:
        poller.stop()
        st.stop()
        if not args.keep:
            import shutil
            shutil.rmtree(root, ignore_errors=True)


def _command() -> str:
    return "python -m loadtests.chaos " + " ".join(sys.argv[1:])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        for fault in fault_matrix.matrix(Path(os.devnull)):
            print(f"{fault.name:<22} {fault.what}")
        return 0
    if args.render:
        args.out.write_text(report.render(json.loads(args.render.read_text()), json_path=args.render))
        return 0
    return run(args)
