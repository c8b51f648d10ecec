"""Typed keys through which filters pass data to each other (and nothing else)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gateway.auth.partners import Partner
    from gateway.partner_api.contract import Operation
    from gateway.ratelimit.decision import Decision
    from gateway.route_table import Route
    from gateway.state import GatewayState

STATE_KEY: web.AppKey[GatewayState] = web.AppKey("gateway_state")
LISTENER_KEY: web.AppKey[str] = web.AppKey("listener_name")
REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("request_id")
ROUTE_KEY: web.RequestKey[Route] = web.RequestKey("route")
PARTNER_KEY: web.RequestKey[Partner] = web.RequestKey("partner")
#: A request body rewritten by a filter (partner scope): the proxy sends it instead of the client's.
UPSTREAM_BODY_KEY: web.RequestKey[bytes] = web.RequestKey("upstream_body")
#: Set by a filter that must inspect the answer (partner scope): the proxy reads the whole upstream
#: body, whatever its framing (chunked, large), up to this many bytes, and answers 502 above it.
RESPONSE_CAP_KEY: web.RequestKey[int] = web.RequestKey("response_cap")
#: Set by the operator-token filter once it accepted the request's ``Authorization``: like a
#: partner's key, the token is ours to check and is never forwarded to a cluster.
OPERATOR_KEY: web.RequestKey[bool] = web.RequestKey("operator_authenticated")
#: The partner API operation a request is (``gateway/filters/contract.py``) and its path parameters.
OPERATION_KEY: web.RequestKey[tuple[Operation, dict[str, str]]] = web.RequestKey("operation")
#: A JSON request body the contract filter read and checked: later filters use it, never re-read.
REQUEST_BODY_KEY: web.RequestKey[bytes] = web.RequestKey("request_body")
#: The rate-limit decision that let the request through (its windows' remaining budget): the usage
#: endpoint reports it as the partner's remaining quota.
RATELIMIT_DECISION_KEY: web.RequestKey[Decision] = web.RequestKey("ratelimit_decision")
#: What the pricing queue did with a quote (``legacy_adapters.submit.Outcome``): usage accounting
#: counts a quote, or a model whose legacy call dedup avoided (``cached``/``attached``).
QUOTE_OUTCOME_KEY: web.RequestKey[str] = web.RequestKey("quote_outcome")
