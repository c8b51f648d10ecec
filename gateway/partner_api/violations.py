"""One violation of the partner API document, and how it reads in a problem's ``invalid_params``.

The one shape of every ``invalid_params`` item the gateway answers (RFC 9457 §3 extension
member, schema ``Problem`` of ``gateway/openapi/partner-v1.yaml``)::

    {"name": "quantity", "in": "body", "pointer": "/quantity", "reason": "must be at most 100000"}

``in`` is where the value was (``path``, ``query``, ``header``, ``body``), ``pointer`` an RFC 6901
JSON pointer into that value (``/quantity`` of the body, ``/page`` of the query parameters), and
``reason`` never repeats the value sent: a reason can be logged, and a huge or hostile value is
not echoed back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

#: ``in`` values, in the order violations are listed.
LOCATIONS = ("path", "query", "header", "body")
_REASON_MAX = 200


def pointer_of(parts: Iterable[str | int]) -> str:
    """RFC 6901 pointer of a path of member names and array indexes (``~`` and ``/`` escaped)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True, slots=True)
class Violation:
    """What is wrong with one value of the request; ``malformed``: the request is syntactically
    unusable (unparsable JSON, unknown or repeated parameter) → 400, else semantically → 422."""

    location: str
    pointer: str
    reason: str
    malformed: bool = False

    @property
    def name(self) -> str:
        """The parameter, or the body member path (``body`` for the body as a whole)."""
        return self.pointer[1:].replace("~1", "/").replace("~0", "~") or self.location

    def as_param(self) -> dict[str, str]:
        """The ``invalid_params`` item."""
        return {"name": self.name, "in": self.location, "pointer": self.pointer, "reason": self.reason}


def _limit(kind: str, limit: Any) -> str:
    return {"minimum": f"must be at least {limit}", "maximum": f"must be at most {limit}",
            "exclusiveMinimum": f"must be greater than {limit}",
            "exclusiveMaximum": f"must be less than {limit}",
            "minLength": f"must be at least {limit} characters long",
            "maxLength": f"must be at most {limit} characters long",
            "minItems": f"must have at least {limit} items", "maxItems": f"must have at most {limit} items",
            "minProperties": f"must have at least {limit} members",
            "maxProperties": f"must have at most {limit} members",
            "multipleOf": f"must be a multiple of {limit}"}[kind]


def _reason(error: jsonschema_rs.ValidationError) -> tuple[list[str | int], str]:
    """(extra pointer parts, reason) of one validator error; the reason names no sent value."""
    kind = error.kind
    name = kind.name
    data = kind.as_dict()
    if name == "required":
        return [data["property"]], "is required"
    if name == "type":
        return [], "must be of type " + " or ".join(data["types"])
    if name == "enum":
        return [], "must be one of " + ", ".join("null" if o is None else str(o) for o in data["options"])
    if name == "constant":
        return [], f"must be {data.get('expected_value')!r}"
    if name == "pattern":
        return [], f"must match the pattern {data['pattern']}"
    if name == "format":
        return [], f"must be a valid {data['format']}"
    if "limit" in data:
        return [], _limit(name, data["limit"])
    if name in ("falseSchema", "additionalProperties", "unevaluatedProperties"):
        return [], "is not allowed"
    return [], error.message[:_REASON_MAX]


def from_schema_errors(location: str, base: Iterable[str | int],
                       errors: Iterable[jsonschema_rs.ValidationError]) -> list[Violation]:
    """Violations of a value at ``location`` (``base``: its own pointer parts), one per error."""
    out = []
    for error in errors:
        extra, reason = _reason(error)
        out.append(Violation(location, pointer_of([*base, *error.instance_path, *extra]), reason))
    return out


def summary(violations: list[Violation]) -> str:
    """The problem's ``detail``: how many, and the first few."""
    head = "; ".join(f"{v.location} {v.pointer or '(whole)'}: {v.reason}" for v in violations[:3])
    more = f" (and {len(violations) - 3} more)" if len(violations) > 3 else ""
    count = "1 violation" if len(violations) == 1 else f"{len(violations)} violations"
    return f"{count} of the partner API document: {head}{more}"[:1000]
