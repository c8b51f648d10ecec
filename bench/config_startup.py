"""What validating the gateway's config costs at start-up: the project's parser vs msgspec vs pydantic.

    .venv/bin/python -m bench.config_startup                  # ~30 s
    .venv/bin/python -m bench.config_startup --runs 9 --repeat 200

msgspec is not a dependency of the project; to measure it, install it beside the venv first:
``.venv/bin/pip install --target /tmp/msgspec-bench msgspec==0.22.0`` and run with
``PYTHONPATH=/tmp/msgspec-bench`` (without it the msgspec rows say "not installed").
pydantic is in the venv (a dependency of the dev tools, not of the gateway).

Two configs: ``config/gateway.yaml`` (``${…}`` defaults substituted) and a generated large one
(``--routes`` routes over ``--clusters`` clusters, every section used). YAML loading is the same
for all and is left out. Per variant:

* **cold** (``--runs`` fresh interpreters each, median): importing the validation machinery
  (``configkit`` / ``msgspec`` / ``pydantic``; the standard library modules the gateway imports
  anyway are loaded first), building the schema classes (the libraries only, including what
  pydantic imports lazily on first use; the project's dataclasses exist in every design), and
  the first validation of gateway.yaml;
  their sum is what the variant adds to every process start (``--check``, each worker);
* **warm** (in this process, median of ``--repeat`` calls): one validation of each config.

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
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.processes import ROOT
from gateway.config import parse_config, substitute_env

GATEWAY_YAML = ROOT / "config" / "gateway.yaml"
VARIANTS = ("configkit", "msgspec", "pydantic")

#: Runs in a fresh interpreter: prints {"import_ms", "build_ms", "first_ms"} as JSON. The standard
#: library modules the gateway imports anyway (and the hand-written parsers did) load before the clock.
_COLD = """
import dataclasses, difflib, json, re, sys, time, typing
import yaml
data = json.loads(sys.stdin.read())
variant = sys.argv[1]
t0 = time.perf_counter()
__import__(variant)
t1 = time.perf_counter()
if variant == "configkit":
    from gateway.config import parse_config as validate
    t2 = t_schema = time.perf_counter()
else:
    from bench.config_schema import msgspec_schema, pydantic_schema
    t_schema = time.perf_counter()
    validate = (msgspec_schema if variant == "msgspec" else pydantic_schema)()[1]
    t2 = time.perf_counter()
validate(data)
t3 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "build_ms": (t2 - t_schema) * 1e3,
                  "first_ms": (t3 - t2) * 1e3}))
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


def _validator(variant: str) -> Callable[[Any], Any] | None:
    if variant == "configkit":
        return parse_config
    from bench import config_schema

    try:
        return (config_schema.msgspec_schema if variant == "msgspec" else config_schema.pydantic_schema)()[1]
    except ImportError:
        return None


def cold(variant: str, data: Any, runs: int) -> dict[str, float] | None:
    """Medians over ``runs`` fresh interpreters; None when the library is not installed."""
    samples = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", _COLD, variant], input=json.dumps(data), cwd=ROOT,
                              capture_output=True, text=True, check=False)
        if done.returncode:
            if "No module named" in done.stderr:
                return None
            raise RuntimeError(f"{variant}: {done.stderr.strip()[-400:]}")
        samples.append(json.loads(done.stdout))
    result = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    result["added_ms"] = result["import_ms"] + result["build_ms"] + result["first_ms"]
    return result


def warm(validate: Callable[[Any], Any], data: Any, repeat: int) -> float:
    """Median milliseconds of one validation of ``data``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        validate(data)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


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
    p.add_argument("--runs", type=int, default=7, help="fresh interpreters per variant (cold)")
    p.add_argument("--repeat", type=int, default=100, help="validations per config (warm)")
    p.add_argument("--routes", type=int, default=200)
    p.add_argument("--clusters", type=int, default=50)
    args = p.parse_args(argv)
    print("command:", " ".join([Path(sys.executable).name, "-m", "bench.config_startup", *sys.argv[1:]]))
    small, large = gateway_yaml(), large_config(args.routes, args.clusters)
    print(f"configs: gateway.yaml ({len(small['routes'])} routes, {len(small['clusters'])} clusters), "
          f"large ({len(large['routes'])} routes, {len(large['clusters'])} clusters); YAML loading excluded")
    rows: dict[str, dict[str, float] | None] = {}
    for variant in VARIANTS:
        found = cold(variant, small, args.runs)
        validate = _validator(variant) if found else None
        if found is not None and validate is not None:
            found["warm_ms"] = warm(validate, small, args.repeat)
            found["warm_large_ms"] = warm(validate, large, max(10, args.repeat // 10))
        rows[variant] = found
    print(f"\n{'variant':<10} {'import':>9} {'schema':>9} {'1st parse':>10} {'= added':>9} "
          f"{'warm yaml':>10} {'warm large':>11}   (ms, medians)")
    for variant, row in rows.items():
        if row is None:
            print(f"{variant:<10} not installed")
            continue
        print(f"{variant:<10} {row['import_ms']:9.2f} {row['build_ms']:9.2f} {row['first_ms']:10.2f} "
              f"{row['added_ms']:9.2f} {row['warm_ms']:10.3f} {row['warm_large_ms']:11.2f}")
    ours = rows["configkit"]
    assert ours is not None
    print("\nratios to configkit (added start-up; warm parse of gateway.yaml / of the large config):")
    for variant in VARIANTS[1:]:
        row = rows[variant]
        if row is not None:
            added, small_x = row["added_ms"] / ours["added_ms"], row["warm_ms"] / ours["warm_ms"]
            large_x = row["warm_large_ms"] / ours["warm_large_ms"]
            print(f"  {variant:<9} {added:6.1f}x   {small_x:6.2f}x / {large_x:6.2f}x"
                  "   (the libraries' parse checks the schema only)")
    wall = check_wall_ms(3)
    print(f"\nfor scale: python -m gateway --check --dev, whole process: {wall:.0f} ms (median of 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
