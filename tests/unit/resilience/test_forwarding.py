"""X-Forwarded-* are ours; hop-by-hop headers never cross the proxy."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from resilience.forwarding import client_response_headers, upstream_request_headers


def headers(**items: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in items.items()}))


def test_external_client_cannot_spoof_forwarded_headers() -> None:
    inbound = headers(X_Forwarded_For="6.6.6.6", X_Forwarded_Proto="https", X_Forwarded_Host="evil",
                      X_Real_IP="6.6.6.6", X_Request_ID="client-chosen-id", Accept="application/json")
    out = upstream_request_headers(inbound, client_ip="10.0.0.5", scheme="http", host="gw:8080",
                                   request_id="rid-1", trusted=False)
    assert out["X-Forwarded-For"] == "10.0.0.5"
    assert out["X-Forwarded-Proto"] == "http"
    assert out["X-Forwarded-Host"] == "gw:8080"
    assert out["X-Request-ID"] == "rid-1"
    assert "X-Real-IP" not in out
    assert out["Accept"] == "application/json"


def test_trusted_listener_appends_to_the_forwarded_chain() -> None:
    inbound = headers(X_Forwarded_For="192.168.1.10", X_Forwarded_Proto="https")
    out = upstream_request_headers(inbound, client_ip="10.0.0.5", scheme="http", host="gw",
                                   request_id="r", trusted=True)
    assert out["X-Forwarded-For"] == "192.168.1.10, 10.0.0.5"
    assert out["X-Forwarded-Proto"] == "https"


def test_hop_by_hop_and_connection_named_headers_are_removed() -> None:
    inbound = headers(Connection="keep-alive, X-Secret-Hop", Keep_Alive="timeout=5", TE="trailers",
                      Upgrade="websocket", X_Secret_Hop="1", Proxy_Authorization="Basic abc",
                      Transfer_Encoding="chunked", Host="gw", X_Keep="yes")
    out = upstream_request_headers(inbound, client_ip="1.2.3.4", scheme="http", host="gw",
                                   request_id="r", trusted=False)
    for name in ("Connection", "Keep-Alive", "TE", "Upgrade", "X-Secret-Hop", "Proxy-Authorization",
                 "Transfer-Encoding", "Host"):
        assert name not in out
    assert out["X-Keep"] == "yes"


def test_response_hop_by_hop_and_server_are_dropped() -> None:
    upstream = headers(Connection="close", Transfer_Encoding="chunked", Server="legacy-mes/1.0",
                       Content_Type="application/json", ETag='"abc"')
    out = client_response_headers(upstream)
    assert "Connection" not in out
    assert "Transfer-Encoding" not in out
    assert "Server" not in out
    assert out["ETag"] == '"abc"'


def test_credentials_are_dropped_only_once_the_gateway_authenticated_the_request() -> None:
    inbound = CIMultiDictProxy(CIMultiDict({"Authorization": "Bearer mes_k_secret", "X-API-Key": "mes_k_x",
                                            "Accept": "application/json"}))
    common = {"client_ip": "10.0.0.5", "scheme": "http", "host": "gw", "request_id": "r", "trusted": False}
    authenticated = upstream_request_headers(inbound, strip_credentials=True, **common)  # type: ignore[arg-type]
    assert "Authorization" not in authenticated
    assert "X-API-Key" not in authenticated
    assert authenticated["Accept"] == "application/json"
    passthrough = upstream_request_headers(inbound, **common)  # type: ignore[arg-type]
    assert passthrough["Authorization"] == "Bearer mes_k_secret"  # a route without auth: not ours


def test_response_headers_named_in_connection_are_dropped_even_behind_keep_alive() -> None:
    upstream = CIMultiDictProxy(CIMultiDict([("Connection", "keep-alive"), ("Connection", "X-Hop"),
                                             ("X-Hop", "1"), ("X-Keep", "yes")]))
    out = client_response_headers(upstream)
    assert "X-Hop" not in out
    assert out["X-Keep"] == "yes"
    plain = client_response_headers(CIMultiDictProxy(CIMultiDict([("Connection", "keep-alive"),
                                                                 ("X-Keep", "yes")])))
    assert list(plain.items()) == [("X-Keep", "yes")]
