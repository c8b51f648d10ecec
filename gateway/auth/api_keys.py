"""Partner API keys: ``mes_<key id>_<secret>``, stored only as HMAC-SHA256 with a server-side pepper.

The key id is not secret (it is the lookup index, shown by ``list``, logged as ``key_id``);
the secret part never leaves the process that created it. A store is one JSON file, written
atomically (0600) by the CLI (``python -m gateway.api_keys``) and re-read by the gateway when
its mtime changes, so keys are added, rotated (several per partner) and revoked without a restart.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from contracts.json_file import WatchedJsonFile

KEY_PREFIX = "mes"
PEPPER_ENV = "GATEWAY_API_KEY_PEPPER"


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiKeyRecord:
    """One stored key: who owns it, what it may do, and its keyed hash (never the key)."""

    key_id: str
    partner: str
    tier: str
    scopes: tuple[str, ...]
    hash: str
    created: float
    revoked: float | None = None


def split_key(presented: str) -> tuple[str, str] | None:
    """``mes_<id>_<secret>`` → (id, secret); None when the shape is wrong."""
    if not presented.isascii():  # keys are ASCII; a non-UTF-8 byte arrives as a lone surrogate
        return None
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1].isalnum() or len(parts[2]) < 20:
        return None
    return parts[1], parts[2]


def key_hash(pepper: bytes, presented: str) -> str:
    """HMAC-SHA256(pepper, key) as hex: a leaked store alone cannot be brute-forced offline."""
    return hmac.digest(pepper, presented.encode(), "sha256").hex()  # one-shot C HMAC


def open_store(path: str | None, configured_pepper: str = "") -> ApiKeyStore:
    """The store named by the config (``None`` → an empty store: every key is refused)."""
    if path is None:
        return ApiKeyStore(None, b"")
    return ApiKeyStore(path, resolve_pepper(configured_pepper, Path(path)))


def resolve_pepper(configured: str, store: Path) -> bytes:
    """The configured pepper, else ``$GATEWAY_API_KEY_PEPPER``, else a 0600 file beside the store."""
    pepper = configured or os.environ.get(PEPPER_ENV, "")
    if pepper:
        return pepper.encode()
    path = store.with_name(store.name + ".pepper")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class ApiKeyStore:
    """The key file, indexed by key id; ``verify`` is constant-time on the secret."""

    def __init__(self, path: str | Path | None, pepper: bytes, *, check_interval: float = 1.0) -> None:
        self._file = (WatchedJsonFile(path, _records, check_interval=check_interval)
                      if path is not None else None)  # None: no keys at all
        self.path = self._file.path if self._file is not None else None
        self._pepper = pepper

    @property
    def records(self) -> Mapping[str, ApiKeyRecord]:
        """Every key record as last read, by key id."""
        return self._file.value if self._file is not None else {}

    def reload(self) -> None:
        """Re-read the file (a missing file is an empty store)."""
        if self._file is not None:
            self._file.reload()

    def maybe_reload(self) -> None:
        """Hot path: at most one ``stat`` per ``check_interval`` seconds."""
        if self._file is not None:
            self._file.maybe_reload()

    def verify(self, presented: str) -> tuple[ApiKeyRecord | None, str]:
        """(record, "") for a good key; (None, "invalid"|"revoked") otherwise."""
        parts = split_key(presented)
        record = self.records.get(parts[0]) if parts else None
        if record is None:
            return None, "invalid"
        if not hmac.compare_digest(record.hash, key_hash(self._pepper, presented)):
            return None, "invalid"
        if record.revoked is not None:
            return None, "revoked"
        return record, ""

    # ------------------------------------------------------------ writes (the CLI)

    def create(self, *, partner: str, tier: str, scopes: tuple[str, ...]) -> tuple[str, ApiKeyRecord]:
        """Add a key; returns (plain key — shown once, record)."""
        if partner == "internal":  # the owner of operators' quote jobs (gateway.quotes.api): reserved
            raise ValueError("partner id 'internal' is reserved for operators' jobs")
        key_id = secrets.token_hex(6)
        while key_id in self.records:
            key_id = secrets.token_hex(6)
        plain = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKeyRecord(key_id=key_id, partner=partner, tier=tier, scopes=tuple(sorted(scopes)),
                              hash=key_hash(self._pepper, plain), created=time.time())
        self._save({**self.records, key_id: record})
        return plain, record

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Mark a key revoked (kept for audit); KeyError if unknown."""
        record = replace(self.records[key_id], revoked=time.time())
        self._save({**self.records, key_id: record})
        return record

    def _save(self, records: Mapping[str, ApiKeyRecord]) -> None:
        if self._file is None:
            raise ValueError("this key store has no file")
        self._file.write({"version": 1, "keys": [asdict(r) for r in records.values()]})


def _records(document: Mapping[str, Any]) -> dict[str, ApiKeyRecord]:
    records = {}
    for raw in document.get("keys", []):
        rec = ApiKeyRecord(**{**raw, "scopes": tuple(raw["scopes"])})
        records[rec.key_id] = rec
    return records
