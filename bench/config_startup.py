"""What validating the gateway's config costs at start-up: the project's parser vs msgspec vs pydantic.

    .venv/bin/python -m bench.config_startup                      # ~1 min
    .venv/bin/python -m bench.config_startup --old-tree /work/base  # + the parser of another checkout

msgspec is not a dependency of the project; to measure it, install it beside the venv first:
``.venv/bin/pip install --target /tmp/msgspec-bench msgspec==0.22.0`` and run with
``PYTHONPATH=/tmp/msgspec-bench`` (without it the msgspec row says "not installed").
pydantic is in the venv (a dependency of the dev tools, not of the gateway).

Two configs: ``config/gateway.yaml`` (``${…}`` defaults substituted) and a generated large one
(``--routes`` routes over ``--clusters`` clusters, every section used). YAML loading is the same
for all and is left out. Each variant runs in ``--runs`` fresh interpreters, one after the other
(rounds rotate the order); medians of:

* **import**: the validation machinery (``configkit`` / ``msgspec`` / ``pydantic``; nothing for
  ``--old-tree``); the standard library modules the gateway imports anyway are loaded first, and
  every variant's bytecode is cached by an unmeasured first run (a temporary pycache prefix);
* **schema**: building the schema classes (the libraries only, with what pydantic imports lazily;
  the project's dataclasses exist in every design);
* **1st parse**: the first validation of gateway.yaml — import + schema + 1st parse is what each
  process start pays (``--check``, every worker);
* **warm**: one more validation of gateway.yaml and of the large config (median of ``--repeat``).

The project's parser does everything (types, ranges, unknown keys, the rules across fields, the
frozen objects the gateway uses); the library rows only check the schema in
``bench/config_schema.py`` — the rules across fields would still be code on top of them.
For scale, the wall time of ``python -m gateway --check --dev --config config/gateway.yaml``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.processes import ROOT
from gateway.config import substitute_env

GATEWAY_YAML = ROOT / "config" / "gateway.yaml"
VARIANTS = ("configkit", "msgspec", "pydantic")
OLD = "old-tree"

#: Runs in a fresh interpreter (argv: variant, repeat; stdin: [small, large]); prints the timings.
_RUN = """
import dataclasses, difflib, json, re, statistics, sys, time, typing
import yaml
small, large = json.loads(sys.stdin.read())
variant, repeat = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
if variant != "old-tree":
    __import__(variant)
t1 = time.perf_counter()
if variant in ("configkit", "old-tree"):
    from gateway.config import parse_config as validate
    t2 = t_schema = time.perf_counter()
else:
    from bench.config_schema import msgspec_schema, pydantic_schema
    t_schema = time.perf_counter()
    validate = (msgspec_schema if variant == "msgspec" else pydantic_schema)()[1]
    t2 = time.perf_counter()
validate(small)
t3 = time.perf_counter()

def warm(data, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        validate(data)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3

print(json.dumps({"import_ms": (t1 - t0) * 1e3, "build_ms": (t2 - t_schema) * 1e3,
                  "first_ms": (t3 - t2) * 1e3, "warm_ms": warm(small, repeat),
                  "warm_large_ms": warm(large, max(3, repeat // 10))}))
"""


def gateway_yaml() -> Any:
    """config/gateway.yaml as the gateway reads it, with every ``${VAR:-default}`` at its default."""
    return yaml.safe_load(substitute_env(GATEWAY_YAML.read_text(encoding="utf-8"), env={}))


def large_config(routes: int, clusters: int) -> Any:
    """gateway.yaml grown to ``clusters`` copies of its ``mes`` cluster and ``routes`` routes."""
    base = gateway_yaml()
    mes = base["clusters"]["mes"]
    data = copy.deepcopy(base)
    data["clusters"] = {f"c{i:02d}": {**copy.deepcopy(mes), "endpoints": [
        f"http://10.0.{i}.1:9111", f"http://10.0.{i}.2:9111"]} for i in range(clusters)}
    table: list[dict[str, Any]] = [r for r in base["routes"] if r.get("handler")]
    for i in range(routes - len(table)):
        cluster = f"c{i % clusters:02d}"
        if i % 2:
            table.append({"name": f"ext-{i}", "listener": "external", "prefix": f"/partner/v1/svc{i}",
                          "methods": ["GET", "POST"], "cluster": cluster, "rewrite_prefix": f"/svc{i}",
                          "auth": {"scopes": {"GET": ["orders:read"], "POST": ["orders:write"]}},
                          "ratelimit": {"on_backend_error": "local", "limits": {"svc-burst": "20/second"}},
                          "cache": {"ttl": 10, "stale_if_error": 60,
                                    "key_params": {"status": None, "page": 1}}})
        else:
            table.append({"name": f"int-{i}", "listener": "internal", "prefix": f"/svc{i}",
                          "methods": ["GET", "POST"], "cluster": cluster,
                          "timeouts": {"per_try": 20, "overall": 40}, "retry": {"attempts": 1},
                          "cache": {"ttl": 30, "stale_while_revalidate": 10,
                                    "key_params": {"status": None, "page": 1, "per_page": 50}}})
    data["routes"] = table
    return data


def run_once(variant: str, configs: str, repeat: int, old_tree: Path | None,
             pycache: str) -> dict[str, float] | None:
    """One fresh interpreter; None when the variant's library is not installed.

    Bytecode is cached under ``pycache`` for every variant (as an installed package has its .pyc;
    the libraries' come with their wheels), so no variant pays for compiling its sources.
    """
    cwd, env = ROOT, {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    if variant == OLD and old_tree is not None:
        cwd = old_tree
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(old_tree), env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "-c", _RUN, variant, str(repeat)], input=configs, cwd=cwd,
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        if "No module named" in done.stderr:
            return None
        raise RuntimeError(f"{variant}: {done.stderr.strip()[-400:]}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def check_wall_ms(runs: int) -> float:
    """Median wall time of ``python -m gateway --check --dev`` on gateway.yaml (whole process)."""
    times = []
    env = {**os.environ, "MES_EDGE_DEV": "1"}
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gateway", "--check", "--dev", "--config", str(GATEWAY_YAML)],
                       cwd=ROOT, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.config_startup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=7, help="fresh interpreters per variant")
    p.add_argument("--repeat", type=int, default=100, help="warm validations of gateway.yaml per run")
    p.add_argument("--routes", type=int, default=200)
    p.add_argument("--clusters", type=int, default=50)
    p.add_argument("--old-tree", type=Path, help="also measure the gateway parser of this checkout")
    args = p.parse_args(argv)
    print("command:", " ".join([Path(sys.executable).name, "-m", "bench.config_startup", *sys.argv[1:]]))
    small, large = gateway_yaml(), large_config(args.routes, args.clusters)
    print(f"configs: gateway.yaml ({len(small['routes'])} routes, {len(small['clusters'])} clusters), "
          f"large ({len(large['routes'])} routes, {len(large['clusters'])} clusters); YAML loading excluded")
    configs = json.dumps([small, large])
    variants = [*VARIANTS, OLD] if args.old_tree else list(VARIANTS)
    samples: dict[str, list[dict[str, float]] | None] = {v: [] for v in variants}
    pycache = tempfile.mkdtemp(prefix="config-startup-pycache-")
    for variant in variants:  # unmeasured: writes the bytecode cache, finds what is not installed
        if run_once(variant, configs, 1, args.old_tree, pycache) is None:
            samples[variant] = None
    for round_ in range(args.runs):
        for variant in variants[round_ % len(variants):] + variants[:round_ % len(variants)]:
            found = samples[variant]
            if found is None:
                continue
            sample = run_once(variant, configs, args.repeat, args.old_tree, pycache)
            if sample is None:
                samples[variant] = None
            else:
                found.append(sample)
    rows = {v: None if s is None else {k: statistics.median(x[k] for x in s) for k in s[0]}
            for v, s in samples.items()}
    print(f"\n{'variant':<10} {'import':>8} {'schema':>8} {'1st parse':>10} {'= added':>8} "
          f"{'warm yaml':>10} {'warm large':>11}   (ms, medians of {args.runs} interpreters)")
    for variant, row in rows.items():
        if row is None:
            print(f"{variant:<10} not installed")
            continue
        row["added_ms"] = row["import_ms"] + row["build_ms"] + row["first_ms"]
        print(f"{variant:<10} {row['import_ms']:8.2f} {row['build_ms']:8.2f} {row['first_ms']:10.2f} "
              f"{row['added_ms']:8.2f} {row['warm_ms']:10.3f} {row['warm_large_ms']:11.2f}")
    ours = rows["configkit"]
    assert ours is not None
    print("\nratios to configkit (added start-up; warm parse of gateway.yaml / of the large config):")
    for variant in variants[1:]:
        row = rows[variant]
        if row is not None:
            added, small_x = row["added_ms"] / ours["added_ms"], row["warm_ms"] / ours["warm_ms"]
            large_x = row["warm_large_ms"] / ours["warm_large_ms"]
            note = ("the same rules, hand-written" if variant == OLD
                    else "the library checks the schema only")
            print(f"  {variant:<9} {added:6.1f}x   {small_x:6.2f}x / {large_x:6.2f}x   ({note})")
    shutil.rmtree(pycache, ignore_errors=True)
    wall = check_wall_ms(3)
    print(f"\nfor scale: python -m gateway --check --dev, whole process: {wall:.0f} ms (median of 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
