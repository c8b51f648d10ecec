"""docker-compose.yml exposes only the partner listener beyond the host (issue 12, points 4 and 8)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"
#: First patch release of each Redis line carrying the Lua fixes CVE-2024-46981, CVE-2025-49844,
#: CVE-2025-46817, CVE-2025-46818 and CVE-2025-46819 (Redis release notes, October 2025).
LUA_FIXED = {(6, 2): (6, 2, 20), (7, 2): (7, 2, 11), (7, 4): (7, 4, 6), (8, 0): (8, 0, 4), (8, 2): (8, 2, 2)}


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def _published(port: str) -> tuple[str | None, str]:
    """``[host_ip:]host_port:container_port`` (``${VAR:-d}`` allowed) → (host_ip, container_port)."""
    parts = re.split(r":(?![^{]*\})", port)  # colons outside ${...}
    return (parts[0] if len(parts) == 3 else None), parts[-1].split("/")[0]


def test_compose_publishes_internal_and_admin_listeners_on_loopback_only() -> None:
    gateway = {container: host_ip for host_ip, container in map(_published, _services()["gateway"]["ports"])}
    assert gateway.get("8081") == "127.0.0.1"
    assert gateway.get("9901") == "127.0.0.1"


def test_compose_publishes_nothing_beyond_loopback_but_the_partner_listener() -> None:
    for name, service in _services().items():
        for port in service.get("ports", []):
            host_ip, container = _published(str(port))
            if (name, container) != ("gateway", "8080"):
                assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_compose_gateway_bound_beyond_loopback_requires_operator_tokens() -> None:
    env = _services()["gateway"]["environment"]
    assert env["GATEWAY_INTERNAL_HOST"] == "0.0.0.0"
    assert env["GATEWAY_OPERATOR_TOKENS"].startswith("${GATEWAY_OPERATOR_TOKENS:?")  # no default


def test_compose_redis_image_includes_the_lua_cve_fixes() -> None:
    image = _services()["redis"]["image"]
    match = re.fullmatch(r"redis:(\d+)\.(\d+)\.(\d+)(-[a-z0-9]+)?", image)
    assert match, f"redis image {image!r} is not pinned to a patch release"
    major, minor, patch = (int(match.group(i)) for i in (1, 2, 3))
    fixed = LUA_FIXED.get((major, minor), (major, minor, 0))
    assert (major, minor) in LUA_FIXED or (major, minor) >= (8, 4), f"unknown Redis line {major}.{minor}"
    assert (major, minor, patch) >= fixed, f"{image} predates the Lua CVE fixes"
