"""The sidecar's own small, read-only connection pool to the MES database (a replica in production)."""

from __future__ import annotations

import asyncpg


async def open_readonly_pool(dsn: str, *, instance: str, statement_timeout_s: float = 5.0) -> asyncpg.Pool:
    """Two connections at most, every transaction read-only, short statement timeout.

    ``plan_cache_mode = force_custom_plan``: the watermark queries take an id parameter,
    and a generic plan (which cannot see how selective ``id > $1`` is) would be a table scan.
    Connecting is lazy (``min_size=0``): a database that is down at start-up only makes
    the probes fail, never the proxy.
    """
    return await asyncpg.create_pool(
        dsn, min_size=0, max_size=2, timeout=5.0, command_timeout=statement_timeout_s + 2,
        max_inactive_connection_lifetime=60.0,
        server_settings={
            "application_name": f"sidecar-{instance}",
            "default_transaction_read_only": "on",
            "statement_timeout": str(int(statement_timeout_s * 1000)),
            "plan_cache_mode": "force_custom_plan",
        })
