"""What the partner policies cost: auth + three Redis rate-limit windows + OpenAPI validation + usage
accounting vs. without.

    .venv/bin/python -m bench.policies                       # 3 rounds x 8 s per shape, ~2 min
    .venv/bin/python -m bench.policies --rounds 1 --duration 3
    .venv/bin/python -m bench.policies --hot-path redis-py   # the script through redis-py's client
    .venv/bin/python -m bench.policies --topologies single,sentinel,cluster --rounds 1 --duration 5
    .venv/bin/python -m bench.policies --pair partner,unchecked --pairs 20 --duration 3  # one policy's cost

One gateway process (``--workers 1``) serves four routes to the same static nginx endpoints:
``partner`` = external ``/partner/v1/orders`` (API key in ``X-API-Key``, tier with burst/rate/
quota windows set far above the load, counters in a private Redis; under the partner API
document, so its query ``?status=SUBMITTED&page=1&per_page=20`` is validated against it),
``unchecked`` = the same policies on external ``/partner/bench/orders`` (outside the document's
``/partner/v1``: no validation) with the same query, ``uncounted`` = ``unchecked`` without usage
accounting (``usage: false``; every other route counts each request per partner per day, flushed
to the same Redis), and ``plain`` = internal ``/orders`` (no policies). The routes are measured
alternately (order flips each round), with
the same wrk shapes as ``bench.proxy``: every round of saturation (-t2 -c64: req/s), then every
round of steady (-c8, ``bench/steady.lua``) at half of the plain route's saturation req/s of this
run (p50/p99, the latency a partner sees below saturation). Medians over rounds.
Targets, ratios within the run (machines differ 2-3x in speed): partner/plain saturation req/s
>= 0.75 and partner/plain steady p50 <= 3 (the former "+1 ms over the plain route's 0.49 ms"), and
the validation cost: partner/unchecked saturation req/s >= 0.95 (issue 20: at most 5 %), and the
usage accounting cost: unchecked/uncounted saturation req/s >= 0.95 (our target: at most 5 %).

``order`` / ``order-unchecked`` (``--pair`` only, at saturation): ``partner`` / ``unchecked`` with a
POSTed NewOrder JSON body (``bench/post_order.lua``), the body validated against the document on
the first; nginx answers any method on ``/orders``, so nothing is created.

``--pair A,B`` measures only two routes, at saturation, in interleaved pairs, and reports the
per-pair ratios' median and spread from req/s and from the gateway's CPU seconds per request (the
figure a shared machine does not move): ``bench/policy_pairs.py``. ``partner,unchecked`` is the
OpenAPI validation's cost, ``unchecked,uncounted`` the usage accounting's.

``--topologies single,sentinel,cluster`` measures the same on each Redis topology in one run, each
started here on ephemeral ports (``bench/policy_topologies.py``; on ``single`` both clients, the
hand pipe and redis-py, with ``--hot-path both``, the default then), and prints them side by side:
ratios to single, and the policy path's requests/s per Redis core (partner requests over the CPU
seconds of every Redis process of the topology, from /proc/<pid>/stat, at saturation).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from bench import nginx
from bench.policy_pairs import Run, interleaved, measured, report
from bench.policy_topologies import TOPOLOGIES, RedisUnderTest, hot_paths, started, summary
from bench.processes import ROOT, ManagedProcess, free_ports, group_cpu_seconds
from bench.targets import STEADY_FRACTION, Target, per_thread_rate
from bench.wrk import WRK, run_wrk
from gateway.auth.api_keys import ApiKeyStore

PEPPER = "bench-pepper-0123456789abcdef"
CONFIG = """\
admin: {{host: 127.0.0.1, port: {admin}}}
logging: {{access_log: "{workdir}/access.log", app_log: "{workdir}/gateway.log"}}
listeners:
  external: {{host: 127.0.0.1, port: {external}}}
  internal: {{host: 127.0.0.1, port: {internal}}}
clusters:
  mes: {{endpoints: ["http://127.0.0.1:{e1}", "http://127.0.0.1:{e2}"], balancer: least_request,
        health_check: {{path: /healthz, interval: 5}}}}
api_keys: {{store: "{workdir}/keys.json", pepper: "{pepper}"}}
ratelimit:
  redis_url: "{redis}"
  hot_path: {hot_path}
  default_tier: bench
  tiers: {{bench: {{burst: 1000000/second, rate: 60000000/minute, quota: 1000000000/day}}}}
usage: {{redis_url: "{redis}"}}
routes:
  - {{name: partner, listener: external, prefix: /partner/v1/orders, methods: [GET, POST], cluster: mes,
     rewrite_prefix: /orders, auth: {{scopes: {{GET: [orders:read], POST: [orders:write]}}}}}}
  - {{name: unchecked, listener: external, prefix: /partner/bench/orders, methods: [GET, POST], cluster: mes,
     rewrite_prefix: /orders, auth: {{scopes: {{GET: [orders:read], POST: [orders:write]}}}}}}
  - {{name: uncounted, listener: external, prefix: /partner/bench/uncounted, methods: [GET], cluster: mes,
     rewrite_prefix: /orders, auth: {{scopes: {{GET: [orders:read]}}}}, usage: false}}
  - {{name: plain, listener: internal, prefix: /orders, methods: [GET], cluster: mes}}
"""
SHAPES = {"saturation": ["-t2", "-c64"], "steady": ["-t2", "-c8", "-s", str(ROOT / "bench/steady.lua")]}
WRK_THREADS = 2
THROUGHPUT_LIMIT = 0.75  # partner / plain saturation req/s, at least
VALIDATION_LIMIT = 0.95  # partner / unchecked saturation req/s, at least (validation costs <= 5 %)
USAGE_LIMIT = 0.95  # unchecked / uncounted saturation req/s, at least (usage accounting costs <= 5 %)
QUERY = "?status=SUBMITTED&page=1&per_page=20"
P50_LIMIT = 3.0  # partner / plain steady p50, at most


_Run = tuple[float, float, float, float, float, int]  # req/s, p50, p99, gateway µs/req, redis µs/req, errors


_Cpu = tuple[Callable[[], float], Callable[[], float]]  # CPU seconds of the gateway, of Redis
_Medians = dict[tuple[str, str], tuple[float, ...]]


def _wrk(url: str, shape: str, seconds: int, key: str | None, cpu: _Cpu, rate: str) -> _Run:
    """One wrk run, plus CPU per request of the gateway's and Redis' process groups (noise-proof)."""
    headers = ["-H", f"X-API-Key: {key}"] if key else []
    script_args = ["--", rate] if shape == "steady" else []
    argv = [WRK, *SHAPES[shape], f"-d{seconds}s", "--latency", *headers, url, *script_args]
    before = [read() for read in cpu]
    result, _ = run_wrk(argv, duration_s=seconds)
    used = [read() - b for read, b in zip(cpu, before, strict=True)]
    per_request = [1e6 * u / max(1, result.requests) for u in used]
    return (result.requests_per_s, result.p50_ms, result.p99_ms, per_request[0], per_request[1],
            result.errors)


def _endpoints(stack: contextlib.ExitStack, workdir: Path) -> tuple[int, int]:
    """Two static nginx endpoints (the upstream of both routes), stopped with ``stack``."""
    e1, e2 = free_ports(2)
    for i, port in enumerate((e1, e2), start=1):
        conf = workdir / f"endpoint-{i}.conf"
        conf.write_text(nginx.static_endpoint_config(name=f"endpoint-{i}", port=port, workdir=workdir))
        proc = ManagedProcess(f"endpoint-{i}", nginx.nginx_command(
            config=conf.read_text(), name=f"endpoint-{i}", workdir=workdir), workdir)
        stack.callback(proc.stop)
        proc.start()
        proc.wait_http_ok(port, "/healthz", 10)
    return e1, e2


_Variants = dict[str, tuple[str, str | None]]  # route name → (URL, API key)
#: variants that send a body (with --pair only, at saturation): their wrk script
POSTS = {"order": ROOT / "bench/post_order.lua", "order-unchecked": ROOT / "bench/post_order.lua"}
ROUND_VARIANTS = ("partner", "unchecked", "uncounted", "plain")  # the rounds of the full run


@contextlib.contextmanager
def _gateway(workdir: Path, endpoints: tuple[int, int], redis: RedisUnderTest, hot_path: str
             ) -> Iterator[tuple[ManagedProcess, _Variants]]:
    """One gateway process (``--workers 1``) on ``redis`` with ``hot_path``, ready; its four routes."""
    workdir.mkdir(parents=True)
    admin, external, internal = free_ports(3)
    key, _ = ApiKeyStore(workdir / "keys.json", PEPPER.encode()).create(
        partner="bench", tier="bench", scopes=("orders:read", "orders:write"))
    (workdir / "gateway.yaml").write_text(CONFIG.format(
        admin=admin, external=external, internal=internal, e1=endpoints[0], e2=endpoints[1], workdir=workdir,
        pepper=PEPPER, redis=redis.spec, hot_path=hot_path))
    gateway = ManagedProcess("gateway", [sys.executable, "-m", "gateway", "--config",
                                         str(workdir / "gateway.yaml"), "--workers", "1"], workdir)
    try:
        gateway.start()
        gateway.wait_http_ok(admin, "/readyz", 30)
        yield gateway, {"partner": (f"http://127.0.0.1:{external}/partner/v1/orders{QUERY}", key),
                        "unchecked": (f"http://127.0.0.1:{external}/partner/bench/orders{QUERY}", key),
                        "uncounted": (f"http://127.0.0.1:{external}/partner/bench/uncounted{QUERY}", key),
                        "plain": (f"http://127.0.0.1:{internal}/orders{QUERY}", None),
                        # POST of a NewOrder body (bench/post_order.lua), with and without the document
                        "order": (f"http://127.0.0.1:{external}/partner/v1/orders", key),
                        "order-unchecked": (f"http://127.0.0.1:{external}/partner/bench/orders", key)}
    finally:
        gateway.stop()


def _measure(workdir: Path, endpoints: tuple[int, int], redis: RedisUnderTest, hot_path: str,
             args: argparse.Namespace) -> tuple[_Medians, float]:
    """One gateway on ``redis`` with ``hot_path``: every route, both shapes; (medians, steady req/s)."""
    with _gateway(workdir, endpoints, redis, hot_path) as (gateway, variants):
        runs: dict[tuple[str, str], list[_Run]] = {}
        cpu: _Cpu = (lambda: group_cpu_seconds(gateway.pid), redis.cpu_seconds)
        rate, steady_rps = "", 0.0
        for shape in SHAPES:
            if shape == "steady":
                steady_rps = STEADY_FRACTION * statistics.median(r[0] for r in runs[("plain", "saturation")])
                rate = per_thread_rate(steady_rps, WRK_THREADS)
                print(f"steady rate: {steady_rps:,.0f} req/s ({STEADY_FRACTION:g} x plain saturation)")
            for rnd in range(args.rounds):
                order = list(ROUND_VARIANTS) if rnd % 2 == 0 else list(reversed(ROUND_VARIANTS))
                for name in order:
                    url, api_key = variants[name]
                    _wrk(url, shape, 1, api_key, cpu, rate)  # warm-up
                    run = _wrk(url, shape, args.duration, api_key, cpu, rate)
                    runs.setdefault((name, shape), []).append(run)
                    print(f"round {rnd + 1} {shape:<10} {name:<8} {run[0]:>8.0f} req/s  p50 {run[1]:.2f} ms"
                          f"  p99 {run[2]:.2f} ms  gateway {run[3]:.0f} µs/req  redis {run[4]:.0f} µs/req"
                          f"  errors {run[5]}", flush=True)
    medians = {k: tuple(statistics.median(r[i] for r in v) for i in range(6)) for k, v in runs.items()}
    return medians, steady_rps


def _pairs(workdir: Path, endpoints: tuple[int, int], redis: RedisUnderTest, hot_path: str,
           args: argparse.Namespace) -> list[str]:
    """``--pair A,B``: the two routes in interleaved pairs at saturation (``bench/policy_pairs.py``)."""
    pair = tuple(args.pair.split(","))
    with _gateway(workdir, endpoints, redis, hot_path) as (gateway, variants):
        if len(pair) != 2 or not set(pair) <= set(variants) or pair[0] == pair[1]:
            raise SystemExit(f"--pair: two of {', '.join(variants)}, e.g. partner,unchecked")
        if args.rate and set(pair) & set(POSTS):
            raise SystemExit(f"--pair {args.pair}: {', '.join(POSTS)} run at saturation only (no --rate)")

        def run(name: str) -> Run:
            url, key = variants[name]
            headers = ["-H", f"X-API-Key: {key}"] if key else []
            if name in POSTS:
                headers += ["-s", str(POSTS[name])]
            shape = [*SHAPES["steady"], f"-d{args.duration}s", *headers, url, "--",
                     per_thread_rate(args.rate, WRK_THREADS)] if args.rate else [
                *SHAPES["saturation"], f"-d{args.duration}s", *headers, url]
            argv = [WRK, "--latency", *shape]

            def wrk() -> tuple[float, int, int]:
                result, _ = run_wrk(argv, duration_s=args.duration)
                return result.requests_per_s, result.requests, result.errors
            return measured(wrk, lambda: group_cpu_seconds(gateway.pid), args.duration)

        for name in pair:  # warm-up: connections, caches and the allocator of each route
            run(name)
        results = interleaved((pair[0], pair[1]), args.pairs, run, echo=lambda line: print(line, flush=True))
    return report((pair[0], pair[1]), results, paced=bool(args.rate))


def _report(med: _Medians, steady_rps: float) -> dict[str, float]:
    """The single-variant report of earlier versions; returns the summary row of this variant."""
    print(f"\n{'variant':<10}{'shape':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'gw µs/req':>11}"
          f"{'redis µs/req':>14}{'errors':>8}")
    for (name, shape), (rps, p50, p99, gw_us, redis_us, errors) in sorted(
            med.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{name:<10}{shape:<12}{rps:>9.0f}{p50:>9.2f}{p99:>9.2f}{gw_us:>11.0f}{redis_us:>14.1f}"
              f"{errors:>8.0f}")
    ratio = med[("partner", "saturation")][0] / med[("plain", "saturation")][0]
    partner_p50, plain_p50 = med[("partner", "steady")][1], med[("plain", "steady")][1]
    cpu_ratio = med[("plain", "saturation")][3] / med[("partner", "saturation")][3]
    print(f"\ngateway CPU per request plain/partner (throughput ratio on an idle core): {cpu_ratio:.2f}")
    added_p50 = med[("partner", "steady")][1] - med[("plain", "steady")][1]
    added_p99 = med[("partner", "steady")][2] - med[("plain", "steady")][2]
    print(f"throughput ratio partner/plain: {ratio:.2f} (cost {100 * (1 - ratio):.0f} %)")
    validation = med[("partner", "saturation")][0] / med[("unchecked", "saturation")][0]
    validation_cpu = med[("unchecked", "saturation")][3] / med[("partner", "saturation")][3]
    print(f"validation: throughput ratio partner/unchecked {validation:.3f} "
          f"(cost {100 * (1 - validation):.1f} %), "
          f"gateway CPU per request unchecked/partner {validation_cpu:.3f}")
    usage = med[("unchecked", "saturation")][0] / med[("uncounted", "saturation")][0]
    usage_cpu = med[("uncounted", "saturation")][3] / med[("unchecked", "saturation")][3]
    usage_p50 = med[("unchecked", "steady")][1] - med[("uncounted", "steady")][1]
    print(f"usage accounting: throughput ratio unchecked/uncounted {usage:.3f} "
          f"(cost {100 * (1 - usage):.1f} %), gateway CPU per request uncounted/unchecked {usage_cpu:.3f}, "
          f"steady p50 {usage_p50:+.3f} ms")
    print(f"added latency at the steady rate: p50 {added_p50:+.2f} ms, p99 {added_p99:+.2f} ms")
    for target in verdicts(ratio, partner_p50, plain_p50, steady_rps):
        print(target.line())
    print(Target(label="partner / unchecked (saturation req/s): OpenAPI validation", value=validation,
                 limit=VALIDATION_LIMIT, at_least=True, detail="medians of unpaired rounds").line())
    print(Target(label="unchecked / uncounted (saturation req/s): usage accounting", value=usage,
                 limit=USAGE_LIMIT, at_least=True, detail="medians of unpaired rounds").line())
    print("(one policy's cost with its spread, in interleaved pairs: --pair partner,unchecked or "
          "--pair unchecked,uncounted)")
    sat, plain = med[("partner", "saturation")], med[("plain", "saturation")]
    return {"rps": sat[0], "ratio": ratio, "p50": partner_p50, "gw_us": sat[3], "redis_us": sat[4],
            "idle_ms": plain[4] * plain[0] / 1000}  # Redis CPU ms per s while no request reaches it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.policies", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--hot-path", choices=("pipe", "redis-py", "both"), default=None,
                        help="ratelimit.hot_path: the project's RESP pipe or redis-py's client (on single "
                             "Redis; default pipe, with --topologies both)")
    parser.add_argument("--topologies", default="single",
                        help=f"comma-separated, each started here: {', '.join(TOPOLOGIES)}")
    parser.add_argument("--pair", default=None, metavar="A,B",
                        help="only these two routes, at saturation, in --pairs interleaved pairs: the cost "
                             "of one policy with its spread (partner,unchecked = OpenAPI validation; "
                             "unchecked,uncounted = usage accounting)")
    parser.add_argument("--pairs", type=int, default=12, help="with --pair: how many pairs (default 12)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="with --pair: both routes at this steady req/s (bench/steady.lua, -c8) instead "
                             "of saturation: the same work per second for both, so their CPU per request "
                             "compares at equal batching (pick a rate both sustain on the loaded machine)")
    args = parser.parse_args(argv)
    topologies = args.topologies.split(",")
    requested = args.hot_path or ("both" if len(topologies) > 1 else "pipe")
    print("command:", " ".join([sys.executable, "-m", "bench.policies", *(argv or sys.argv[1:])]))
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-policies-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        endpoints = _endpoints(stack, workdir)
        for topology in topologies:
            with started(topology, workdir / topology) as redis:
                for hot_path in hot_paths(topology, requested):
                    print(f"\n== {topology}, hot path {hot_path}", flush=True)
                    folder = workdir / f"{topology}-{hot_path}"
                    if args.pair:
                        print("\n".join(_pairs(folder, endpoints, redis, hot_path, args)))
                        continue
                    med, steady_rps = _measure(folder, endpoints, redis, hot_path, args)
                    rows[f"{topology}/{hot_path}"] = _report(med, steady_rps)
    if len(rows) > 1:
        print("\nside by side (partner route at saturation; redis µs/req: CPU of every Redis process of "
              "the topology per partner request):")
        print("\n".join(summary(rows)))
    return 0


def verdicts(
    throughput_ratio: float, partner_p50: float, plain_p50: float, steady_rps: float
) -> list[Target]:
    """The two targets, as ratios of the partner route over the plain route of the same run."""
    p50_ratio = partner_p50 / plain_p50 if plain_p50 > 0 else None
    return [
        Target(label="partner / plain (saturation req/s)", value=throughput_ratio, limit=THROUGHPUT_LIMIT,
               at_least=True),
        Target(label=f"partner / plain steady p50 at {steady_rps:,.0f} req/s ({STEADY_FRACTION:g} x plain"
               " saturation)", value=p50_ratio, limit=P50_LIMIT, at_least=False,
               detail=f"{partner_p50:.2f} / {plain_p50:.2f} ms", missing="plain p50 is 0 ms: no ratio"),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
