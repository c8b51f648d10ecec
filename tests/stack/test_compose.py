"""docker-compose.yml against the compose-spec JSON schema (vendored, no network), plus our rules.

No container engine runs here: this checks the file's shape and our conventions, not that the
images start (see docs/observability-stack.md, Limits).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.stack.stack_support import REPO

COMPOSE = REPO / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("compose_spec.json")
SECRET_NAMES = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|PASSWD", re.I)
FILE_SUFFIXES = ("_STORE", "_FILE")


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA.read_text())
    # the top-level `name` joined the Compose Specification after this vendored copy
    schema["properties"]["name"] = {"type": "string"}
    return schema


def test_compose_file_matches_the_compose_spec_schema() -> None:
    jsonschema.Draft7Validator(_schema()).validate(_compose())


def test_the_schema_rejects_a_misspelt_key() -> None:
    compose = _compose()
    compose["services"]["gateway"]["healthchek"] = compose["services"]["gateway"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError, match="healthchek"):
        jsonschema.Draft7Validator(_schema()).validate(compose)


def _services() -> list[tuple[str, dict[str, Any]]]:
    return sorted(_compose()["services"].items())


@pytest.mark.parametrize(("name", "service"), _services(), ids=[n for n, _ in _services()])
def test_every_service_has_a_healthcheck(name: str, service: dict[str, Any]) -> None:
    check = service.get("healthcheck", {})
    assert check.get("test"), f"{name} has no healthcheck"
    assert not check.get("disable")


@pytest.mark.parametrize(("name", "service"), _services(), ids=[n for n, _ in _services()])
def test_every_image_tag_is_pinned(name: str, service: dict[str, Any]) -> None:
    image = service.get("image")
    assert image, f"{name} has no image (built services get an explicit tag too)"
    repo, _, tag = image.rpartition(":")
    assert repo, f"{name}: {image} has no tag"
    assert tag not in {"latest", "stable", "main"}
    assert re.search(r"\d", tag), f"{name}: {image} is not a version"


def test_the_python_services_share_one_image_built_from_the_dockerfile() -> None:
    built = {name: s for name, s in _services() if "build" in s}
    assert {"gateway", "mes-1", "mes-2", "crm", "sidecar-mes-1", "sidecar-mes-2", "sidecar-crm"} <= set(built)
    assert len({s["image"] for s in built.values()}) == 1
    dockerfile = (REPO / "Dockerfile").read_text()
    # exact version, pinned by digest too
    pinned = r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$"
    assert re.search(pinned, dockerfile, re.M)
    assert "FROM ${PYTHON_IMAGE} AS runtime" in dockerfile  # multi-stage: the venv built apart
    assert "pip install --only-binary :all: '.[mesdb]'" in dockerfile  # runtime deps only, wheels


def test_the_whole_stack_is_there() -> None:
    names = {n for n, _ in _services()}
    stack = {"postgres", "redis", "elasticsearch", "filebeat", "kibana", "prometheus", "alertmanager",
             "grafana", "jaeger"}
    assert stack <= names


def _walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [item for k, v in node.items() for item in _walk(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [item for i, v in enumerate(node) for item in _walk(v, f"{path}[{i}]")]
    return [(path, node)]


def test_no_secret_has_a_value_in_the_file() -> None:
    """Every value of a secret-looking key is a required `${VAR:?…}` from .env (no default)."""
    for path, value in _walk(_compose()):
        key = path.rsplit(".", 1)[-1]
        if key.endswith(FILE_SUFFIXES) and isinstance(value, str) and value.startswith("/"):
            continue  # where a secret is kept (GATEWAY_API_KEY_STORE=/app/.run/keys/…), not a secret
        if SECRET_NAMES.search(key) and isinstance(value, str):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), f"{path} = {value!r}"
    text = COMPOSE.read_text()
    assert not re.search(r"\$\{[A-Z_]*(PASSWORD|SECRET|TOKEN)[A-Z_]*:-", text), "a secret with a default"
    assert not re.search(r"://[^:/\s]+:[^$@\s]+@", text), "credentials written into a URL"


def test_env_example_lists_every_required_variable_without_values() -> None:
    required = set(re.findall(r"\$\{([A-Z_]+):\?", COMPOSE.read_text()))
    example = dict(line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert required <= set(example)
    assert all(value == "" for value in example.values())


def test_volumes_are_named_and_declared() -> None:
    compose = _compose()
    declared = set(compose["volumes"])
    for name, service in _services():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith(("/", ".")):
                assert source in declared, f"{name}: volume {source} not declared"


def test_every_pricing_worker_service_is_a_prometheus_target() -> None:
    """prometheus.docker.yml scrapes the workers from a file_sd list: one entry per compose service."""
    workers = {n for n, _ in _services() if n.startswith("pricing-worker")}
    assert len(workers) >= 2
    listed = yaml.safe_load((REPO / "prometheus" / "targets" / "pricing-workers.docker.yml").read_text())
    targets = {t for group in listed for t in group["targets"]}
    assert targets == {f"{name}:9301" for name in workers}
    for name in workers:
        command = _compose()["services"][name]["command"]
        assert command[command.index("--metrics-port") + 1] == "9301"
        assert command[command.index("--metrics-host") + 1] == "0.0.0.0"
