"""Per-partner webhook signing secrets: one JSON file the key CLI writes and the workers read.

What two deployables exchange, so it lives in the ground both stand on: the key CLI
(``gateway.api_keys``) creates and rotates secrets, the pricing workers (``legacy_adapters``)
sign with them; neither imports the other's internals for it (tests/unit/test_import_layers.py).

A secret is ``whsec_<base64 of 32 random bytes>`` (the Standard Webhooks form; the HMAC key is
the decoded bytes). It is created with the partner's first API key (``python -m gateway.api_keys
create``) and rotated with ``rotate-webhook-secret``: the new secret signs at once and the old
ones keep signing until their ``expires`` (the overlap window), so a partner can switch its
verifier without dropping a delivery. Nothing but the workers and the CLI needs the file: the
gateway never signs. HMAC needs the secret itself (a hash would not do), so the file holds it in
clear, mode 0600, and is re-read when its mtime changes (rotation needs no worker restart).
It is deliberately not in Redis: the Redis holding jobs is shared with the gateway's rate limits
and job records, and a secret copied into every job would live as long as the job (docs/security.md).
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from contracts.json_file import WatchedJsonFile

log = logging.getLogger("legacy_adapters.webhook_secrets")  # its log lines come from the workers
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of the format, not a secret)
STORE_ENV = "PRICING_WEBHOOK_SECRETS_FILE"
_OWNER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class WebhookSecret:
    """One signing secret of one owner; ``expires`` is set when a newer one replaces it."""

    id: str
    secret: str
    created: float
    expires: float | None = None

    def key(self) -> bytes:
        """The HMAC key: the base64-decoded part after ``whsec_``."""
        return base64.b64decode(self.secret.removeprefix(SECRET_PREFIX))

    def active(self, now: float) -> bool:
        """True while it signs (no expiry, or the overlap window not over)."""
        return self.expires is None or now < self.expires


def new_secret() -> str:
    """A fresh ``whsec_…`` secret (256 random bits)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookSecretStore:
    """The secrets file, indexed by owner (partner id, or ``internal`` for operators' jobs)."""

    def __init__(self, path: str | Path, *, check_interval: float = 1.0) -> None:
        self._file = WatchedJsonFile(path, _owners, check_interval=check_interval)
        self.path = self._file.path

    @property
    def owners(self) -> Mapping[str, tuple[WebhookSecret, ...]]:
        """Every owner's secrets as last read."""
        return self._file.value

    def reload(self) -> None:
        """Re-read the file (a missing file is an empty store)."""
        self._file.reload()

    def maybe_reload(self) -> None:
        """At most one ``stat`` per ``check_interval`` seconds; re-read when the file changed
        (a bad hand edit is logged and the last good secrets are kept)."""
        self._file.maybe_reload(on_error=self._unreadable)

    def _unreadable(self, exc: Exception) -> None:
        log.error("webhook secrets file %s unreadable, keeping the previous secrets: %s",
                  self.path, type(exc).__name__, extra={"event.action": "webhook-secrets-reload",
                                                        "event.outcome": "failure"})

    def signing_keys(self, owner: str, now: float | None = None) -> list[bytes]:
        """HMAC keys that sign ``owner``'s webhooks now, newest first (empty: none configured)."""
        at = time.time() if now is None else now
        active = [s for s in self.owners.get(owner, ()) if s.active(at)]
        return [s.key() for s in sorted(active, key=lambda s: s.created, reverse=True)]

    # ------------------------------------------------------------ writes (the key CLI)

    def ensure(self, owner: str) -> WebhookSecret | None:
        """Create ``owner``'s first secret; None when it already has an active one."""
        if self.signing_keys(owner):
            return None
        return self.rotate(owner, overlap=0.0)

    def rotate(self, owner: str, *, overlap: float) -> WebhookSecret:
        """A new current secret; the old ones keep signing for ``overlap`` seconds (0: stop now)."""
        if not _OWNER.match(owner):
            raise ValueError(f"owner {owner!r}: lowercase letters, digits, . _ -")
        now = time.time()
        until = now + max(0.0, overlap)
        kept = [replace(s, expires=min(s.expires or until, until)) for s in self.owners.get(owner, ())
                if s.active(now)]  # secrets already expired are dropped from the file
        fresh = WebhookSecret(id=secrets.token_hex(6), secret=new_secret(), created=now)
        self._save({**self.owners, owner: (*kept, fresh)})
        return fresh

    def _save(self, owners: Mapping[str, tuple[WebhookSecret, ...]]) -> None:
        data = {o: [asdict(s) for s in items] for o, items in owners.items()}
        self._file.write({"version": 1, "owners": data})


def _owners(document: Mapping[str, Any]) -> dict[str, tuple[WebhookSecret, ...]]:
    return {owner: tuple(WebhookSecret(**raw) for raw in items)
            for owner, items in document.get("owners", {}).items()}
