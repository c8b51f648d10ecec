"""The Helm chart as objects: render it with the pinned helm, validate objects offline.

helm and kubectl come from ``scripts/install-k8s-tools.sh`` (``make test``'s deps step) in
``.venv/k8s-tools/bin``. Built-in kinds are validated by kubernetes-validate (strict) for
``KUBERNETES_VERSION``; the KEDA and Prometheus Operator kinds against the CRD schemas vendored in
``deploy/crds/`` (their source and version: ``deploy/crds/README.md``).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "mes-edge"
CRDS = ROOT / "deploy" / "crds"
TOOLS = ROOT / ".venv" / "k8s-tools" / "bin"
HELM, KUBECTL = TOOLS / "helm", TOOLS / "kubectl"
#: the Kubernetes version the chart is validated for (docs/deploy.md); kubectl 1.33.9 is pinned beside it
KUBERNETES_VERSION = "1.33.0"
RELEASE = "mes-edge"

Obj = dict[str, Any]


def render(*, values_files: tuple[Path, ...] = (), set_values: Mapping[str, str] | None = None,
           release: str = RELEASE, namespace: str = "mes-edge") -> list[Obj]:
    """``helm template`` the chart; the objects it prints (empty documents dropped)."""
    cmd = [str(HELM), "template", release, str(CHART), "--namespace", namespace]
    for f in values_files:
        cmd += ["--values", str(f)]
    for key, value in (set_values or {}).items():
        cmd += ["--set", f"{key}={value}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def render_failure(set_values: Mapping[str, str]) -> str:
    """What helm prints when it refuses these values (the chart's `fail` checks)."""
    cmd = [str(HELM), "template", RELEASE, str(CHART)]
    for key, value in set_values.items():
        cmd += ["--set", f"{key}={value}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, "helm rendered values the chart should refuse"
    return proc.stderr


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    [obj] = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return obj


def component(objects: list[Obj], kind: str, name: str) -> Obj:
    """The one object of ``kind`` whose app.kubernetes.io/component label is ``name``."""
    [obj] = [o for o in of_kind(objects, kind)
             if o["metadata"]["labels"].get("app.kubernetes.io/component") == name]
    return obj


def pod_specs(objects: list[Obj]) -> Iterator[tuple[str, Obj]]:
    """(object name, pod spec) of every Deployment and PodTemplate."""
    for o in objects:
        if o["kind"] in ("Deployment", "PodTemplate"):
            template = o["spec"]["template"] if o["kind"] == "Deployment" else o["template"]
            yield o["metadata"]["name"], template["spec"]


def all_containers(spec: Obj) -> list[Obj]:
    return [*spec.get("initContainers", []), *spec["containers"]]


# ---------------------------------------------------------------- validation

def validate_builtin(obj: Obj, version: str = KUBERNETES_VERSION) -> None:
    """kubernetes-validate, strict: unknown fields are errors too."""
    kubernetes_validate.validate(obj, version, strict=True)


@cache
def crd_schemas() -> dict[tuple[str, str], Obj]:
    """(apiVersion, kind) → the vendored CRD's openAPIV3Schema, made strict like the API server's
    field validation (unknown fields refused unless the schema preserves them)."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    return schema


def _go_pattern(validator: Any, pattern: str, instance: Any,
                schema: Any) -> Iterator[jsonschema.ValidationError]:
    """``pattern`` with Go's inline flags (``^(?i)…``, used in the CRDs) moved to the front for Python."""
    if not isinstance(instance, str):
        return
    flags = re.IGNORECASE if "(?i)" in pattern else 0
    if not re.search(pattern.replace("(?i)", ""), instance, flags):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_CrdValidator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _go_pattern})


def is_custom(obj: Obj) -> bool:
    return (obj["apiVersion"], obj["kind"]) in crd_schemas()


def validate_custom(obj: Obj) -> None:
    """A KEDA / Prometheus Operator object against its vendored CRD schema; raises on the first error."""
    schema = crd_schemas()[(obj["apiVersion"], obj["kind"])]
    error = jsonschema.exceptions.best_match(_CrdValidator(schema).iter_errors(obj))
    if error is not None:
        raise error


def validate(obj: Obj) -> None:
    validate_custom(obj) if is_custom(obj) else validate_builtin(obj)
