"""The public JSON form of a quote job (API answers and webhook bodies)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

PUBLIC_STATUSES = ("queued", "running", "done", "failed")


def _iso(ms: str | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).isoformat(timespec="milliseconds")


def job_json(job: dict[str, str], *, location: str) -> dict[str, Any]:
    """``{id, status, price, currency, breakdown, cached, error, …}`` from the job hash."""
    result = json.loads(job["result"]) if job.get("result") else {}
    status = job.get("status", "queued")
    return {
        "id": job["id"],
        "status": status,
        "material": job.get("material"),
        "model_sha256": job.get("sha256"),
        "price": result.get("price_eur"),
        "currency": "EUR" if result else None,
        "breakdown": result.get("breakdown"),
        "cached": job.get("cached") or None,  # exact|geometric: priced once for another job
        "shared_with": job.get("leader") or None,
        "error": job.get("error") if status == "failed" else None,
        "attempts": int(job.get("attempts") or 0),
        "rules_version": job.get("rules_version"),
        "created_at": _iso(job.get("created_at")),
        "finished_at": _iso(job.get("finished_at")),
        "location": location,
    }
