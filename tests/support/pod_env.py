"""A rendered container's environment as the kubelet would build it (no cluster needed).

``valueFrom`` entries take the given secret values (or a placeholder) and the pod name; ``$(VAR)``
references to earlier variables are expanded in values, command and args, as Kubernetes does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
PLACEHOLDER = "placeholder-secret-value-of-forty-chars-x"


def expand(text: str, env: Mapping[str, str]) -> str:
    """``$(NAME)`` → env[NAME] when defined (undefined references stay, like the kubelet's)."""
    return _REF.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def container_env(container: Mapping[str, Any], *, pod_name: str = "mes-edge-pod-0",
                  secrets: Mapping[tuple[str, str], str] | None = None) -> dict[str, str]:
    """The environment, in order; secretKeyRef (name, key) → ``secrets`` or ``PLACEHOLDER``."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
            continue
        source = item["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[item["name"]] = (secrets or {}).get((ref["name"], ref["key"]), PLACEHOLDER)
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[item["name"]] = pod_name
        else:
            raise ValueError(f"unsupported valueFrom in {item['name']}: {source}")
    return env


def command_line(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    return [expand(part, env) for part in [*container.get("command", []), *container.get("args", [])]]
