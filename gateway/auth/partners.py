"""Who is calling: the authenticated partner attached to a request by the auth filter."""

from __future__ import annotations

from dataclasses import dataclass

SCOPES = frozenset({"orders:read", "orders:write", "quotes:read", "quotes:write"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Partner:
    """An authenticated B2B partner (set on ``request[PARTNER_KEY]`` by the auth filter).

    ``tier`` is a bounded label (rate-limit plans, metrics); ``key_id`` names the API key used
    (never the key itself), so a key can be rotated and audited without logging a secret.
    """

    id: str
    tier: str
    scopes: frozenset[str]
    key_id: str
