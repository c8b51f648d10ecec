"""The MES database kit: analyse the legacy's statements, add indexes and settings they can use,
split hot from archived orders, keep archiving (``python -m mesdb --help``; docs/mes-data.md).

The kit works only in the database: the legacy MES's SQL stays exactly as the legacy writes it.
Everything the kit adds is recorded in its own schema (``mesdb``), so ``mesdb revert`` removes
exactly that and nothing else.
"""

from mesdb.errors import KitError

__all__ = ["KitError"]
