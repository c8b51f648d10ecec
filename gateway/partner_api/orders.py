"""The partner view of MES orders: which requests exist, what goes upstream, what comes back.

Pure functions used by ``gateway.filters.partner_scope`` (no I/O, unit-tested alone):

* the partner API has exactly three order operations: ``POST /orders``, ``GET /orders`` and
  ``GET /orders/{id}`` under the route prefix; any other sub-path is a 404;
* the list query is rebuilt from the allowed parameters plus ``partner_id=<caller>``;
* a new order is rebuilt from the allowed members plus ``partner_id=<caller>``;
* orders are projected onto ``ORDER_FIELDS`` (internal columns such as ``source`` and
  ``external_ref`` never reach a partner, nor does any column the MES adds later).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from multidict import MultiDict, MultiMapping

from contracts.lifecycle import STATUS_NAMES as STATUSES

#: What a partner sees of an order (``docs/partner-api.md``, schema ``Order``).
ORDER_FIELDS = ("id", "partner_id", "customer", "material", "quantity", "model_name", "model_sha256",
                "price_eur", "status", "created_at", "updated_at", "status_changed_at")
#: Members of a new order a partner may set; ``partner_id`` is always the caller's, the rest ignored.
CREATE_FIELDS = ("customer", "material", "quantity", "model_name", "model_sha256")
MAX_PER_PAGE = 100      # a page of orders stays far below the proxy's response buffer (256 KiB)
MAX_PAGE = 10_000_000
MAX_CREATE_BYTES = 16 * 1024
#: The most of one MES answer the gateway reads to check it (a full page of 100 orders of
#: multi-byte text is far below); a larger answer is refused with 502, never passed unchecked.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
_ORDER_ID = re.compile(r"[1-9][0-9]{0,18}")
_MAX_ID = 2**63 - 1


class PartnerInputError(ValueError):
    """The partner's request is unacceptable; ``status`` 400/415/422, ``param`` names the culprit."""

    def __init__(self, status: int, detail: str, *, param: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.param = param


@dataclass(frozen=True, slots=True)
class Operation:
    """A partner order operation: ``create``, ``list`` or ``get`` (``order_id`` only for ``get``)."""

    kind: str
    order_id: int | None = None


def classify(method: str, sub_path: str) -> Operation | None:
    """The operation for ``method`` on the path below the route prefix; None → 404 (or 405)."""
    if sub_path == "":
        return Operation("create" if method == "POST" else "list")
    if sub_path.startswith("/") and _ORDER_ID.fullmatch(sub_path[1:]) and int(sub_path[1:]) <= _MAX_ID:
        return Operation("get", int(sub_path[1:]))
    return None


def _int_param(query: MultiMapping[str], name: str, high: int) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not (0 < len(raw) <= 12 and raw.isascii() and raw.isdecimal()) or not 1 <= int(raw) <= high:
        raise PartnerInputError(422, f"{name}: must be an integer between 1 and {high}", param=name)
    return str(int(raw))


def list_query(query: MultiMapping[str], partner_id: str) -> MultiDict[str]:
    """The upstream query: allowed parameters validated, ``partner_id`` forced to the caller.

    A client-sent ``partner_id`` is dropped (it can only ever be the caller's own); any other
    unknown or repeated parameter is a 400, so a typo never silently widens the result.
    """
    for name in query:
        if name not in ("status", "page", "per_page", "partner_id"):
            raise PartnerInputError(400, f"unknown query parameter {name[:40]!r} "
                                         "(allowed: status, page, per_page)", param=name)
        if len(query.getall(name)) > 1 and name != "partner_id":
            raise PartnerInputError(400, f"query parameter {name!r} given more than once", param=name)
    out: MultiDict[str] = MultiDict()
    status = query.get("status")
    if status is not None:
        if status not in STATUSES:
            raise PartnerInputError(422, f"status: must be one of {', '.join(STATUSES)}", param="status")
        out["status"] = status
    for name, high in (("page", MAX_PAGE), ("per_page", MAX_PER_PAGE)):
        if (value := _int_param(query, name, high)) is not None:
            out[name] = value
    out.setdefault("per_page", "20")
    out["partner_id"] = partner_id
    return out


def create_body(raw: bytes, partner_id: str) -> bytes:
    """The upstream body of a new order: a JSON object of ``CREATE_FIELDS`` + the caller's id."""
    if not raw.strip():
        raise PartnerInputError(400, "request body is empty; a JSON object is expected")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PartnerInputError(400, f"malformed JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise PartnerInputError(422, f"body must be a JSON object, not {type(value).__name__}",
                                param="body")
    order = {name: value[name] for name in CREATE_FIELDS if name in value}
    quantity = order.get("quantity")
    if isinstance(quantity, float) and quantity.is_integer() and abs(quantity) < 2**53:
        order["quantity"] = int(quantity)  # JSON has one number type: 2.0 is the integer 2
    order["partner_id"] = partner_id
    return orjson.dumps(order)


def project_order(order: Mapping[str, Any]) -> dict[str, Any]:
    """The partner's view of one MES order (missing columns become null)."""
    return {name: order.get(name) for name in ORDER_FIELDS}


class ForeignOrder(ValueError):
    """The MES answered an order of another partner where only the caller's may appear."""


def project_page(page: Mapping[str, Any], partner_id: str) -> dict[str, Any]:
    """The partner's view of one MES list page, checked item by item.

    The gateway does not rely on the MES honouring ``partner_id=``: one item of another partner
    means the MES ignored the filter, so its ``total`` counts other partners' orders too — the
    whole page is refused (:class:`ForeignOrder`) rather than trimmed.
    """
    items = page.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError("list page without an items array of objects")
    foreign = sum(1 for i in items if i.get("partner_id") != partner_id)
    if foreign:
        raise ForeignOrder(f"{foreign} of {len(items)} items belong to another partner")
    return {"items": [project_order(i) for i in items], "page": page.get("page"),
            "per_page": page.get("per_page"), "total": page.get("total")}


def upstream_problem(body: bytes) -> tuple[str, list[dict[str, str]] | None]:
    """``detail`` and ``invalid_params`` of an upstream problem+json (anything else: generic)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "The order service refused the request.", None
    if not isinstance(data, dict):
        return "The order service refused the request.", None
    detail = data.get("detail")
    raw_params = data.get("invalid_params")
    params = [{"name": p["name"], "reason": p["reason"]} for p in raw_params
              if isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("reason"), str)
              ] if isinstance(raw_params, list) else []
    return (detail[:500] if isinstance(detail, str) else "The order service refused the request.",
            params or None)
