"""The public JSON form of a quote job (API answers and webhook bodies), per audience.

Partners get the ``partner`` view; operators (internal listener, internal jobs' webhooks) the
``operator`` one. Dedup is internal: ``cached`` (exact|geometric) and ``shared_with`` (the job
whose computation was reused) say how *we* priced the model, and would tell a partner that
somebody had quoted it before, so they are never in a partner's view (an allow-list: a field
added to the job hash later stays internal unless added here on purpose).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

Audience = Literal["partner", "operator"]
#: Fields only operators see (dedup hints).
OPERATOR_ONLY = ("cached", "shared_with")
#: What a partner reads as ``error`` of a failed job: the worker's detail names the legacy's
#: hosts, ports and answer text, so it is for operators (internal listener, logs) only.
PARTNER_ERROR = "The model could not be priced. Contact support with this job's id."


def _iso(ms: str | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).isoformat(timespec="milliseconds")


def job_json(job: dict[str, str], *, location: str, audience: Audience = "partner") -> dict[str, Any]:
    """``{id, status, price, currency, breakdown, error, …}`` from the job hash.

    ``audience="operator"`` adds ``cached``/``shared_with`` and the worker's ``error`` detail; the
    default is the partner view (a generic ``error``).
    """
    result = json.loads(job["result"]) if job.get("result") else {}
    status = job.get("status", "queued")
    view: dict[str, Any] = {
        "id": job["id"],
        "status": status,
        "material": job.get("material"),
        "model_sha256": job.get("sha256"),
        "price": result.get("price_eur"),
        "currency": "EUR" if result else None,
        "breakdown": result.get("breakdown"),
        "error": (job.get("error") if audience == "operator" else PARTNER_ERROR) if status == "failed"
        else None,
        "attempts": int(job.get("attempts") or 0),
        "rules_version": job.get("rules_version"),
        "created_at": _iso(job.get("created_at")),
        "finished_at": _iso(job.get("finished_at")),
        "location": location,
    }
    if audience == "operator":
        view["cached"] = job.get("cached") or None  # exact|geometric: priced once for another job
        view["shared_with"] = job.get("leader") or None
    return view
