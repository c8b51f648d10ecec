"""Start-up refuses known default secrets unless dev mode (issue 12, point 4).

Known defaults: an API-key store without a pepper (the dev pepper file beside the store), the
``make run`` operator token, and the ``make run`` webhook secret of the pricing workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.fake_upstream import fake_upstream
from tests.support.gateway import gateway_config, wait_ready

ROOT = Path(__file__).parents[2]
DEV_ENV_NAMES = ("MES_EDGE_DEV", "GATEWAY_API_KEY_PEPPER", "GATEWAY_OPERATOR_TOKENS",
                 "PRICING_WEBHOOK_SECRET")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DEV_ENV_NAMES}
    return {**env, **extra}


def _config(tmp_path: Path, endpoint: str, **top: Any) -> Path:
    cfg = gateway_config(tmp_path, clusters={"mes": {"endpoints": [endpoint]}},
                         routes=[{"name": "orders", "listener": "internal", "prefix": "/orders",
                                  "cluster": "mes"}], **top)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _gateway(path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m gateway``; one that starts instead of refusing fails at the timeout."""
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(path), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=20)


def test_gateway_refuses_an_api_key_store_without_pepper(tmp_path: Path) -> None:
    path = _config(tmp_path, "http://127.0.0.1:1", api_keys={"store": str(tmp_path / "keys.json")})
    done = _gateway(path, env=_env())
    assert done.returncode == 2
    assert "api_keys.pepper" in done.stderr
    assert "GATEWAY_API_KEY_PEPPER" in done.stderr
    assert "--dev" in done.stderr
    assert not (tmp_path / "keys.json.pepper").exists()  # no dev pepper file was written


def test_gateway_refuses_the_make_run_operator_token(tmp_path: Path) -> None:
    from gateway.auth.startup_secrets import DEV_OPERATOR_TOKEN

    path = _config(tmp_path, "http://127.0.0.1:1", operator_auth={"tokens": DEV_OPERATOR_TOKEN})
    done = _gateway(path, env=_env())
    assert done.returncode == 2
    assert "operator_auth.tokens" in done.stderr
    assert DEV_OPERATOR_TOKEN not in done.stderr + done.stdout


async def test_gateway_accepts_dev_secrets_with_the_dev_flag(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        path = _config(tmp_path, up.url, api_keys={"store": str(tmp_path / "keys.json")})
        cfg = yaml.safe_load(path.read_text())
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(path), "--dev"], cwd=ROOT,
                                env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_ready(f"http://127.0.0.1:{cfg['admin']['port']}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert (tmp_path / "keys.json.pepper").exists()


def test_pricing_worker_refuses_the_make_run_webhook_secret(redis_url: str) -> None:
    argv = [sys.executable, "-m", "legacy_adapters.worker", "--backend", "http://127.0.0.1:1",
            "--redis-url", redis_url]
    done = subprocess.run(argv, cwd=ROOT, env=_env(PRICING_WEBHOOK_SECRET="dev-webhook-secret"),
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert "PRICING_WEBHOOK_SECRET" in done.stderr
    assert "--dev" in done.stderr
