"""A stand-in for the gateway's command line, to check the benchmark's gateway path.

    python -m bench.proxy --gateway-cmd "{python} -m bench.fake_gateway --config {config} --workers {workers}"

It reads the gateway config the benchmark wrote (so a bad YAML or a missing key
fails here), then runs the bare proxy on the first route's listener, forwarding to
that route's cluster endpoints, with ``GET /readyz`` on the admin port.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from bench import bare_proxy


def bare_proxy_args(config: dict[str, Any], workers: int) -> list[str]:
    route = config["routes"][0]
    listener = config["listeners"][route["listener"]]
    endpoints = config["clusters"][route["cluster"]]["endpoints"]
    argv = ["--port", str(listener["port"]), "--workers", str(workers)]
    argv += ["--admin-port", str(config["admin"]["port"])]
    for endpoint in endpoints:
        argv += ["--endpoint", endpoint]
    return argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    bare_proxy.main(bare_proxy_args(config, args.workers))


if __name__ == "__main__":
    main()
