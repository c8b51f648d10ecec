"""nginx configurations for the proxy benchmark: the static endpoint and the reference proxy.

Each server is its own nginx master (``daemon off``) with one worker, logs and pid
file in the run's temporary directory, so it can be started and stopped by PID
without touching any other nginx on the machine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

NGINX = "/usr/sbin/nginx"

#: Size of the reference's fixed ``GET /orders`` body.
ORDERS_BODY_BYTES = 1067


def orders_body(size: int = ORDERS_BODY_BYTES) -> str:
    """A fixed JSON list of orders, padded to exactly ``size`` bytes.

    It must not contain ``'``, ``\\`` or ``$``: nginx would read them as the end of
    the quoted string, an escape or a variable.
    """
    orders = [
        {
            "id": f"ORD-{n:06d}",
            "line": f"L{n % 4 + 1}",
            "sku": f"SKU-{1000 + n}",
            "qty": 10 + n,
            "status": "released",
        }
        for n in range(1, 9)
    ]
    document: dict[str, object] = {"orders": orders, "count": len(orders), "pad": ""}
    unpadded = len(json.dumps(document, separators=(",", ":")))
    if unpadded > size:
        raise ValueError(f"orders body needs at least {unpadded} bytes, got {size}")
    document["pad"] = "x" * (size - unpadded)
    body = json.dumps(document, separators=(",", ":"))
    assert len(body.encode()) == size
    return body


def _main_block(name: str, workdir: Path) -> str:
    return f"""\
worker_processes 1;
daemon off;
pid {workdir}/{name}.pid;
error_log {workdir}/{name}.error.log warn;
events {{ worker_connections 4096; }}
"""


def static_endpoint_config(*, name: str, port: int, workdir: Path) -> str:
    """An endpoint answering ``GET /orders`` with the fixed body and ``GET /healthz`` with 200."""
    return (
        _main_block(name, workdir)
        + f"""\
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        location /orders {{
            default_type application/json;
            return 200 '{orders_body()}';
        }}
        location = /healthz {{
            default_type text/plain;
            return 200 'ok';
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""
    )


def reverse_proxy_config(*, name: str, port: int, endpoint_ports: Sequence[int], workdir: Path) -> str:
    """A one-worker keep-alive reverse proxy, round-robin over ``endpoint_ports``."""
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in endpoint_ports)
    return (
        _main_block(name, workdir)
        + f"""\
http {{
    access_log off;
    upstream cluster {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://cluster;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    )


def nginx_command(*, config: str, name: str, workdir: Path) -> list[str]:
    """Write ``config`` into ``workdir`` and return the argv that runs it in the foreground."""
    path = workdir / f"{name}.conf"
    path.write_text(config)
    return [NGINX, "-p", str(workdir), "-e", str(workdir / f"{name}.error.log"), "-c", str(path)]
