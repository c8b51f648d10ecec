"""Run a rendered pod spec as local processes: the cluster-less smoke test's kubelet.

Each container's command, args and env (``tests/support/pod_env.py``) run as they are, but for what
only a cluster has: ``python`` is this interpreter, service DNS names map to loopback addresses
(``hosts``; listeners keep the rendered 0.0.0.0, so a pod answers on every loopback address),
every volume mount is a folder under the pod's own directory (ConfigMap data written there), and
native sidecars (init containers with ``restartPolicy: Always``) start first and must pass their
startup probe before the main containers start, as the kubelet orders them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from devstack.process import ServerProcess
from tests.support.pod_env import command_line, container_env
from tests.support.waiting import eventually

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


@dataclass
class LocalPod:
    name: str
    spec: Mapping[str, Any]
    root: Path
    hosts: Mapping[str, str]  #: service DNS name → the loopback address it resolves to
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    secrets: Mapping[tuple[str, str], str] = field(default_factory=dict)
    processes: list[ServerProcess] = field(default_factory=list)

    def _mounts(self, container: Mapping[str, Any]) -> dict[str, Path]:
        """mountPath → local path; ConfigMap items written, other volumes empty folders."""
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        mounts = {}
        for m in container.get("volumeMounts", []):
            local = self.root / "volumes" / m["name"]
            local.mkdir(parents=True, exist_ok=True)
            if "configMap" in volumes[m["name"]]:
                for key, text in self.config_maps[volumes[m["name"]]["configMap"]["name"]].items():
                    (local / key).write_text(text)
            mounts[m["mountPath"]] = local / m["subPath"] if "subPath" in m else local
        return mounts

    def _localise(self, text: str, mounts: Mapping[str, Path]) -> str:
        for mount_path, local in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
            if text == mount_path or text.startswith(mount_path.rstrip("/") + "/"):
                return str(local) + text[len(mount_path):]
        names = "|".join(re.escape(h) for h in self.hosts)
        return re.sub(rf"(?<=[/@])({names})(?=:\d)", lambda m: self.hosts[m.group(1)], text)

    def start_container(self, container: Mapping[str, Any]) -> ServerProcess:
        mounts = self._mounts(container)
        rendered = container_env(container, secrets=self.secrets)
        env = {k: self._localise(v, mounts) for k, v in rendered.items()}
        argv = [self._localise(a, mounts) for a in command_line(container, env)]
        if argv[0] == "python":
            argv[0] = sys.executable
        base = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8"}
        proc = ServerProcess(argv, log_path=self.root / f"{container['name']}.log", env={**base, **env})
        proc.start()
        self.processes.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log_tail(15)}" for p in self.processes)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()


def probe_url(container: Mapping[str, Any], probe: Mapping[str, Any]) -> str:
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    get = probe["httpGet"]
    port = ports.get(get["port"], get["port"])
    return f"http://127.0.0.1:{port}{get['path']}"


async def answers(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def wait_probes(container: Mapping[str, Any], proc: ServerProcess, *, timeout: float,
                      kinds: tuple[str, ...] = PROBES) -> list[str]:
    """Every probe of ``kinds`` answers 200 (the process must stay alive); the URLs checked."""
    urls = [probe_url(container, container[k]) for k in kinds if k in container]
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async def ok(url: str = url) -> bool:
                assert proc.alive(), f"{container['name']} exited: {proc.log_tail()}"
                return await answers(session, url)
            await eventually(ok, timeout=timeout, what=f"{container['name']}: {url} answers 200")
    return urls


async def start_pod(pod: LocalPod, *, timeout: float = 60) -> dict[str, list[str]]:
    """Start native sidecars (each past its startup probe), then the main containers; wait until every
    probe of every container answers. Container name → probe URLs checked."""
    checked: dict[str, list[str]] = {}
    sidecars = [c for c in pod.spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    started = []
    for c in sidecars:
        proc = pod.start_container(c)
        checked[c["name"]] = await wait_probes(c, proc, timeout=timeout, kinds=("startupProbe",))
        started.append((c, proc))
    started += [(c, pod.start_container(c)) for c in pod.spec["containers"]]
    for c, proc in started:
        urls = await wait_probes(c, proc, timeout=timeout)
        checked[c["name"]] = sorted({*checked.get(c["name"], []), *urls})
    return checked
