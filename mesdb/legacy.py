"""What the kit assumes about the legacy MES database: the documented tables, nothing more.

docs/legacy-sim.md and ``legacy_sim/mes/schema.sql`` describe them; the statement shapes below are
the legacy's own text (asyncpg prepared statements), used when ``pg_stat_statements`` is missing
and by the before/after measurements.
"""

from __future__ import annotations

from contracts.lifecycle import ACTIVE_STATUS_NAMES, TERMINAL_STATUS_NAMES

ORDERS = "orders"
HISTORY = "order_status_history"
PRICING = "price_calculations"
TABLES = (ORDERS, HISTORY, PRICING)
#: the cold side of the hot/cold split (an inheritance child of ``orders``; docs/mes-data.md says why
#: not a declarative partition)
ARCHIVE = "orders_archive"

ACTIVE = ACTIVE_STATUS_NAMES
TERMINAL = TERMINAL_STATUS_NAMES
TERMINAL_SQL = ", ".join(f"'{s}'" for s in TERMINAL)  # constants of contracts.lifecycle, not input

#: The operators' list and its count, exactly as the legacy sends them (legacy_sim/mes/orders_repo.py).
LIST = (
    "SELECT * FROM orders WHERE ($1::text IS NULL OR status = $1) "
    "AND ($2::text IS NULL OR partner_id = $2) ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
)
COUNT = (
    "SELECT count(*) FROM orders WHERE ($1::text IS NULL OR status = $1) "
    "AND ($2::text IS NULL OR partner_id = $2)"
)
GET = "SELECT * FROM orders WHERE id = $1"
HISTORY_OF_ORDER = "SELECT * FROM order_status_history WHERE order_id = $1 ORDER BY id"

#: The documented statements, analysed when pg_stat_statements has nothing (yet).
DOCUMENTED = (LIST, COUNT, GET, HISTORY_OF_ORDER)
