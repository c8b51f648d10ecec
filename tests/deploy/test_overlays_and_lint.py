"""The Kustomize overlays build (`kubectl kustomize`, the pinned kubectl's kustomize v5.6) on the
rendered chart into valid objects; the deployment YAML passes yamllint."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import chart

KUSTOMIZE = chart.ROOT / "deploy" / "kustomize"
LINTED = ["deploy/helm/mes-edge/values.yaml", "deploy/helm/mes-edge/Chart.yaml", "deploy/kustomize",
          "deploy/prometheus-adapter", ".github/workflows"]


def _build(overlay: str, tmp_path: Path) -> list[chart.Obj]:
    tree = tmp_path / "kustomize"
    shutil.copytree(KUSTOMIZE, tree, ignore=shutil.ignore_patterns("rendered"))
    env = {"PATH": "/usr/bin:/bin", "HELM": str(chart.HELM), "RENDER_OUT": str(tree / "base" / "rendered")}
    subprocess.run([str(chart.ROOT / "scripts" / "render-chart.sh")], check=True, timeout=60, env=env)
    out = subprocess.run([str(chart.KUBECTL), "kustomize", str(tree / "overlays" / overlay)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize(("overlay", "namespace"),
                         [("staging", "mes-edge-staging"), ("production", "mes-edge")])
def test_an_overlay_builds_valid_objects(overlay: str, namespace: str, tmp_path: Path) -> None:
    objects = _build(overlay, tmp_path)
    assert len(objects) == len(chart.render())
    for obj in objects:
        chart.validate(obj)
        assert obj["metadata"]["namespace"] == namespace
        assert obj["metadata"]["labels"]["mes-edge.io/environment"] == overlay


def test_staging_is_smaller_and_labelled(tmp_path: Path) -> None:
    objects = _build("staging", tmp_path)
    assert chart.of_kind(objects, "HorizontalPodAutoscaler")[0]["spec"]["maxReplicas"] == 4
    assert chart.of_kind(objects, "ScaledObject")[0]["spec"]["maxReplicaCount"] == 4
    deployment = chart.named(objects, "Deployment", "mes-edge-gateway")
    gateway = deployment["spec"]["template"]["spec"]["containers"][0]
    assert gateway["image"] == "registry.example.com/mes-edge:staging"
    assert {"name": "DEPLOYMENT_ENVIRONMENT", "value": "staging"} in gateway["env"]


def test_production_exposes_only_the_external_listener(tmp_path: Path) -> None:
    objects = _build("production", tmp_path)
    outside = [s for s in chart.of_kind(objects, "Service") if s["spec"].get("type") == "LoadBalancer"]
    assert [s["metadata"]["name"] for s in outside] == ["mes-edge-gateway-external"]
    assert outside[0]["spec"]["externalTrafficPolicy"] == "Local"


def test_deployment_yaml_passes_yamllint() -> None:
    paths = [p for p in LINTED if (chart.ROOT / p).exists()]
    yamllint = str(chart.ROOT / ".venv" / "bin" / "yamllint")
    proc = subprocess.run([yamllint, "-c", ".yamllint.yaml", "--strict", *paths],
                          cwd=chart.ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
