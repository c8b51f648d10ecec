"""jaeger/config.yaml: shape only — no Jaeger binary or image runs here (docs: Limits)."""

from __future__ import annotations

from typing import Any

import yaml

from tests.stack.stack_support import REPO


def _config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "jaeger" / "config.yaml").read_text())


def test_every_pipeline_component_is_defined() -> None:
    config = _config()
    service = config["service"]
    for extension in service["extensions"]:
        assert extension in config["extensions"]
    for pipeline in service["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for name in pipeline[kind]:
                assert name in config[kind], f"{kind}: {name}"


def test_otlp_is_received_on_4317_and_4318() -> None:
    protocols = _config()["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")


def test_storage_backend_is_shared_by_query_and_exporter() -> None:
    config = _config()
    backends = config["extensions"]["jaeger_storage"]["backends"]
    store = config["exporters"]["jaeger_storage_exporter"]["trace_storage"]
    assert store in backends
    assert config["extensions"]["jaeger_query"]["storage"]["traces"] == store
    assert set(backends[store]) <= {"memory", "elasticsearch", "badger"}


def test_tail_sampling_keeps_errors_and_slow_traces_and_samples_the_rest() -> None:
    config = _config()
    processors = config["service"]["pipelines"]["traces"]["processors"]
    assert processors.index("tail_sampling") < processors.index("batch")
    policies = {p["type"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["latency"]["latency"]["threshold_ms"] == 2500  # = the latency alerts' threshold
    assert 0 < policies["probabilistic"]["probabilistic"]["sampling_percentage"] < 100


def test_compose_runs_a_pinned_jaeger_v2_with_this_config() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    jaeger = compose["services"]["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/jaeger:2.")
    assert any(v.startswith("./jaeger/config.yaml:") for v in jaeger["volumes"])
