"""Parsing of path and query parameters of the MES API (422 names the parameter)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from contracts.lifecycle import OrderStatus, parse_status
from legacy_sim.problem import Problem, invalid_field

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
_MAX_BIGINT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A validated ``GET /orders`` query."""

    status: OrderStatus | None
    limit: int
    offset: int
    partner_id: str | None = None

    @property
    def page(self) -> int:
        """1-based page number (offsets that are not a multiple of ``limit`` round down)."""
        return self.offset // self.limit + 1


def order_id_of(request: web.Request) -> int:
    """The ``{order_id}`` path segment as an id; anything that cannot be an id is a 404."""
    raw = request.match_info["order_id"]
    if not raw.isdecimal() or not 0 < int(raw) <= _MAX_BIGINT:
        raise Problem(404, f"order {raw[:40]!r} not found")
    return int(raw)


def _int_param(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_field(name, f"must be an integer, got {raw[:40]!r}") from None
    if not low <= value <= high:
        raise invalid_field(name, f"must be between {low} and {high}")
    return value


def _partner_param(request: web.Request) -> str | None:
    raw = request.query.get("partner_id")
    if raw is None:
        return None
    if not raw.strip() or len(raw) > 100 or not raw.isprintable():
        raise invalid_field("partner_id", "must be 1-100 printable characters")
    return raw.strip()


def list_query(request: web.Request) -> ListQuery:
    """Validate ``status``, ``partner_id``, ``page``/``per_page`` or ``offset``/``limit``."""
    partner_id = _partner_param(request)
    status = None
    if request.query.get("status"):
        try:
            status = parse_status(request.query["status"])
        except ValueError as exc:
            raise invalid_field("status", str(exc)) from None
    paged = {"page", "per_page"} & request.query.keys()
    sliced = {"offset", "limit"} & request.query.keys()
    if paged and sliced:
        raise invalid_field(sorted(sliced)[0], "use either page/per_page or offset/limit, not both")
    if sliced:
        limit = _int_param(request, "limit", default=DEFAULT_PER_PAGE, low=1, high=MAX_PER_PAGE)
        offset = _int_param(request, "offset", default=0, low=0, high=_MAX_BIGINT)
        return ListQuery(status=status, limit=limit, offset=offset, partner_id=partner_id)
    per_page = _int_param(request, "per_page", default=DEFAULT_PER_PAGE, low=1, high=MAX_PER_PAGE)
    page = _int_param(request, "page", default=1, low=1, high=_MAX_BIGINT // MAX_PER_PAGE)
    return ListQuery(status=status, limit=per_page, offset=(page - 1) * per_page, partner_id=partner_id)
