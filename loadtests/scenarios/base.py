"""What every simulated user shares: think time, the checked request, pseudo-requests."""

from __future__ import annotations

import random
from collections.abc import Collection
from typing import Any

from locust import between
from locust.contrib.fasthttp import FastHttpUser

from loadtests.settings import UserMix, settings

JSON = dict[str, Any]


def think_time(mix: UserMix) -> Any:
    """Locust ``wait_time`` for a scenario: uniform in its think range, times ``think_scale``."""
    scale = settings().think_scale
    return between(mix.think[0] * scale, mix.think[1] * scale)


class MesEdgeUser(FastHttpUser):
    """A user whose every request is judged by status code and body, not by Locust's default."""

    abstract = True
    network_timeout = 120.0       # a request never hangs a user longer than this
    connection_timeout = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rng = random.Random()

    def call(self, method: str, url: str, *, name: str, ok: Collection[int] = (200,),
             tolerated: Collection[int] = (), **kwargs: Any) -> tuple[JSON | None, str]:
        """Send one request; returns (JSON body or None, ``Location`` header or "").

        ``ok`` statuses must carry a JSON object; ``tolerated`` ones count as successes without
        a body (e.g. an operator's 409 when a colleague moved the order first); anything else —
        429/503 included — is a failure in Locust's statistics (:mod:`loadtests.hooks` tells
        429/503 apart for the thresholds).
        """
        with self.client.request(method, url, name=name, catch_response=True, **kwargs) as resp:
            status = resp.status_code
            if status in tolerated:
                resp.success()
                return None, ""
            if status not in ok:
                detail = (resp.text or "")[:160] if status else repr(resp.error)
                resp.failure(f"HTTP {status}: {detail}")
                return None, ""
            try:
                body = resp.json()
            except ValueError:
                resp.failure(f"HTTP {status}: body is not JSON")
                return None, ""
            if not isinstance(body, dict):
                resp.failure(f"HTTP {status}: body is not a JSON object")
                return None, ""
            resp.success()
            location = (resp.headers or {}).get("Location") or ""
            return body, str(location)

    def record(self, name: str, elapsed_s: float, error: str | None = None) -> None:
        """Report a pseudo-request (e.g. a quote's turnaround) into Locust's statistics."""
        self.environment.events.request.fire(
            request_type="QUOTE", name=name, response_time=elapsed_s * 1000.0, response_length=0,
            exception=RuntimeError(error) if error else None, context={}, response=None)
