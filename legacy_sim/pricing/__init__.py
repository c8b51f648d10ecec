"""The legacy price calculation: STL geometry (numpy-stl) and the material price table."""

from contracts.stl import Geometry, InvalidModel, measure_stl
from legacy_sim.pricing.materials import MATERIALS, Material, Quote, quote

__all__ = ["MATERIALS", "Geometry", "InvalidModel", "Material", "Quote", "measure_stl", "quote"]
