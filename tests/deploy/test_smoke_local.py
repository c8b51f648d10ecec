"""Cluster-less smoke test (issue 17, point 7): the chart rendered, each pod's containers started as
local processes with the rendered command, args and environment (service names → 127.0.0.1, ports
set through values), and every probe path answering — a wrong command, port, env var or probe path
in the chart fails here. The MES and CRM pods are the sidecar PodTemplates (legacy stand-in + the
native sidecar); Redis and PostgreSQL are the test session's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import RedisServer
from devstack.ports import free_port
from tests.support import chart
from tests.support.pod_runner import LocalPod, start_pod

pytestmark = pytest.mark.slow
#: the Services the chart names → loopback addresses (two names for the one MES pod: the gateway
#: refuses two equal endpoints)
HOSTS = {"redis": "127.0.0.1", "mes-1": "127.0.0.1", "mes-2": "127.0.0.2", "crm": "127.0.0.1"}


@pytest.fixture
def pods() -> Iterator[list[LocalPod]]:
    started: list[LocalPod] = []
    yield started
    for pod in reversed(started):
        pod.stop()


def _ports() -> dict[str, int]:
    names = ("external", "internal", "admin", "metrics", "webhook", "mes_sidecar", "mes_admin", "mes",
             "crm_sidecar", "crm_admin", "crm")
    return {name: free_port() for name in names}


async def test_every_pod_starts_and_answers_its_probes(
        pods: list[LocalPod], redis_server: RedisServer, pg_dsn: str, tmp_path: Path) -> None:
    p = _ports()
    mes_url = f"http://mes-1:{p['mes_sidecar']}"
    common = {"redis.host": "redis", "redis.port": str(redis_server.port),  # one MES pod under two names
              "gateway.upstreams.mes1": mes_url, "gateway.upstreams.mes2": f"http://mes-2:{p['mes_sidecar']}",
              "gateway.upstreams.crm": f"http://crm:{p['crm_sidecar']}", "pricingWorker.backend": mes_url,
              "gateway.ports.external": str(p["external"]), "gateway.ports.internal": str(p["internal"]),
              "gateway.ports.admin": str(p["admin"]), "pricingWorker.metricsPort": str(p["metrics"]),
              "alertWebhook.port": str(p["webhook"]), "observability.otlpEndpoint": ""}
    # the two sidecar kinds share the sidecar.* ports: one render each, so both pods run side by side
    main = chart.render(set_values={**common, "sidecar.port": str(p["mes_sidecar"]),
                                    "sidecar.adminPort": str(p["mes_admin"]),
                                    "sidecar.mesUpstreamPort": str(p["mes"])})
    crm = chart.render(set_values={**common, "sidecar.port": str(p["crm_sidecar"]),
                                   "sidecar.adminPort": str(p["crm_admin"]),
                                   "sidecar.crmUpstreamPort": str(p["crm"])})
    config_maps = {m["metadata"]["name"]: m["data"] for m in chart.of_kind(main, "ConfigMap")}
    secrets = {("mes-edge-redis", "redis-password"): "", ("mes-edge-mes-db", "mes-dsn"): pg_dsn}
    order = [(main, "PodTemplate", "mes-edge-sidecar-mes"), (crm, "PodTemplate", "mes-edge-sidecar-crm"),
             (main, "Deployment", "mes-edge-pricing-worker"), (main, "Deployment", "mes-edge-alert-webhook"),
             (main, "Deployment", "mes-edge-gateway")]
    checked = {}
    for objects, kind, name in order:
        obj = chart.named(objects, kind, name)
        spec = (obj["template"] if kind == "PodTemplate" else obj["spec"]["template"])["spec"]
        pod = LocalPod(name, spec, tmp_path / name, HOSTS, config_maps=config_maps, secrets=secrets)
        pods.append(pod)
        try:
            checked[name] = await start_pod(pod, timeout=45)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}\n{pod.logs()}") from None
    paths = {c: sorted({u.rsplit("/", 1)[1] for u in urls})
             for pod in checked.values() for c, urls in pod.items()}
    assert paths == {"mes-edge-sidecar": ["healthz", "readyz"], "legacy-mes": [], "legacy-crm": [],
                     "pricing-worker": ["healthz", "readyz"], "alert-webhook": ["healthz"],
                     "gateway": ["healthz", "readyz"]}
