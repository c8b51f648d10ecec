"""What the kit adds for the legacy's statements: indexes they can use and the one setting that
lets them use them. Each entry says which statements it serves (docs/mes-data.md has the plans)."""

from __future__ import annotations

from dataclasses import dataclass

from mesdb.legacy import HISTORY, ORDERS, PRICING, TERMINAL_SQL


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """One index: its name, table, column list (+ predicate), and the measured calls it serves."""

    name: str
    table: str
    columns: str
    why: str
    serves: tuple[str, ...]  # prefixes of measurement labels (mesdb.measure)

    def create_sql(
        self, *, concurrently: bool = True, table: str | None = None, name: str | None = None
    ) -> str:
        how = "CONCURRENTLY " if concurrently else ""
        return (
            f'CREATE INDEX {how}IF NOT EXISTS "{name or self.name}" ON "{table or self.table}" {self.columns}'
        )

    @property
    def drop_sql(self) -> str:
        return f'DROP INDEX CONCURRENTLY IF EXISTS "{self.name}"'


_ACTIVE = f"WHERE status NOT IN ({TERMINAL_SQL})"

#: The operators' list (ORDER BY created_at DESC, id DESC), its count, the probes — per use.
INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec(
        "mesdb_orders_active_idx",
        ORDERS,
        f"(status, created_at DESC, id DESC) INCLUDE (status_changed_at) {_ACTIVE}",
        "active statuses only (a few thousand rows): the list page of one status in index order, "
        "its count and the probes' per-status count/oldest age index-only",
        ("list status=", "count status="),
    ),
    IndexSpec(
        "mesdb_orders_created_idx",
        ORDERS,
        "(created_at DESC, id DESC)",
        "the unfiltered list page (and CLOSED/CANCELLED pages) read in index order, no sort",
        ("list no filter",),
    ),
    IndexSpec(
        "mesdb_orders_partner_idx",
        ORDERS,
        "(partner_id, created_at DESC, id DESC) WHERE partner_id IS NOT NULL",
        "one partner's orders in list order (the partner API forces partner_id)",
        ("list partner_id=", "count partner_id="),
    ),
    IndexSpec(
        "mesdb_history_order_idx",
        HISTORY,
        "(order_id)",
        "one order's history (order journey, operators); the foreign key's missing index",
        ("order history",),
    ),
    IndexSpec(
        "mesdb_pricing_order_idx",
        PRICING,
        "(order_id) WHERE order_id IS NOT NULL",
        "the other foreign key to orders: price calculations of one order",
        (),
    ),
)

#: Custom plans for every execution of a prepared statement. The legacy's generic predicates
#: (``$1::text IS NULL OR status = $1``) cannot be matched to a partial index, nor can an
#: inheritance child be excluded, until the planner sees the value; planning costs ~0.1 ms.
PLAN_CACHE_SETTING = ("plan_cache_mode", "force_custom_plan")
SETTING_SERVES = ("list status=", "count status=", "list partner_id=", "count partner_id=")
