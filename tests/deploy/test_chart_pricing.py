"""The chart's pricing values (``pricing.*``) reach the gateway's quotes config and the workers' options:
rendered, then read by the gateway's config loader and the worker's argument parser as the pods would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import GatewayConfig, load_config
from legacy_adapters.worker import check_settings, parse_args
from tests.support import chart
from tests.support.pod_env import container_env, expand

PRICING = {"shards": 4, "fairWindow": 3, "fairQuantum": 7, "tierWeights": {"gold": 4, "silver": 2},
           "waitObjectives": "gold=60,bronze=600,internal=30"}


def _gateway_config(objects: list[chart.Obj], tmp_path: Path) -> GatewayConfig:
    [container] = chart.component(objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text(chart.named(objects, "ConfigMap", "mes-edge-gateway")["data"]["gateway.yaml"])
    return load_config(config_file, env=container_env(container))


def _worker_options(objects: list[chart.Obj], monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = chart.component(objects, "Deployment", "pricing-worker")["spec"]["template"]["spec"]
    [container] = spec["containers"]
    env = container_env(container)
    monkeypatch.setattr(os, "environ", env)
    args = parse_args([expand(a, env) for a in container["args"]])
    check_settings(args)
    return args


def test_pricing_values_reach_the_gateways_quotes_config_and_the_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = tmp_path / "pricing.yaml"
    values.write_text(yaml.safe_dump({"pricing": PRICING}))
    objects = chart.render(values_files=(values,))
    quotes = _gateway_config(objects, tmp_path).quotes
    assert quotes is not None
    assert (quotes.shards, quotes.fair_window, quotes.fair_quantum) == (4, 3, 7)
    assert quotes.tier_weights == {"gold": 4, "silver": 2}
    worker = _worker_options(objects, monkeypatch)
    assert worker.shards == quotes.shards  # the workers' --shards must be >= the gateways'
    assert worker.wait_objectives == {"gold": 60.0, "bronze": 600.0, "internal": 30.0}


def test_the_default_pricing_values_are_make_runs(objects: list[chart.Obj], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    quotes = _gateway_config(objects, tmp_path).quotes
    assert quotes is not None
    assert (quotes.shards, quotes.fair_window, quotes.fair_quantum, quotes.tier_weights) == (1, 2, 5, {})
    worker = _worker_options(objects, monkeypatch)
    assert worker.shards == 1
    assert worker.wait_objectives == {"gold": 600.0, "silver": 1200.0, "bronze": 1800.0, "internal": 600.0}
