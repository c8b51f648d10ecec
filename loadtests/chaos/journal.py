"""Locust side of the chaos harness: one JSON line per request, with what the client was promised.

``$LOADTEST_JOURNAL`` names the file. Each line: ``t`` (epoch s when the answer came), ``n``
(request name), ``s`` (status; 0 = no answer), ``ms``, ``ok`` (the scenario's own verdict),
``ra`` (a ``Retry-After`` header came with it) and, for an acceptance, ``id``: the CRM order id
of a ``crm POST /orders`` 202, the order id of a ``partner POST /orders`` 201, the job id of a
``partner POST /quotes`` 202. The harness windows these by time and reconciles the ids against
the systems' own records (:mod:`loadtests.chaos.ledger`). Line-buffered: a killed Locust loses
at most the line being written.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, TextIO

from locust import events

#: request name → (status that means "accepted", JSON field that names what was accepted)
ACCEPTANCES = {"crm POST /orders": (202, "crm_order_id"), "partner POST /orders": (201, "id"),
               "partner POST /quotes": (202, "id")}

_out: list[TextIO] = []


def _file() -> TextIO | None:
    if not _out and (path := os.environ.get("LOADTEST_JOURNAL")):
        _out.append(open(path, "a", buffering=1))  # noqa: SIM115 (open for the life of the process)
    return _out[0] if _out else None


def accepted_id(name: str, status: int, text: str | None) -> str | None:
    """What an answer accepted (a CRM order id, an order id, a job id), or None."""
    wanted = ACCEPTANCES.get(name)
    if wanted is None or status != wanted[0] or not text:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    value = body.get(wanted[1]) if isinstance(body, dict) else None
    return None if value is None else str(value)


def _record(name: str, response_time: float, response: Any = None, exception: Any = None,
            **_kwargs: Any) -> None:
    out = _file()
    if out is None or response is None:  # pseudo-requests (quote turnaround) carry no answer
        return
    status = int(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None) or {}
    line: dict[str, Any] = {"t": round(time.time(), 3), "n": name, "s": status, "ms": round(response_time, 1),
                            "ok": exception is None, "ra": bool(headers.get("Retry-After"))}
    if (ident := accepted_id(name, status, getattr(response, "text", None))) is not None:
        line["id"] = ident
    out.write(json.dumps(line) + "\n")


events.request.add_listener(_record)  # type: ignore[no-untyped-call]
