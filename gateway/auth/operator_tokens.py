"""The ``operator_auth:`` section: accepted operator tokens, kept only as SHA-256 digests.

Config (``docs/configuration.md``)::

    operator_auth:
      tokens: ${GATEWAY_OPERATOR_TOKENS:-}   # comma-separated; each a token (>= 32 chars) or sha256:<hex>

A presented token is hashed and compared with every configured digest by ``hmac.compare_digest``
(no early exit). Where tokens are required and how a refusal looks is ``gateway/auth/operator.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from configkit import Section, check, shown, text

TOKENS_ENV = "GATEWAY_OPERATOR_TOKENS"
MIN_TOKEN_CHARS = 32
@dataclass(frozen=True, kw_only=True, slots=True)
class OperatorAuthConfig:
    """SHA-256 digests of the accepted operator tokens (empty: no operator can authenticate)."""

    tokens: tuple[bytes, ...] = field(default=(), repr=False)


def parse_operator_auth_section(data: Any) -> OperatorAuthConfig:
    """Top-level ``operator_auth:`` mapping (absent → no tokens)."""
    s = Section(data, "operator_auth", {"tokens"})
    raw = s.get("tokens") or ""
    if isinstance(raw, list):
        entries = [text(t, s.at(f"tokens[{i}]"), numbers=True).strip() for i, t in enumerate(raw)]
    elif isinstance(raw, str):
        entries = [t.strip() for t in raw.split(",")]
    else:
        raise s.error("tokens", f"expected a comma-separated string or a list (use ${{{TOKENS_ENV}}}), "
                                f"got {shown(raw)}")
    return OperatorAuthConfig(tokens=tuple(_digest(i, t) for i, t in enumerate(entries) if t))


def _digest(i: int, entry: str) -> bytes:
    """A token entry → its SHA-256; errors name the entry's position, never its value."""
    if entry.startswith("sha256:"):
        try:
            digest = bytes.fromhex(entry.removeprefix("sha256:"))
        except ValueError:
            digest = b""
        check(len(digest) == 32, f"operator_auth.tokens[{i}]", "sha256: must be followed by 64 hex digits")
        return digest
    check(len(entry) >= MIN_TOKEN_CHARS, f"operator_auth.tokens[{i}]",
          f"must be at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)")
    return hashlib.sha256(entry.encode()).digest()


def is_loopback(host: str) -> bool:
    """True only for a loopback literal or ``localhost``; any other name or wildcard is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_matches(config: OperatorAuthConfig, presented: str) -> bool:
    """Constant-time over all configured digests."""
    digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
    ok = False
    for expected in config.tokens:
        ok |= hmac.compare_digest(digest, expected)
    return ok
