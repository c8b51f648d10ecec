"""Partner API keys for the load tests, created with the gateway's own CLI.

``python -m gateway.api_keys --store STORE create …`` writes the key's hash into the store the
gateway reads (it re-reads the file when it changes); the plain keys are kept in a 0600 JSON
file beside it (``loadtest-partner-keys.json``) and reused while they still verify, so repeated
runs do not pile up keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gateway.auth.api_keys import ApiKeyStore, resolve_pepper

SCOPES = "orders:read,orders:write,quotes:read,quotes:write"
TIER = "gold"


def partner_ids(count: int) -> list[str]:
    """The load-test partner identities ``lt-partner-1`` … ``lt-partner-N``."""
    return [f"lt-partner-{n}" for n in range(1, count + 1)]


def _valid(store: Path, keys: dict[str, str], wanted: list[str]) -> dict[str, str]:
    """The cached keys that still verify against the store (not revoked, same pepper)."""
    if not store.exists():
        return {}
    verifier = ApiKeyStore(store, resolve_pepper(os.environ.get("GATEWAY_API_KEY_PEPPER", ""), store))
    return {p: k for p, k in keys.items() if p in wanted and verifier.verify(k)[0] is not None}


def create_key(store: Path, partner: str, *, tier: str = TIER, cwd: Path | None = None) -> str:
    """Create one key with the gateway CLI; returns the plain key (printed once on stdout)."""
    argv = [sys.executable, "-m", "gateway.api_keys", "--store", str(store), "create",
            "--partner", partner, "--tier", tier, "--scopes", SCOPES]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"gateway.api_keys create failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def ensure_partner_keys(store: Path, count: int, *, keys_file: Path | None = None) -> Path:
    """Make sure ``count`` load-test partners have a working key; returns the plain-key file."""
    keys_file = keys_file or store.with_name("loadtest-partner-keys.json")
    wanted = partner_ids(count)
    try:
        cached = json.loads(keys_file.read_text())
    except (OSError, ValueError):
        cached = {}
    keys = _valid(store, {str(k): str(v) for k, v in cached.items()}, wanted)
    for partner in wanted:
        if partner not in keys:
            keys[partner] = create_key(store, partner)
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keys, out, indent=2)
    return keys_file
