"""The chart's NetworkPolicies, tested by what they let through (tests/support/netpol.py evaluates
them as a CNI would): partners reach only the external listener, admin/metrics stay inside, and
every component's egress is denied except the few destinations it uses, taken from the values."""

from __future__ import annotations

import pytest

from tests.support import chart
from tests.support.netpol import Pod, connection_allowed, egress_allowed, ingress_allowed, isolated

INTERNET_HOST = "93.184.216.34"     # a public address (a partner, a webhook receiver)
INTERNET_HOST6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
METADATA = "169.254.169.254"        # the cloud metadata service
PLANT_HOST = "10.20.30.40"          # a private address of the plant network

DNS = Pod({"k8s-app": "kube-dns"}, namespace="kube-system")
REDIS = Pod({"app.kubernetes.io/name": "redis"})
POSTGRES = Pod({"app.kubernetes.io/name": "postgresql"})
JAEGER = Pod({"app.kubernetes.io/name": "jaeger"}, namespace="observability")
ELASTIC = Pod({"app.kubernetes.io/name": "elasticsearch"}, namespace="observability")
PROMETHEUS = Pod({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring")
REDIS_ELSEWHERE = Pod({"app.kubernetes.io/name": "redis"}, namespace="other-team")
A_POD_NEARBY = Pod({"app": "something-else"})


def _pod(objects: list[chart.Obj], kind: str, name: str) -> Pod:
    obj = chart.named(objects, kind, name)
    template = obj["template"] if kind == "PodTemplate" else obj["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for c in chart.all_containers(template["spec"])
             for p in c.get("ports", [])}
    return Pod(template["metadata"]["labels"], named_ports=ports)


def _pods(objects: list[chart.Obj]) -> dict[str, Pod]:
    return {"gateway": _pod(objects, "Deployment", "mes-edge-gateway"),
            "worker": _pod(objects, "Deployment", "mes-edge-pricing-worker"),
            "webhook": _pod(objects, "Deployment", "mes-edge-alert-webhook"),
            "mes": _pod(objects, "PodTemplate", "mes-edge-sidecar-mes"),
            "crm": _pod(objects, "PodTemplate", "mes-edge-sidecar-crm")}


def _policies(objects: list[chart.Obj]) -> list[chart.Obj]:
    return chart.of_kind(objects, "NetworkPolicy")


def test_every_pod_is_isolated_in_both_directions(objects: list[chart.Obj]) -> None:
    policies = _policies(objects)
    for name, pod in _pods(objects).items():
        assert isolated(policies, pod, "Ingress"), name
        assert isolated(policies, pod, "Egress"), name


def test_partners_reach_only_the_external_listener(objects: list[chart.Obj]) -> None:
    policies, gateway = _policies(objects), _pods(objects)["gateway"]
    ports = gateway.named_ports
    assert ingress_allowed(policies, gateway, INTERNET_HOST, ports["external"])
    assert not ingress_allowed(policies, gateway, INTERNET_HOST, ports["internal"])
    assert not ingress_allowed(policies, gateway, INTERNET_HOST, ports["admin"])


def test_admin_and_metrics_only_from_monitoring(objects: list[chart.Obj]) -> None:
    policies, pods = _policies(objects), _pods(objects)
    for name, port in (("gateway", "admin"), ("worker", "metrics"), ("mes", "sidecar-admin"),
                       ("crm", "sidecar-admin"), ("webhook", "http")):
        number = pods[name].named_ports[port]
        assert ingress_allowed(policies, pods[name], PROMETHEUS, number), name
        assert not ingress_allowed(policies, pods[name], A_POD_NEARBY, number), name
        assert not ingress_allowed(policies, pods[name], INTERNET_HOST, number), name
    # the operators' listener: this namespace, not the Internet
    internal = pods["gateway"].named_ports["internal"]
    assert ingress_allowed(policies, pods["gateway"], A_POD_NEARBY, internal)
    assert not ingress_allowed(policies, pods["gateway"], PROMETHEUS, internal)


def test_every_component_resolves_names_and_reaches_redis(objects: list[chart.Obj]) -> None:
    policies = _policies(objects)
    for name, pod in _pods(objects).items():
        if name == "webhook":
            continue
        assert egress_allowed(policies, pod, DNS, 53, "UDP"), name
        assert egress_allowed(policies, pod, DNS, 53, "TCP"), name
        assert egress_allowed(policies, pod, REDIS, 6379), name
        assert egress_allowed(policies, pod, JAEGER, 4318), name  # OTLP/HTTP of observability.otlpEndpoint
        assert not egress_allowed(policies, pod, REDIS, 22), name
        assert not egress_allowed(policies, pod, REDIS_ELSEWHERE, 6379), name
        assert not egress_allowed(policies, pod, DNS, 443), name
        assert not egress_allowed(policies, pod, METADATA, 80), name
        assert not egress_allowed(policies, pod, PLANT_HOST, 443), name


def test_the_gateway_and_workers_reach_the_legacy_sidecars_not_the_legacy(objects: list[chart.Obj]) -> None:
    policies, pods = _policies(objects), _pods(objects)
    for source in ("gateway", "worker"):
        for legacy in ("mes", "crm"):
            target = pods[legacy]
            assert connection_allowed(policies, pods[source], target, target.named_ports["sidecar"])
            assert not connection_allowed(policies, pods[source], target, target.named_ports["sidecar-admin"])
            assert not egress_allowed(policies, pods[source], target, 9101)  # the legacy's own port


def test_only_the_gateway_reads_elasticsearch(objects: list[chart.Obj]) -> None:
    policies, pods = _policies(objects), _pods(objects)
    assert egress_allowed(policies, pods["gateway"], ELASTIC, 9200)  # python -m telemetry order-journey
    for name in ("worker", "mes", "crm"):
        assert not egress_allowed(policies, pods[name], ELASTIC, 9200), name


def test_only_workers_reach_the_internet_and_only_public_addresses(objects: list[chart.Obj]) -> None:
    policies, pods = _policies(objects), _pods(objects)
    worker = pods["worker"]
    for port in (443, 80):
        assert egress_allowed(policies, worker, INTERNET_HOST, port)
        assert egress_allowed(policies, worker, INTERNET_HOST6, port)
    assert not egress_allowed(policies, worker, INTERNET_HOST, 22)
    for private in (PLANT_HOST, METADATA, "172.20.0.5", "192.168.1.10", "100.64.0.1", "127.0.0.1",
                    "fd00::5", "fe80::1", "::ffff:10.0.0.5", "64:ff9b::a00:5"):
        assert not egress_allowed(policies, worker, private, 443), private  # as the callback guard
    for name in ("gateway", "mes", "crm", "webhook"):
        assert not egress_allowed(policies, pods[name], INTERNET_HOST, 443), name


def test_only_mes_pods_reach_the_mes_database(objects: list[chart.Obj]) -> None:
    policies, pods = _policies(objects), _pods(objects)
    assert egress_allowed(policies, pods["mes"], POSTGRES, 5432)
    for name in ("crm", "gateway", "worker", "webhook"):
        assert not egress_allowed(policies, pods[name], POSTGRES, 5432), name


def test_the_alert_webhook_opens_no_connection(objects: list[chart.Obj]) -> None:
    policies, webhook = _policies(objects), _pods(objects)["webhook"]
    for peer, port, proto in ((DNS, 53, "UDP"), (REDIS, 6379, "TCP"), (INTERNET_HOST, 443, "TCP")):
        assert not egress_allowed(policies, webhook, peer, port, proto)


def test_egress_ports_follow_the_values() -> None:
    objects = chart.render(set_values={
        "redis.port": "6380", "sidecar.port": "9500",
        "observability.otlpEndpoint": "https://otel-collector.observability",  # no port: 443
        "observability.elasticsearchUrl": "http://elasticsearch.observability:9201",
        "networkPolicy.egress.mesDatabase.port": "6432"})
    policies, pods = _policies(objects), _pods(objects)
    assert egress_allowed(policies, pods["gateway"], REDIS, 6380)
    assert not egress_allowed(policies, pods["gateway"], REDIS, 6379)
    assert egress_allowed(policies, pods["gateway"], pods["mes"], 9500)
    assert not egress_allowed(policies, pods["gateway"], pods["mes"], 9111)
    assert egress_allowed(policies, pods["worker"], JAEGER, 443)
    assert not egress_allowed(policies, pods["worker"], JAEGER, 4318)
    assert egress_allowed(policies, pods["gateway"], ELASTIC, 9201)
    assert egress_allowed(policies, pods["mes"], POSTGRES, 6432)


def test_no_observability_endpoint_no_observability_egress() -> None:
    objects = chart.render(set_values={"observability.otlpEndpoint": "",
                                       "observability.elasticsearchUrl": ""})
    policies = _policies(objects)
    for name, pod in _pods(objects).items():
        assert not egress_allowed(policies, pod, JAEGER, 4318), name
        assert not egress_allowed(policies, pod, ELASTIC, 9200), name


def test_no_egress_rule_allows_every_destination(objects: list[chart.Obj]) -> None:
    for policy in _policies(objects):
        for rule in policy["spec"].get("egress") or []:
            assert rule.get("to"), policy["metadata"]["name"]
            assert rule.get("ports"), policy["metadata"]["name"]


@pytest.mark.parametrize("key", ["dnsTo", "redisTo", "legacyTo"])
def test_a_required_egress_peer_list_cannot_be_empty(key: str) -> None:
    message = chart.render_failure({f"networkPolicy.egress.{key}": "null"})
    assert f"networkPolicy.egress.{key} is empty" in message


def test_legacy_extra_egress_is_added_to_both_legacy_pods() -> None:
    objects = chart.render(set_values={
        "networkPolicy.egress.legacyExtra[0].to[0].ipBlock.cidr": "10.9.0.0/16",
        "networkPolicy.egress.legacyExtra[0].ports[0].port": "1521"})
    policies, pods = _policies(objects), _pods(objects)
    for name in ("mes", "crm"):
        assert egress_allowed(policies, pods[name], "10.9.1.2", 1521), name
    assert not egress_allowed(policies, pods["gateway"], "10.9.1.2", 1521)


def test_egress_can_be_left_open() -> None:
    objects = chart.render(set_values={"networkPolicy.egress.enabled": "false"})
    policies = _policies(objects)
    for name, pod in _pods(objects).items():
        assert not isolated(policies, pod, "Egress"), name
        assert isolated(policies, pod, "Ingress"), name
