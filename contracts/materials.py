"""The materials an order or a quote may name (the legacy's price table keys, upper case).

The price table itself — densities, rates, the formula — is the legacy's business and stays in
``legacy_sim.pricing.materials``; it is checked against this list at import.
"""

from __future__ import annotations

MATERIAL_NAMES: tuple[str, ...] = ("PLA", "ABS", "PETG", "NYLON", "RESIN", "TITANIUM")


def material_name(name: object) -> str:
    """The canonical (upper-case) name of ``name``; ValueError naming the choices otherwise."""
    if not isinstance(name, str) or name.strip().upper() not in MATERIAL_NAMES:
        raise ValueError(f"unknown material {name!r}; one of {', '.join(MATERIAL_NAMES)}")
    return name.strip().upper()
