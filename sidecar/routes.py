"""Route templates per legacy kind: the bounded ``route`` label, never a raw path or an id."""

from __future__ import annotations

from collections.abc import Callable

OTHER = "other"
KINDS = ("mes", "crm")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """The request method, or ``_OTHER`` for anything outside the usual seven (bounded)."""
    return method if method in _METHODS else "_OTHER"


def _mes(parts: list[str]) -> str:
    match parts:
        case ["orders"]:
            return "/orders"
        case ["orders", order_id] if order_id:
            return "/orders/{id}"
        case ["orders", order_id, "status" | "price" as action] if order_id:
            return f"/orders/{{id}}/{action}"
        case ["price"]:
            return "/price"
        case ["healthz"]:
            return "/healthz"
    return OTHER


def _crm(parts: list[str]) -> str:
    match parts:
        case ["orders"]:
            return "/orders"
        case ["orders", order_id] if order_id:
            return "/orders/{id}"
        case ["healthz"]:
            return "/healthz"
    return OTHER


_BY_KIND: dict[str, Callable[[list[str]], str]] = {"mes": _mes, "crm": _crm}
#: Every template ``route_template`` can answer, per kind (the ``route`` label's whole value set).
TEMPLATES: dict[str, tuple[str, ...]] = {
    "mes": ("/orders", "/orders/{id}", "/orders/{id}/status", "/orders/{id}/price", "/price", "/healthz",
            OTHER),
    "crm": ("/orders", "/orders/{id}", "/healthz", OTHER),
}


def route_template(kind: str, path: str) -> str:
    """``/orders/42/status`` → ``/orders/{id}/status`` for the MES; unknown paths → ``other``."""
    if not path.startswith("/"):
        return OTHER
    return _BY_KIND[kind](path[1:].split("/"))
