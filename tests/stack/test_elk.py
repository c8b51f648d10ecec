"""Filebeat config, the index template against real log lines, ILM, Kibana saved objects."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from datetime import datetime
from typing import Any

import yaml

from tests.stack.conftest import StackRun
from tests.stack.stack_support import REPO

ELK = REPO / "elk"
COMPATIBLE = {
    str: {"keyword", "wildcard", "match_only_text", "text", "ip", "date", "date_nanos", "flattened"},
    bool: {"boolean", "keyword"},
    int: {"long", "integer", "double", "scaled_float", "keyword", "date", "date_nanos"},
    float: {"double", "float", "scaled_float"},
}


def template() -> dict[str, Any]:
    return json.loads((ELK / "index-template.json").read_text())


def mapped_fields() -> dict[str, dict[str, Any]]:
    """Dotted field name → its mapping (leaves only; `flattened` fields cover their whole subtree)."""
    out: dict[str, dict[str, Any]] = {}

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            if "properties" in spec:
                walk(spec["properties"], f"{prefix}{name}.")
            else:
                out[f"{prefix}{name}"] = spec

    walk(template()["template"]["mappings"]["properties"], "")
    return out


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _mapping_for(field: str, fields: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if field in fields:
        return fields[field]
    parts = field.split(".")
    for i in range(len(parts) - 1, 0, -1):  # a flattened parent covers its subtree
        parent = fields.get(".".join(parts[:i]))
        if parent and parent["type"] == "flattened":
            return parent
    return None


def _compatible(value: Any, mapping: dict[str, Any]) -> bool:
    kind = mapping["type"]
    if value is None or kind == "flattened":
        return True
    if isinstance(value, list):
        return all(_compatible(v, mapping) for v in value)
    if kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return True
    if kind in {"date", "date_nanos"} and isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    return kind in COMPATIBLE.get(type(value), set())


def test_the_platform_wrote_log_lines_from_every_service(stack_run: StackRun) -> None:
    services = {line.get("service.name") for line in stack_run.log_lines}
    assert {"gateway", "legacy-mes", "legacy-crm"} <= services
    assert any(str(s).startswith("sidecar-") for s in services)
    datasets = {line.get("event.dataset") for line in stack_run.log_lines}
    assert {"gateway.access", "sidecar.access"} <= datasets


def test_every_logged_field_has_a_compatible_mapping(stack_run: StackRun) -> None:
    fields = mapped_fields()
    unmapped: dict[str, Any] = {}
    incompatible: dict[str, Any] = {}
    for line in stack_run.log_lines:
        for key, value in _flatten({k: v for k, v in line.items() if k != "_file"}).items():
            mapping = _mapping_for(key, fields)
            if mapping is None:
                unmapped.setdefault(key, (value, line["_file"]))
            elif not _compatible(value, mapping):
                incompatible.setdefault(key, (value, mapping["type"], line["_file"]))
    assert not unmapped
    assert not incompatible


def test_no_logged_field_is_both_a_value_and_an_object(stack_run: StackRun) -> None:
    """`a.b` and `a.b.c` in one document cannot both be indexed (Elasticsearch rejects it)."""
    for line in stack_run.log_lines:
        keys = set(_flatten({k: v for k, v in line.items() if k != "_file"}))
        clashes = {k for k in keys if any(other.startswith(k + ".") for other in keys)}
        assert not clashes, (clashes, line["_file"])


def test_filebeat_reads_every_json_line_the_platform_wrote(stack_run: StackRun) -> None:
    """The file input's globs (*.json.log, *-access.log) cover every line; *.log stdout copies repeat them."""
    config = yaml.safe_load((ELK / "filebeat.yml").read_text())
    files_input = next(i for i in config["filebeat.inputs"] if i["id"] == "mes-edge-files")
    globs = [p.rsplit("/", 1)[1] for p in files_input["paths"]]
    assert all(p.startswith("${MES_EDGE_LOG_DIR:.run/logs}/") for p in files_input["paths"])

    def key(line: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in line.items() if k != "_file"}, sort_keys=True)

    read = {key(li) for li in stack_run.log_lines if any(fnmatch.fnmatch(li["_file"], g) for g in globs)}
    ours = {key(li) for li in stack_run.log_lines if li.get("service.name")}
    assert ours - read == set()


def test_filebeat_parses_ndjson_from_files_and_containers_into_the_templated_indices() -> None:
    config = yaml.safe_load((ELK / "filebeat.yml").read_text())
    inputs = {i["id"]: i for i in config["filebeat.inputs"]}
    assert "/var/lib/docker/containers/*/*.log" in inputs["mes-edge-containers"]["paths"]
    for entry in inputs.values():
        ndjson = next(p["ndjson"] for p in entry["parsers"] if "ndjson" in p)
        assert ndjson["target"] == ""
        assert ndjson["expand_keys"] is True
    index = config["output.elasticsearch"]["index"]
    pattern = template()["index_patterns"][0]
    assert fnmatch.fnmatch(index.replace("%{+yyyy.MM.dd}", "2026.03.02"), pattern)
    assert pattern == "mes-edge-logs-*"  # what `python -m telemetry order-journey --es-url` searches
    assert config["setup.template.enabled"] is False


def test_ilm_policy_keeps_logs_hot_then_deletes_them() -> None:
    policy = json.loads((ELK / "ilm-policy.json").read_text())["policy"]
    assert list(policy["phases"]) == ["hot", "delete"]
    assert policy["phases"]["delete"]["actions"] == {"delete": {}}
    assert template()["template"]["settings"]["index.lifecycle.name"] == "mes-edge-logs"


def test_kibana_saved_objects_reference_each_other_and_mapped_fields() -> None:
    objects = [
        json.loads(line) for line in (ELK / "kibana" / "order-journey.ndjson").read_text().splitlines()
    ]
    ids = {(o["type"], o["id"]) for o in objects}
    assert len(ids) == len(objects)
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, ref
    fields = mapped_fields()
    searches = [o for o in objects if o["type"] == "search"]
    assert any(o["attributes"]["title"] == "Order journey" for o in searches)
    for search in searches:
        assert set(search["attributes"]["columns"]) <= set(fields)
        json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    pattern = next(o for o in objects if o["type"] == "index-pattern")
    assert pattern["attributes"]["title"] == "mes-edge-logs-*"
