"""Validation of a new order as both legacy systems accept it (422 names the field)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from contracts.materials import material_name

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_QUANTITY = 100_000


class InvalidOrder(ValueError):
    """A field of a new order is missing or wrong; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, kw_only=True, slots=True)
class NewOrder:
    """A validated order as submitted by a B2B client or the CRM."""

    customer: str
    material: str
    quantity: int
    model_name: str
    partner_id: str | None = None
    model_sha256: str | None = None
    external_ref: str | None = None

    def as_payload(self) -> dict[str, Any]:
        """The JSON-ready fields, without the ones that are ``None``."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def _text(body: dict[str, Any], field: str, *, max_len: int, required: bool) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise InvalidOrder(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidOrder(field, f"must be a string, not {type(value).__name__}")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it here, not as a 503 later
        raise InvalidOrder(field, "must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from "\ud800" escapes
            raise InvalidOrder(field, "must be valid Unicode (no lone surrogates)") from None
    value = value.strip()
    if not value:
        raise InvalidOrder(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidOrder(field, f"must be at most {max_len} characters")
    return value


def parse_new_order(body: dict[str, Any], *, allow_external_ref: bool = True) -> NewOrder:
    """Validate a JSON object into a :class:`NewOrder`; raises :class:`InvalidOrder`."""
    customer = _text(body, "customer", max_len=200, required=True)
    material_raw = _text(body, "material", max_len=40, required=True)
    model_name = _text(body, "model_name", max_len=255, required=True)
    try:
        material = material_name(material_raw)
    except ValueError as exc:
        raise InvalidOrder("material", str(exc)) from None
    quantity = body.get("quantity")
    if quantity is None:
        raise InvalidOrder("quantity", "is required")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidOrder("quantity", f"must be an integer, not {type(quantity).__name__}")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidOrder("quantity", f"must be between 1 and {MAX_QUANTITY}")
    sha = _text(body, "model_sha256", max_len=64, required=False)
    if sha is not None and not _SHA256.match(sha.lower()):
        raise InvalidOrder("model_sha256", "must be 64 hexadecimal characters")
    external_ref = _text(body, "external_ref", max_len=100, required=False)
    if external_ref is not None and not allow_external_ref:
        raise InvalidOrder("external_ref", "is assigned by the system")
    assert customer is not None
    assert model_name is not None
    return NewOrder(customer=customer, material=material, quantity=quantity, model_name=model_name,
                    partner_id=_text(body, "partner_id", max_len=100, required=False),
                    model_sha256=sha.lower() if sha else None, external_ref=external_ref)
