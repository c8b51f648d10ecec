"""Header rewriting between a client and what is behind us: hop-by-hop removal and X-Forwarded-*.

Shared by the gateway (client → cluster) and the sidecar (gateway → its legacy instance).

X-Forwarded-For/Proto/Host are always set by us. From the external listener
anything the client sent under those names is dropped (never trusted); the
internal listener, when ``trust_forwarded`` is on, appends to the chain.

A listener with an allow-list (the external one by default: ``PARTNER_REQUEST_HEADERS``) sends
only those of the client's headers: ``X-Original-URL``, ``X-HTTP-Method-Override``,
``baggage``, ``tracestate``, a partner's ``traceparent`` (only *linked* by our server span) and
anything else a legacy system might act on never reach it.
"""

from __future__ import annotations

import re

from multidict import CIMultiDict, CIMultiDictProxy

# RFC 9110 §7.6.1 connection-specific fields, plus the framing we redo ourselves
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "content-length", "host",
})
_FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
                        "x-real-ip", "x-request-id"})


#: A host[:port] as RFC 9110 allows it in ``Host`` (reg-name or IP literal), nothing more.
_HOST = re.compile(r"(?:[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")

#: What a partner's request may carry to the MES (docs/partner-api.md): content negotiation and
#: the body's type. Credentials are ours, framing is redone, conditionals could not be checked.
PARTNER_REQUEST_HEADERS = frozenset({"accept", "accept-language", "content-type", "user-agent"})

_REQUEST_DROP = HOP_BY_HOP | _FORWARDED
#: ... plus the partner's credentials once the auth filter has consumed them: the legacy
#: systems behind us log headers, and the key is ours to check, not theirs.
_CREDENTIALS = frozenset({"authorization", "x-api-key"})
_REQUEST_DROP_AUTHENTICATED = _REQUEST_DROP | _CREDENTIALS
#: Set by a sidecar on its own 502 only when the legacy behind it could not be connected to, so
#: the request was never forwarded (value ``NOT_FORWARDED_CONNECT_FAILURE``). A gateway cluster
#: with ``trust_not_forwarded`` retries such an answer like its own connect failure. Never passed
#: on by either: a sidecar drops the legacy's, the gateway drops every endpoint's before the client.
NOT_FORWARDED_HEADER = "X-Mes-Edge-Not-Forwarded"
NOT_FORWARDED_CONNECT_FAILURE = "connect-failure"
_RESPONSE_DROP = HOP_BY_HOP | {"server", "date", NOT_FORWARDED_HEADER.lower()}


def _connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    tokens: set[str] = set()
    for value in headers.getall("Connection", ()):
        tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def _copy_without(headers: CIMultiDictProxy[str] | CIMultiDict[str], drop: frozenset[str]
                  ) -> CIMultiDict[str]:
    return CIMultiDict([(key, value) for key, value in headers.items() if key.lower() not in drop])


def _copy_allowed(headers: CIMultiDictProxy[str], allow: frozenset[str], drop: frozenset[str]
                  ) -> CIMultiDict[str]:
    return CIMultiDict([(key, value) for key, value in headers.items()
                        if (name := key.lower()) in allow and name not in drop])


def upstream_request_headers(headers: CIMultiDictProxy[str], *, client_ip: str | None, scheme: str,
                             host: str | None, request_id: str, trusted: bool,
                             strip_credentials: bool = False,
                             allow: frozenset[str] | None = None) -> CIMultiDict[str]:
    """Headers to send to the cluster for one client request (``strip_credentials``: the
    request was authenticated here, so ``Authorization``/``X-API-Key`` stay with us; ``allow``:
    only these of the client's headers, lower case)."""
    drop = _REQUEST_DROP_AUTHENTICATED if strip_credentials else _REQUEST_DROP
    if "Connection" in headers:
        drop = drop | _connection_tokens(headers)
    out = _copy_without(headers, drop) if allow is None else _copy_allowed(headers, allow, drop)
    chain = headers.get("X-Forwarded-For") if trusted else None
    out["X-Forwarded-For"] = f"{chain}, {client_ip}" if chain else (client_ip or "")
    out["X-Forwarded-Proto"] = (headers.get("X-Forwarded-Proto") if trusted else None) or scheme
    fwd_host = (headers.get("X-Forwarded-Host") if trusted else None) or host
    if fwd_host and _HOST.fullmatch(fwd_host):  # a Host like "evil:1@internal" is not passed on
        out["X-Forwarded-Host"] = fwd_host
    out["X-Request-ID"] = request_id
    return out


#: ``Connection`` values that name no other header (the common case: nothing more to drop).
_PLAIN_CONNECTION = frozenset({"keep-alive", "close", "Keep-Alive", "Close"})


def client_response_headers(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """Headers to return to the client from a cluster response."""
    drop = _RESPONSE_DROP
    connection = headers.get("Connection")
    if connection is not None and (
            connection not in _PLAIN_CONNECTION or len(headers.getall("Connection")) > 1):
        drop = drop | _connection_tokens(headers)
    return _copy_without(headers, drop)
