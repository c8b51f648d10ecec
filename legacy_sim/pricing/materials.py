"""The legacy material table and price formula: material cost + machine time + set-up fee."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from contracts.materials import MATERIAL_NAMES
from contracts.stl import Geometry

SETUP_FEE_EUR = Decimal("15.00")
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Material:
    """One row of the legacy price table."""

    name: str
    density_g_cm3: float
    eur_per_cm3: float
    build_rate_cm3_h: float
    layer_height_mm: float
    seconds_per_layer: float
    machine_eur_h: float


MATERIALS: dict[str, Material] = {m.name: m for m in (
    Material("PLA", 1.24, 0.05, 12.0, 0.20, 6.0, 4.0),
    Material("ABS", 1.04, 0.06, 10.0, 0.20, 7.0, 4.5),
    Material("PETG", 1.27, 0.06, 10.0, 0.20, 7.0, 4.5),
    Material("NYLON", 1.14, 0.15, 20.0, 0.10, 9.0, 18.0),
    Material("RESIN", 1.15, 0.20, 8.0, 0.05, 4.0, 12.0),
    Material("TITANIUM", 4.43, 2.50, 4.0, 0.03, 10.0, 95.0),
)}
assert tuple(MATERIALS) == MATERIAL_NAMES, "the price table and contracts.materials disagree"


@dataclass(frozen=True, slots=True)
class Quote:
    """A computed price with the quantities it came from."""

    material: str
    mass_g: float
    machine_hours: float
    price_eur: Decimal


def material_named(name: object) -> Material:
    """Look a material up case-insensitively (ValueError names the choices)."""
    if not isinstance(name, str) or name.strip().upper() not in MATERIALS:
        raise ValueError(f"unknown material {name!r}; one of {', '.join(MATERIALS)}")
    return MATERIALS[name.strip().upper()]


def quote(geometry: Geometry, material: Material) -> Quote:
    """Price a measured model in ``material``: volume x €/cm³ + machine hours x rate + set-up."""
    volume_cm3 = geometry.volume_mm3 / 1000.0
    layers = geometry.bbox_mm[2] / material.layer_height_mm
    machine_hours = volume_cm3 / material.build_rate_cm3_h + layers * material.seconds_per_layer / 3600.0
    raw = SETUP_FEE_EUR + Decimal(repr(volume_cm3 * material.eur_per_cm3)) \
        + Decimal(repr(machine_hours * material.machine_eur_h))
    return Quote(material=material.name, mass_g=round(volume_cm3 * material.density_g_cm3, 3),
                 machine_hours=round(machine_hours, 4), price_eur=raw.quantize(_CENT, ROUND_HALF_UP))
