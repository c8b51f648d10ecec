"""Webhook signatures in the Standard Webhooks form (https://www.standardwebhooks.com).

Each delivery carries ``webhook-id`` (the quote job id), ``webhook-timestamp`` (Unix seconds,
set per attempt) and ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` entries,
one per active secret of the job's owner (two during a rotation's overlap), each over
``"{webhook-id}.{webhook-timestamp}.{body}"``. The id and timestamp are signed with the body, so
a captured webhook can be neither re-addressed to another job nor replayed later: receivers
reject timestamps more than ``TOLERANCE`` (5 minutes) away from their clock.
:func:`verify` is the receiver's check (the snippet in docs/partner-api.md is the same logic).
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Iterable

from contracts.webhook_secrets import SECRET_PREFIX

TOLERANCE = 300  # seconds a receiver accepts between webhook-timestamp and its clock


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """What the HMAC covers: ``id.timestamp.body``."""
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(msg_id: str, timestamp: int, body: bytes, key: bytes) -> str:
    """One ``v1,<base64>`` signature entry."""
    digest = hmac.digest(key, signed_content(msg_id, timestamp, body), "sha256")
    return "v1," + base64.b64encode(digest).decode()


def signature_header(msg_id: str, timestamp: int, body: bytes, keys: Iterable[bytes]) -> str:
    """The ``webhook-signature`` value: one entry per signing key, space-separated."""
    return " ".join(sign(msg_id, timestamp, body, key) for key in keys)


def verify(body: bytes, *, msg_id: str, timestamp: str, signature: str, secret: str,
           tolerance: int = TOLERANCE, now: float | None = None) -> bool:
    """True if ``signature`` has a ``v1`` entry made with ``secret`` and the timestamp is fresh."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    expected = sign(msg_id, ts, body, key).encode()
    return any(hmac.compare_digest(expected, entry.encode())
               for entry in signature.split() if entry.startswith("v1,"))
