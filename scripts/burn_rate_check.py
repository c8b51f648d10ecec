"""The pipeline's burn-rate gate after a release (scripts/staging-smoke.sh; docs/deploy.md, "Pipeline").

Asks the environment's Prometheus, and exits 1 (the caller then runs ``helm rollback``) when:

* Prometheus scrapes no ``up{job="gateway",namespace=NS} == 1`` target: it cannot see the release,
  so the check cannot vouch for it (fail closed, never a vacuous pass);
* ``PartnerApiErrorBudgetBurn`` fires for NS at any look during the bake window (``--bake`` seconds,
  a look every ``--interval``): the 1h/5m pair pages after 2 minutes of a 7.2 % error ratio;
* it is still pending for NS at the end of the window: the burn condition holds right now.

The alert carries ``namespace`` (prometheus/rules/partner-api-slo.yml aggregates by it), so staging's
errors are never diluted by production's traffic nor blamed on it. Standard library only.

    python scripts/burn_rate_check.py --prometheus http://127.0.0.1:9090 --namespace mes-edge-staging
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

ALERT = "PartnerApiErrorBudgetBurn"


def query(prometheus: str, expr: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """An instant query's result vector; raises on any failure (an unreachable Prometheus fails the gate)."""
    url = f"{prometheus.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the operator's URL)
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"query {expr!r} failed: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _alerts(prometheus: str, namespace: str, state: str) -> list[dict[str, Any]]:
    return query(prometheus, f'ALERTS{{alertname="{ALERT}",namespace="{namespace}",alertstate="{state}"}}')


def check(prometheus: str, namespace: str, *, bake: float, interval: float) -> str | None:
    """None when the release passes; otherwise why it must be rolled back."""
    if not query(prometheus, f'up{{job="gateway",namespace="{namespace}"}} == 1'):
        return f"Prometheus scrapes no gateway in {namespace}: the burn rate cannot be checked"
    deadline = time.monotonic() + bake
    while True:
        firing = _alerts(prometheus, namespace, "firing")
        if firing:
            windows = sorted(f"{a['metric'].get('long_window')}/{a['metric'].get('short_window')}"
                             for a in firing)
            return f"{ALERT} is firing in {namespace} ({', '.join(windows)})"
        if time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    if _alerts(prometheus, namespace, "pending"):
        return f"{ALERT} is pending in {namespace}: the burn condition holds at the end of the bake window"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--bake", type=float, default=300.0, help="seconds to watch the alert (default 300)")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between looks (default 15)")
    args = parser.parse_args(argv)
    try:
        problem = check(args.prometheus, args.namespace, bake=args.bake, interval=args.interval)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        problem = f"cannot ask Prometheus at {args.prometheus}: {exc}"
    if problem:
        print(f"burn-rate check FAILED: {problem}", file=sys.stderr)
        return 1
    print(f"burn-rate check passed for {args.namespace} ({args.bake:.0f} s watched)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
