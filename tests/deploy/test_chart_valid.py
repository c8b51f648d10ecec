"""Every object the chart renders is valid for the documented Kubernetes version (kubernetes-validate,
strict) or, for KEDA and Prometheus Operator kinds, against the vendored CRD schemas."""

from __future__ import annotations

import copy
import re
import subprocess

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support import chart


def test_every_object_is_valid(objects: list[chart.Obj]) -> None:
    errors = []
    for obj in objects:
        try:
            chart.validate(obj)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
    assert not errors, "\n".join(errors)


def test_built_in_objects_are_valid_from_the_charts_minimum_kubernetes_to_the_newest(
        objects: list[chart.Obj]) -> None:
    """Chart.yaml's kubeVersion (>= 1.30: native sidecars, preStop sleep) up to the newest schemas
    kubernetes-validate ships: no field the chart uses is missing in 1.30 or gone later."""
    chart_yaml = yaml.safe_load((chart.CHART / "Chart.yaml").read_text())
    minimum = re.fullmatch(r">=(\d+)\.(\d+)\.0-0", chart_yaml["kubeVersion"])
    assert minimum is not None
    newest = kubernetes_validate.utils.latest_version()
    versions = [f"1.{minor}.0" for minor in range(int(minimum.group(2)), int(newest.split(".")[1]) + 1)]
    assert versions[0] == "1.30.0"
    errors = []
    for version in versions:
        for obj in objects:
            if chart.is_custom(obj):
                continue
            try:
                chart.validate_builtin(obj, version)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{version} {obj['kind']}/{obj['metadata']['name']}: {exc}")
    assert not errors, "\n".join(errors[:10])


def test_custom_kinds_are_checked_against_their_crds(objects: list[chart.Obj]) -> None:
    kinds = {o["kind"] for o in objects if chart.is_custom(o)}
    assert kinds == {"ScaledObject", "PodMonitor", "ServiceMonitor", "PrometheusRule"}


@pytest.mark.parametrize("kind", ["Deployment", "ScaledObject", "PrometheusRule"])
def test_an_unknown_field_is_refused(objects: list[chart.Obj], kind: str) -> None:
    """The validators are strict: a misspelt field fails, it is not silently dropped."""
    obj = copy.deepcopy(chart.of_kind(objects, kind)[0])
    obj["spec"]["replicaz"] = 3
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        chart.validate(obj)


def test_a_wrong_type_in_a_crd_object_is_refused(objects: list[chart.Obj]) -> None:
    obj = copy.deepcopy(chart.of_kind(objects, "ScaledObject")[0])
    obj["spec"]["maxReplicaCount"] = "eight"
    with pytest.raises(jsonschema.ValidationError):
        chart.validate(obj)


@pytest.mark.parametrize("overrides", [
    {"gateway.autoscaling.enabled": "false", "pricingWorker.keda.enabled": "false"},
    {"networkPolicy.enabled": "false", "monitoring.podMonitors": "false",
     "monitoring.prometheusRule": "false", "monitoring.dashboards.enabled": "false",
     "alertWebhook.enabled": "false", "sidecar.enabled": "false"},
    {"image.digest": "sha256:" + "a" * 64, "gateway.externalService.type": "LoadBalancer",
     "gateway.externalService.externalTrafficPolicy": "Local", "sidecar.mesProbes": "false",
     "sidecar.relay.enabled": "false"},
])
def test_other_value_combinations_render_valid_objects(overrides: dict[str, str]) -> None:
    for obj in chart.render(set_values=overrides):
        chart.validate(obj)


def test_fixed_replicas_without_autoscalers(objects: list[chart.Obj]) -> None:
    assert "replicas" not in chart.named(objects, "Deployment", "mes-edge-gateway")["spec"]  # the HPA owns it
    fixed = chart.render(set_values={"gateway.autoscaling.enabled": "false",
                                     "pricingWorker.keda.enabled": "false"})
    assert chart.named(fixed, "Deployment", "mes-edge-gateway")["spec"]["replicas"] == 2
    assert not chart.of_kind(fixed, "HorizontalPodAutoscaler")
    assert not chart.of_kind(fixed, "ScaledObject")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"gateway.terminationGracePeriodSeconds": "30"}, "preStopSleepSeconds + drainTimeoutSeconds"),
    ({"pricingWorker.terminationGracePeriodSeconds": "30"}, "gracePeriodSeconds"),
    ({"gateway.upstreams.mes2": "http://mes-1:9111"}, "mes1 and mes2 must differ"),
])
def test_a_grace_period_shorter_than_the_drain_is_refused(overrides: dict[str, str], message: str) -> None:
    assert message in chart.render_failure(overrides)


def test_helm_lint_strict_passes() -> None:
    proc = subprocess.run([str(chart.HELM), "lint", "--strict", str(chart.CHART)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
