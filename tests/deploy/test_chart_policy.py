"""Policies over the rendered objects: what a reviewer of a production chart checks by eye."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.config import load_config
from tests.support import chart
from tests.support.pod_env import container_env


def test_every_container_is_non_root_read_only_and_capped(objects: list[chart.Obj]) -> None:
    for name, spec in chart.pod_specs(objects):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec.get("automountServiceAccountToken") is False, name
        for c in chart.all_containers(spec):
            where = f"{name}/{c['name']}"
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["runAsUser"] != 0, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["privileged"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) == {"cpu", "memory"}, f"{where}: {kind}"


def test_every_long_running_container_has_probes(objects: list[chart.Obj]) -> None:
    for name, spec in chart.pod_specs(objects):
        for c in chart.all_containers(spec):
            if c["name"].startswith("legacy-"):  # the stand-in for the user's own legacy container
                continue
            assert {"livenessProbe", "readinessProbe"} <= set(c), f"{name}/{c['name']}"


def _admin_ports(objects: list[chart.Obj]) -> set[str | int]:
    ports: set[str | int] = set()
    for _, spec in chart.pod_specs(objects):
        for c in chart.all_containers(spec):
            for p in c.get("ports", []):
                if "admin" in p["name"]:
                    ports |= {p["name"], p["containerPort"]}
    return ports


def test_no_service_exposes_an_admin_port(objects: list[chart.Obj]) -> None:
    admin = _admin_ports(objects)
    assert {"admin", 9901, "sidecar-admin", 9121} <= admin
    for svc in chart.of_kind(objects, "Service"):
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] not in admin, svc["metadata"]["name"]
            assert p["port"] not in admin, svc["metadata"]["name"]


def test_only_the_external_service_can_leave_the_cluster(objects: list[chart.Obj]) -> None:
    lb = chart.render(set_values={"gateway.externalService.type": "LoadBalancer"})
    outside = [s for s in chart.of_kind(lb, "Service") if s["spec"].get("type", "ClusterIP") != "ClusterIP"]
    assert [s["metadata"]["name"] for s in outside] == ["mes-edge-gateway-external"]
    assert [p["targetPort"] for p in outside[0]["spec"]["ports"]] == ["external"]


def test_every_deployment_has_a_pdb_and_spreads(objects: list[chart.Obj]) -> None:
    pdbs = chart.of_kind(objects, "PodDisruptionBudget")
    pdb_selectors = [p["spec"]["selector"]["matchLabels"] for p in pdbs]
    for d in chart.of_kind(objects, "Deployment"):
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert any(sel.items() <= labels.items() for sel in pdb_selectors), d["metadata"]["name"]
        keys = {t["topologyKey"] for t in d["spec"]["template"]["spec"]["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, d["metadata"]["name"]


def test_the_sidecar_is_a_native_sidecar(objects: list[chart.Obj]) -> None:
    for tpl in chart.of_kind(objects, "PodTemplate"):
        [sidecar] = tpl["template"]["spec"]["initContainers"]
        assert sidecar["restartPolicy"] == "Always"
        assert sidecar["startupProbe"]["httpGet"]["path"] == "/healthz"  # the legacy starts after it
        assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_secrets_are_referenced_never_inlined(objects: list[chart.Obj]) -> None:
    assert not chart.of_kind(objects, "Secret")
    sensitive = ("PASSWORD", "PEPPER", "TOKENS", "MES_DSN")
    for name, spec in chart.pod_specs(objects):
        for c in chart.all_containers(spec):
            for item in c.get("env", []):
                if any(word in item["name"] for word in sensitive):
                    assert "secretKeyRef" in item.get("valueFrom", {}), f"{name}/{c['name']}: {item['name']}"


def _gateway(objects: list[chart.Obj]) -> chart.Obj:
    return chart.component(objects, "Deployment", "gateway")


def test_the_gateway_config_loads_with_the_pods_environment(objects: list[chart.Obj], tmp_path: Path) -> None:
    """The ConfigMap's gateway.yaml with the Deployment's env: every listener on 0.0.0.0 and on a
    declared container port, the drain shorter than the grace period minus the preStop wait."""
    gw = _gateway(objects)
    spec = gw["spec"]["template"]["spec"]
    [container] = spec["containers"]
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text(chart.named(objects, "ConfigMap", "mes-edge-gateway")["data"]["gateway.yaml"])
    config = load_config(config_file, env=container_env(container))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {n: (lst.host, lst.port) for n, lst in config.listeners.items()} == {
        "external": ("0.0.0.0", ports["external"]), "internal": ("0.0.0.0", ports["internal"])}
    assert (config.admin.host, config.admin.port) == ("0.0.0.0", ports["admin"])
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert spec["terminationGracePeriodSeconds"] > pre_stop + config.drain_timeout
    assert str(config.ratelimit.redis_url).startswith("redis://:placeholder")  # $(REDIS_PASSWORD) expanded


def test_the_config_checksum_follows_the_config() -> None:
    def checksum(objs: list[chart.Obj]) -> str:
        return str(_gateway(objs)["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    first = chart.render()
    assert checksum(first) == checksum(chart.render())
    # a different release name changes the ConfigMap's labels, hence its text and the checksum
    assert checksum(first) != checksum(chart.render(release="other"))


def test_values_hold_no_secret() -> None:
    values = yaml.safe_load((chart.CHART / "values.yaml").read_text())
    assert set(values["secrets"].values()) == {  # names, not contents
        "mes-edge-gateway", "mes-edge-api-keys", "mes-edge-webhook-secrets", "mes-edge-redis",
        "mes-edge-mes-db"}
    assert "password" not in str(values["redis"]).lower()


def test_every_mes_edge_container_is_probed_on_healthz_and_readyz(objects: list[chart.Obj]) -> None:
    """Liveness on /healthz, readiness on /readyz (the alert webhook's stdlib server has /healthz only)."""
    for name, spec in chart.pod_specs(objects):
        for c in chart.all_containers(spec):
            if c["name"].startswith("legacy-"):
                continue
            where = f"{name}/{c['name']}"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            ready = "/healthz" if c["name"] == "alert-webhook" else "/readyz"
            assert c["readinessProbe"]["httpGet"]["path"] == ready, where


def test_an_unready_pod_never_blocks_a_drain(objects: list[chart.Obj]) -> None:
    for pdb in chart.of_kind(objects, "PodDisruptionBudget"):
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow", pdb["metadata"]["name"]


def test_deployments_run_as_the_charts_service_account_without_a_token(objects: list[chart.Obj]) -> None:
    [account] = chart.of_kind(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert not chart.of_kind(objects, "RoleBinding") + chart.of_kind(objects, "ClusterRoleBinding")
    for d in chart.of_kind(objects, "Deployment"):
        assert d["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    existing = chart.render(set_values={"serviceAccount.create": "false", "serviceAccount.name": "theirs"})
    assert not chart.of_kind(existing, "ServiceAccount")
    for d in chart.of_kind(existing, "Deployment"):
        assert d["spec"]["template"]["spec"]["serviceAccountName"] == "theirs"
    assert "serviceAccount.name is required" in chart.render_failure({"serviceAccount.create": "false"})
