"""Secrets never leave through /config or start-up errors (issue 12, point 8).

Endpoint URLs with credentials are refused when the config is loaded (the gateway never sends
them upstream, and they would sit in clear in /config); the redaction behind /config and the logs
recurses into lists as it does into mappings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from telemetry.redaction import REDACTED, redact_value
from tests.support.gateway import gateway_config

ROOT = Path(__file__).parents[2]
PASSWORD = "s3cret-in-the-url"


def test_endpoint_url_with_credentials_is_refused_at_config_load(tmp_path: Path) -> None:
    cfg = gateway_config(tmp_path, clusters={"mes": {"endpoints": [f"http://mes:{PASSWORD}@127.0.0.1:1"]}},
                         routes=[{"name": "orders", "listener": "internal", "prefix": "/orders",
                                  "cluster": "mes"}])
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-m", "gateway", "--config", str(path), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "clusters.mes.endpoints[0]" in done.stderr
    assert "credentials" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


def test_config_redaction_recurses_into_lists() -> None:
    effective = {"clusters": [{"name": "mes", "password": PASSWORD,
                               "endpoints": [f"http://mes:{PASSWORD}@10.0.0.1:9101"]}],
                 "sentinels": [[f"redis://:{PASSWORD}@10.0.0.2:26379"]],
                 "tokens": [PASSWORD]}
    shown = redact_value("config", effective)
    assert PASSWORD not in repr(shown)
    assert shown["clusters"][0]["name"] == "mes"
    assert shown["clusters"][0]["password"] == REDACTED
    assert shown["clusters"][0]["endpoints"] == [f"http://mes:{REDACTED}@10.0.0.1:9101"]
    assert shown["tokens"] == REDACTED
