"""Start-up refusal of known default secrets: a production gateway never runs on dev values.

Refused unless dev mode (``python -m gateway --dev`` or ``MES_EDGE_DEV=1``, which ``make run``
sets): an API-key store without a pepper (keys would be hashed with the dev pepper file written
beside the store — whoever reads the store directory has it too) and the ``make run`` operator
token. Messages name the setting, never the secret's value.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

from gateway.auth.api_keys import PEPPER_ENV
from gateway.auth.operator_tokens import TOKENS_ENV
from gateway.config import GatewayConfig

DEV_ENV = "MES_EDGE_DEV"
#: The operator token ``make run`` hands out (devstack); accepted only in dev mode.
DEV_OPERATOR_TOKEN = "mes-edge-dev-operator-token-for-make-run-only"  # noqa: S105 (a known dev value)


def dev_mode(flag: bool, env: Mapping[str, str] | None = None) -> bool:
    """``--dev`` or ``MES_EDGE_DEV=1``."""
    return flag or (os.environ if env is None else env).get(DEV_ENV) == "1"


def default_secrets(config: GatewayConfig, env: Mapping[str, str] | None = None) -> list[str]:
    """One line per known default secret the config would run with (empty: none)."""
    env = os.environ if env is None else env
    found = []
    if config.api_keys.store is not None and not (config.api_keys.pepper or env.get(PEPPER_ENV)):
        found.append(f"api_keys.pepper is empty, so API keys would be hashed with the dev pepper file "
                     f"beside the store: set {PEPPER_ENV} (e.g. `openssl rand -hex 32`)")
    if hashlib.sha256(DEV_OPERATOR_TOKEN.encode()).digest() in config.operator_auth.tokens:
        found.append(f"operator_auth.tokens contains the `make run` dev token: set {TOKENS_ENV} to your "
                     "own tokens (e.g. `openssl rand -hex 32`)")
    return found


def refusal_message(problems: list[str]) -> str:
    """What ``python -m gateway`` prints before exiting 2."""
    lines = "\n".join(f"  - {p}" for p in problems)
    return (f"gateway: refusing to start with known default secrets:\n{lines}\n"
            f"For local development only, pass --dev or set {DEV_ENV}=1 (make run does).")
