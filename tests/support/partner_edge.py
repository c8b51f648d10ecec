"""Helpers for auth / rate-limit tests: a key store with known keys and a partner route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.auth.api_keys import ApiKeyStore

PEPPER = "test-pepper-0123456789abcdef"


def make_keys(tmp_path: Path, *specs: tuple[str, str, tuple[str, ...]]) -> tuple[Path, list[str]]:
    """Create one key per (partner, tier, scopes) in ``tmp_path/keys.json``; returns (store, keys)."""
    path = tmp_path / "keys.json"
    store = ApiKeyStore(path, PEPPER.encode())
    return path, [store.create(partner=p, tier=t, scopes=s)[0] for p, t, s in specs]


def api_keys_section(store: Path) -> dict[str, Any]:
    return {"store": str(store), "pepper": PEPPER}
