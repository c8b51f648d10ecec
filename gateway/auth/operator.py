"""Operator authentication: bearer tokens for the internal listener and the admin listener.

Config (``docs/configuration.md``)::

    operator_auth:
      tokens: ${GATEWAY_OPERATOR_TOKENS:-}   # comma-separated; each a token (>= 32 chars) or sha256:<hex>

Tokens are kept only as SHA-256 digests (a ``sha256:<hex>`` entry keeps even the config free of
the token). A presented token is hashed and compared with every configured digest by
``hmac.compare_digest`` (no early exit), so timing reveals neither a prefix nor which token
matched. Tokens are never logged; a refusal is a 401 problem+json with ``WWW-Authenticate:
Bearer`` and counts in ``gateway_operator_auth_failures_total{listener,reason}``.

Where it applies: the internal listener when it binds a non-loopback address (start-up refuses
such a bind without tokens — fail closed), and always the admin endpoints that read the
configuration or the upstream topology or change state (``/config``, ``/upstreams``,
``/cache/purge``). ``/metrics``, ``/healthz`` and ``/readyz`` stay open for Prometheus and probes.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway import metrics
from gateway.auth.operator_tokens import TOKENS_ENV, OperatorAuthConfig, token_matches
from gateway.request_keys import OPERATOR_KEY, REQUEST_ID_KEY
from resilience.problem import problem_response
from telemetry.request_id import new_request_id

_REASONS = ("missing", "invalid")
_DETAIL = {"missing": "Send an operator token as 'Authorization: Bearer <token>'.",
           "invalid": "The operator token is not valid."}


def _presented(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class OperatorGuard:
    """Checks the bearer token of one listener's requests; counts refusals (at 0 from start).

    ``config`` is read per request, so tokens rotate with a SIGHUP reload (list old and new,
    reload, hand out the new one, drop the old, reload).
    """

    def __init__(self, config: Callable[[], OperatorAuthConfig], *, listener: str) -> None:
        self.config = config
        self._failures = {r: metrics.OPERATOR_AUTH_FAILURES.labels(listener=listener, reason=r)
                          for r in _REASONS}

    def refusal(self, request: web.Request) -> web.Response | None:
        """None when the request carries a valid token, else the 401 to answer."""
        config = self.config()
        presented = _presented(request)
        if presented is not None and token_matches(config, presented):
            return None
        reason = "missing" if presented is None else "invalid"
        self._failures[reason].inc()
        challenge = 'Bearer realm="mes-edge-operator"' + ("" if reason == "missing"
                                                         else ', error="invalid_token"')
        detail = _DETAIL[reason] if config.tokens else (
            f"No operator token is configured (operator_auth.tokens / ${TOKENS_ENV}).")
        return problem_response(status=401, title="Unauthorized", type_slug="operator-unauthorized",
                                detail=detail,  # the admin listener has no request-id filter
                                request_id=request.get(REQUEST_ID_KEY) or new_request_id(),
                                headers={"WWW-Authenticate": challenge})

    def protect(self, handler: Handler) -> Handler:
        """``handler`` answered only for a valid token (admin endpoints)."""
        async def guarded(request: web.Request) -> web.StreamResponse:
            return self.refusal(request) or await handler(request)
        return guarded


def operator_auth_filter(*, config: Callable[[], OperatorAuthConfig], listener: str) -> Middleware:
    """Listener filter: every request needs a valid operator token."""
    guard = OperatorGuard(config, listener=listener)

    @web.middleware
    async def operator_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = guard.refusal(request)
        if refused is not None:
            return refused
        request[OPERATOR_KEY] = True  # the proxy keeps the token away from the clusters
        return await handler(request)

    return operator_auth
