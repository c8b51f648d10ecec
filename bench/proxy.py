"""Proxy benchmark: the gateway against nginx, a bare aiohttp proxy and no proxy at all.

    .venv/bin/python -m bench.proxy [--rounds 3] [--duration 8] [--only direct,gateway-1p]

Starts two static nginx endpoints and every variant once, then runs the same wrk
load against each variant round-robin (the start rotates each round), under two
load shapes: saturation (64 connections), then steady (bench/steady.lua) at half of
the bare aiohttp proxy's saturation rate measured in the same run. Prints medians,
CPU per request, ratios and one verdict line per target (all ratios within the run,
bench/targets.py), and writes bench/results/proxy-<timestamp>.json. Exits 0 whether
targets pass or fail; 1 if a variant that should have run failed to start or broke
during the run. ``--tree /work/base`` runs the gateway of another checkout.
See bench/README.md for the method and how it differs from the reference.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

from bench import gateway, nginx, report, targets
from bench.processes import ROOT, ManagedProcess, StartupError, box_busy_seconds, free_ports
from bench.wrk import WrkError, run_wrk, wrk_command

BENCH_DIR = Path(__file__).resolve().parent
STEADY_SCRIPT = BENCH_DIR / "steady.lua"
VARIANTS = (
    "direct",
    "nginx-proxy",
    "bare-aiohttp",
    "bare-aiohttp-2p",
    "bare-http1",  # the bare proxy on the gateway's upstream client (http1.Pool): the design's ceiling
    "gateway-1p",
    "gateway-2p",
)
GATEWAYS = ("gateway-1p", "gateway-2p")
ORDERS_PATH = "/orders"
NOISY = 0.15  # cores used by processes outside the benchmark above which a run is flagged


@dataclasses.dataclass(frozen=True, kw_only=True)
class Shape:
    """A wrk load shape."""

    name: str
    threads: int
    connections: int
    script: Path | None


SHAPES = {
    "saturation": Shape(name="saturation", threads=2, connections=64, script=None),
    "steady": Shape(name="steady", threads=2, connections=8, script=STEADY_SCRIPT),
}


@dataclasses.dataclass(kw_only=True)
class Variant:
    """A running server under test and the port wrk loads."""

    name: str
    port: int
    server: ManagedProcess


class Interrupted(Exception):
    """The benchmark got SIGTERM."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proxy",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians over them")
    parser.add_argument("--duration", type=int, default=8, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk before each measured run")
    parser.add_argument(
        "--only", type=_names(VARIANTS), default=",".join(VARIANTS), help="comma-separated variants"
    )
    parser.add_argument(
        "--shapes", type=_names(tuple(SHAPES)), default=",".join(SHAPES), help="comma-separated load shapes"
    )
    parser.add_argument(
        "--steady-rate",
        type=float,
        help=f"total req/s of the steady shape (default: {targets.STEADY_FRACTION:g} x "
        f"{targets.RATE_REFERENCE}'s saturation req/s of this run)",
    )
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="checkout whose gateway (and http1 client, for bare-http1) to run, e.g. /work/base; "
        "everything else is this checkout's",
    )
    parser.add_argument(
        "--gateway-cmd",
        default=gateway.DEFAULT_COMMAND,
        help="gateway command; {python} {config} {workers} {admin_port} {internal_port} "
        "{external_port} {endpoint1} {endpoint2} {workdir} {access_log} are filled in",
    )
    parser.add_argument(
        "--gateway-config",
        type=Path,
        help="gateway config template (string.Template, same names as ${admin_port}); "
        "default: the contract's config, see bench/gateway.py",
    )
    parser.add_argument(
        "--gateway-listener",
        choices=("internal", "external"),
        default="internal",
        help="the listener wrk loads (the orders route is on internal)",
    )
    parser.add_argument("--readyz-path", default="/readyz", help="gateway readiness path on the admin port")
    parser.add_argument("--ready-timeout", type=float, default=15.0, help="seconds to wait for readiness")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.3,
        help="before each run, wait while processes outside the benchmark use more cores than this",
    )
    parser.add_argument(
        "--quiet-wait", type=int, default=20, help="seconds to wait for a quiet box at most (0: never wait)"
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--keep-workdir", action="store_true", help="keep configs and logs for debugging")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rounds must be >= 1, --duration > 0, --warmup >= 0 (whole seconds: wrk's -d)")
    if args.steady_rate is not None and args.steady_rate <= 0:
        parser.error("--steady-rate must be > 0")
    rate_measured = "saturation" in args.shapes and targets.RATE_REFERENCE in args.only
    if "steady" in args.shapes and args.steady_rate is None and not rate_measured:
        parser.error(
            f"the steady rate is {targets.STEADY_FRACTION:g} x {targets.RATE_REFERENCE}'s saturation req/s: "
            f"measure {targets.RATE_REFERENCE} at saturation too, or give --steady-rate"
        )
    args.tree = args.tree.resolve()
    if not (args.tree / "gateway").is_dir():
        parser.error(f"--tree {args.tree}: no gateway/ package there")
    return args


def _names(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(allowed)}")
        return [n for n in allowed if n in names]  # canonical order

    return parse


class Bench:
    """Starts the endpoints and variants, measures them, and stops everything it started."""

    def __init__(self, args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.workdir = workdir
        self.stack = stack
        self.not_measured: dict[str, str] = {}  # variant -> why (skipped)
        self.failed: dict[str, str] = {}  # variant -> why (broken)
        self.servers: list[ManagedProcess] = []  # everything started, to tell our CPU from others'
        self.steady_rate: float | None = args.steady_rate  # total req/s of the steady shape
        self.steady_skipped = ""  # why the steady shape did not run

    def _spawn(
        self,
        name: str,
        argv: list[str],
        ready: Callable[[ManagedProcess], None],
        *,
        tree: Path = ROOT,
    ) -> ManagedProcess:
        """Start a server (in ``tree``) and wait until ``ready`` returns; one never ready is stopped."""
        server = ManagedProcess(name, argv, self.workdir, cwd=tree, env=gateway.tree_env(tree))
        self.stack.callback(server.stop)
        server.start()
        self.servers.append(server)
        try:
            ready(server)
        except BaseException:
            server.stop()
            raise
        return server

    def _nginx(self, name: str, config: str, port: int) -> ManagedProcess:
        argv = nginx.nginx_command(config=config, name=name, workdir=self.workdir)
        path = "/healthz" if name.startswith("endpoint") else ORDERS_PATH
        return self._spawn(name, argv, lambda server: server.wait_http_ok(port, path, 10))

    def start(self) -> list[Variant]:
        endpoint_ports = free_ports(2)
        endpoints = [
            self._nginx(
                f"endpoint-{i}",
                nginx.static_endpoint_config(name=f"endpoint-{i}", port=port, workdir=self.workdir),
                port,
            )
            for i, port in enumerate(endpoint_ports, start=1)
        ]
        urls = tuple(f"http://127.0.0.1:{p}" for p in endpoint_ports)
        starters: dict[str, Callable[[], Variant]] = {
            "direct": lambda: Variant(name="direct", port=endpoint_ports[0], server=endpoints[0]),
            "nginx-proxy": lambda: self._start_nginx_proxy(endpoint_ports),
            "bare-aiohttp": lambda: self._start_bare("bare-aiohttp", 1, urls),
            "bare-aiohttp-2p": lambda: self._start_bare("bare-aiohttp-2p", 2, urls),
            "bare-http1": lambda: self._start_bare("bare-http1", 1, urls, client="http1"),
            "gateway-1p": lambda: self._start_gateway("gateway-1p", 1, (urls[0], urls[1])),
            "gateway-2p": lambda: self._start_gateway("gateway-2p", 2, (urls[0], urls[1])),
        }
        variants = []
        for name in self.args.only:
            try:
                variants.append(starters[name]())
                print(f"started {name}")
            except _Skip as skip:
                self.not_measured[name] = skip.reason
                print(f"SKIPPED: {skip.reason}: {name}: {skip.detail}")
            except (StartupError, ValueError, OSError) as exc:
                self.failed[name] = str(exc)
                self.not_measured[name] = "failed to start"
                print(f"FAILED: {name} did not start: {exc}")
        return variants

    def _start_nginx_proxy(self, endpoint_ports: list[int]) -> Variant:
        (port,) = free_ports(1)
        config = nginx.reverse_proxy_config(
            name="nginx-proxy", port=port, endpoint_ports=endpoint_ports, workdir=self.workdir
        )
        return Variant(name="nginx-proxy", port=port, server=self._nginx("nginx-proxy", config, port))

    def _start_bare(self, name: str, workers: int, urls: tuple[str, ...], client: str = "aiohttp") -> Variant:
        (port,) = free_ports(1)
        argv = [sys.executable, "-m", "bench.bare_proxy", "--port", str(port), "--workers", str(workers),
                "--client", client]
        for url in urls:
            argv += ["--endpoint", url]
        if client == "http1":
            argv += ["--client-tree", str(self.args.tree)]
        server = self._spawn(
            name, argv, lambda server: server.wait_http_ok(port, ORDERS_PATH, self.args.ready_timeout)
        )
        return Variant(name=name, port=port, server=server)

    def _start_gateway(self, name: str, workers: int, urls: tuple[str, str]) -> Variant:
        template = gateway.DEFAULT_CONFIG_TEMPLATE
        if self.args.gateway_config is not None:
            template = self.args.gateway_config.read_text()
        admin, external, internal = free_ports(3)
        launch = gateway.prepare_launch(
            name=name,
            workers=workers,
            ports=(admin, external, internal),
            endpoints=urls,
            workdir=self.workdir,
            command=self.args.gateway_cmd,
            config_template=template,
        )
        missing = gateway.missing_reason(launch.argv, self.args.tree)
        if missing is not None:
            raise _Skip("gateway not importable", f"{missing} (command: {shlex.join(launch.argv)})")
        port = launch.internal_port if self.args.gateway_listener == "internal" else launch.external_port

        def ready(server: ManagedProcess) -> None:
            server.wait_http_ok(launch.admin_port, self.args.readyz_path, self.args.ready_timeout)
            # /readyz may come from one worker while another is still starting: the route must answer too
            for _ in range(4 * workers):
                server.wait_http_ok(port, ORDERS_PATH, 5.0)

        server = self._spawn(name, launch.argv, ready, tree=self.args.tree)
        return Variant(name=name, port=port, server=server)

    def measure(self, variants: list[Variant]) -> list[report.Run]:
        """Every round of saturation, then (at a rate taken from those) every round of steady."""
        runs: list[report.Run] = []
        rounds, duration = self.args.rounds, self.args.duration
        for shape_name in self.args.shapes:
            shape = SHAPES[shape_name]
            script_args: tuple[str, ...] = ()
            if shape.script is not None:
                rate = self._choose_steady_rate(runs)
                if rate is None:
                    continue
                script_args = (targets.per_thread_rate(rate, shape.threads),)
            for round_no in range(1, rounds + 1):
                shift = (round_no - 1) % max(len(variants), 1)
                order = variants[shift:] + variants[:shift]
                for variant in order:
                    if variant.name in self.failed:
                        continue
                    try:
                        run = self._measure_one(variant, shape, round_no, duration, script_args)
                    except (WrkError, StartupError) as exc:
                        self.failed[variant.name] = f"round {round_no} {shape.name}: {exc}"
                        print(f"FAILED: {variant.name}: {exc}")
                        variant.server.stop()  # a broken server must not load the others' runs
                        continue
                    runs.append(run)
                    r = run.result
                    print(
                        f"[round {round_no}/{rounds}] {shape.name:<10} {variant.name:<16}"
                        f"{r.requests_per_s:>10,.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms"
                        f"  server {run.server_cores:.2f} cores"
                        + (f" {run.cpu_per_request_s * 1e6:.0f} µs/req" if run.cpu_per_request_s else "")
                        + (f"  ERRORS {r.errors}" if r.errors else "")
                        + (f"  (other load {run.other_cores:.2f} cores)" if run.other_cores > NOISY else ""),
                        flush=True,
                    )
        return runs

    def _choose_steady_rate(self, runs: list[report.Run]) -> float | None:
        """--steady-rate, or a fraction of the rate reference's saturation req/s in ``runs``."""
        if self.steady_rate is None:
            saturation = report.summarize(runs).get("saturation", {})
            self.steady_rate = targets.steady_rate(saturation)
        if self.steady_rate is None:
            reason = self.not_measured.get(targets.RATE_REFERENCE) or self.failed.get(
                targets.RATE_REFERENCE, "not measured"
            )
            self.steady_skipped = (
                f"no steady rate: {targets.RATE_REFERENCE} at saturation: {reason.splitlines()[0]}"
            )
            print(f"SKIPPED: steady shape: {self.steady_skipped}")
            return None
        explicit = self.args.steady_rate is not None
        print(f"steady rate: {targets.rate_label(self.steady_rate, explicit=explicit)}")
        return self.steady_rate

    def _measure_one(
        self, variant: Variant, shape: Shape, round_no: int, duration: int, script_args: tuple[str, ...]
    ) -> report.Run:
        url = f"http://127.0.0.1:{variant.port}{ORDERS_PATH}"

        def command(seconds: int) -> list[str]:
            return wrk_command(
                url,
                threads=shape.threads,
                connections=shape.connections,
                duration_s=seconds,
                script=shape.script,
                script_args=script_args,
            )

        self._wait_for_quiet(variant.name)
        if self.args.warmup > 0:
            run_wrk(command(self.args.warmup), duration_s=self.args.warmup)
        server_before, ours_before, box_before = (
            variant.server.cpu_seconds(),
            self._our_cpu(),
            box_busy_seconds(),
        )
        start = time.monotonic()
        result, _ = run_wrk(command(duration), duration_s=duration)
        elapsed = time.monotonic() - start
        server_cpu_s = variant.server.cpu_seconds() - server_before
        box_cores = (box_busy_seconds() - box_before) / elapsed
        other_cores = box_cores - (self._our_cpu() - ours_before) / elapsed
        code = variant.server.exit_code()
        if code is not None:
            raise StartupError(f"{variant.name} exited with code {code}:\n{variant.server.stderr_tail()}")
        return report.Run(
            round=round_no,
            shape=shape.name,
            variant=variant.name,
            result=result,
            server_cores=server_cpu_s / elapsed,
            server_cpu_s=server_cpu_s,
            box_cores=box_cores,
            other_cores=max(other_cores, 0.0),
        )

    def _wait_for_quiet(self, variant: str) -> None:
        """Sample other processes' load each second until it is low or ``--quiet-wait`` runs out."""
        deadline = time.monotonic() + self.args.quiet_wait
        waited = False
        while time.monotonic() < deadline:
            ours, box, start = self._our_cpu(), box_busy_seconds(), time.monotonic()
            time.sleep(1.0)
            elapsed = time.monotonic() - start
            other = (box_busy_seconds() - box - (self._our_cpu() - ours)) / elapsed
            if other <= self.args.quiet_below:
                return
            if not waited:
                print(
                    f"  {variant}: other processes use {other:.2f} cores,"
                    f" waiting up to {self.args.quiet_wait} s for a quiet box"
                )
                waited = True

    def _our_cpu(self) -> float:
        """CPU seconds of every server we started plus the wrk runs we waited for."""
        wrk = resource.getrusage(resource.RUSAGE_CHILDREN)
        return sum(s.cpu_seconds() for s in self.servers) + wrk.ru_utime + wrk.ru_stime


class _Skip(Exception):
    """A variant cannot run here (e.g. the gateway is not written yet)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({exc})"
        return (done.stdout + done.stderr).strip().splitlines()[0]

    versions = {
        "python": platform.python_version(),
        "nginx": first_line([nginx.NGINX, "-v"]),
        "wrk": first_line(["/usr/bin/wrk", "-v"]),
    }
    for package in ("aiohttp", "uvloop"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    if keep:
        path = Path(tempfile.mkdtemp(prefix="mes-bench-"))
        print(f"workdir (kept): {path}")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="mes-bench-") as name:
        yield Path(name)


def main(argv: list[str] | None = None) -> int:
    raw_argv = sys.argv[1:] if argv is None else argv
    args = parse_args(raw_argv)
    command_line = shlex.join([sys.executable, "-m", "bench.proxy", *raw_argv])
    print(f"command: {command_line}  (cwd {ROOT})")
    print(f"gateway tree: {args.tree} at {gateway.tree_revision(args.tree)}")
    signal.signal(signal.SIGTERM, _on_sigterm)
    started_at = dt.datetime.now(dt.UTC)
    try:
        with _workdir(args.keep_workdir) as workdir, contextlib.ExitStack() as stack:
            workdir.chmod(0o755)  # nginx workers run as an unprivileged user
            bench = Bench(args, workdir, stack)
            try:
                variants = bench.start()
            except StartupError as exc:
                print(f"FAILED: the static endpoints did not start: {exc}", file=sys.stderr)
                return 1
            runs = bench.measure(variants)
            print("stopping servers")
    except (KeyboardInterrupt, Interrupted):
        print("interrupted: servers stopped, no results written", file=sys.stderr)
        return 130
    return _report(args, command_line, started_at, bench, runs)


def _report(
    args: argparse.Namespace,
    command_line: str,
    started_at: dt.datetime,
    bench: Bench,
    runs: list[report.Run],
) -> int:
    summaries = report.summarize(runs)
    not_measured = {**bench.not_measured, **dict.fromkeys(bench.failed, "failed during the run")}
    ratio_values = report.ratios(summaries)
    rate = targets.rate_label(bench.steady_rate, explicit=args.steady_rate is not None)
    found = targets.targets(
        summaries, ratio_values, not_measured, rate=rate, steady_skipped=bench.steady_skipped
    )

    print(f"\n# Proxy benchmark: medians of {args.rounds} interleaved round(s) x {args.duration:g} s\n")
    for shape_name in args.shapes:
        shape = SHAPES[shape_name]
        by_variant = summaries.get(shape_name, {})
        if not by_variant:
            continue
        if shape_name == "saturation":
            print(f"## saturation: wrk -t{shape.threads} -c{shape.connections}\n")
            print(report.saturation_table(by_variant))
        else:
            print(
                f"\n## steady at {rate}: wrk -t{shape.threads} -c{shape.connections} -s steady.lua"
                " (added = variant - direct, paired per round)\n"
            )
            print(report.steady_table(by_variant))
    print("\n## ratios (saturation req/s)\n")
    for label, value in ratio_values.items():
        print(f"{label:<32} {'-' if value is None else f'{value:.2f}x'}")
    print("\n## gateway CPU per request (CPU of its process group / requests served)\n")
    for line in report.cpu_lines(summaries, GATEWAYS) or ["no gateway measured"]:
        print(line)
    print()
    for target in found:
        print(target.line())
    print(targets.ceiling_line(ratio_values))
    noisy = [r for r in runs if r.other_cores > NOISY]
    if noisy:
        worst = max(r.other_cores for r in noisy)
        print(
            f"WARNING: processes outside the benchmark used > {NOISY} cores in {len(noisy)}/{len(runs)} "
            f"runs (up to {worst:.2f}): the box is shared, these numbers are noisy"
        )
    for name, reason in bench.failed.items():
        print(f"FAILED: {name}: {reason.splitlines()[0]}")

    document: dict[str, Any] = {
        "command": command_line,
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": _cpu_count(), **_versions()},
        "tree": {"path": str(args.tree), "revision": gateway.tree_revision(args.tree)},
        "settings": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "steady_rate": {
                "requests_per_s": bench.steady_rate,
                "how": "--steady-rate"
                if args.steady_rate is not None
                else f"{targets.STEADY_FRACTION:g} x {targets.RATE_REFERENCE} saturation req/s",
                "skipped": bench.steady_skipped or None,
            },
            "shapes": {
                n: {"threads": s.threads, "connections": s.connections, "script": s.script and s.script.name}
                for n, s in SHAPES.items()
                if n in args.shapes
            },
            "variants": args.only,
            "gateway_cmd": args.gateway_cmd,
            "gateway_config": str(args.gateway_config) if args.gateway_config else None,
            "orders_body_bytes": nginx.ORDERS_BODY_BYTES,
        },
        "not_measured": bench.not_measured,
        "failed": bench.failed,
        "summary": {
            shape: {variant: dataclasses.asdict(s) for variant, s in by_variant.items()}
            for shape, by_variant in summaries.items()
        },
        "ratios": ratio_values,
        "targets": [
            {"label": t.label, "value": t.value, "limit": t.limit, "detail": t.detail, "verdict": t.verdict}
            for t in found
        ],
        "runs": [run.as_json() for run in runs],
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"proxy-{started_at.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: {path}")
    print(f"command: {command_line}")
    return 1 if bench.failed else 0


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
