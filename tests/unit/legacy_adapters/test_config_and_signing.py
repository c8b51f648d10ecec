"""``quotes:`` / ``handler:`` config validation, webhook signatures, back-off."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from legacy_adapters.backoff import backoff_delay
from legacy_adapters.webhooks import sign, verify


def _cfg(route: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"listeners": {"internal": {"port": 1}}, "clusters": {"mes": {"endpoints": ["http://x:1"]}},
            "routes": [{"name": "q", "listener": "internal", "prefix": "/quotes", **route}], **top}


def test_handler_route_parses_without_a_cluster() -> None:
    cfg = parse_config(_cfg({"handler": "quotes"}, quotes={"backlog_bound": 5, "rules_version": 3}))
    assert cfg.routes[0].handler == "quotes"
    assert cfg.routes[0].cluster == ""
    assert cfg.quotes is not None
    assert cfg.quotes.backlog_bound == 5
    assert cfg.quotes.rules_version == "3"


@pytest.mark.parametrize(("route", "top", "message"), [
    ({"handler": "quotes"}, {}, "needs a quotes: section"),
    ({"handler": "quotes", "cluster": "mes"}, {"quotes": {}}, "not both"),
    ({}, {}, r"cluster: is required"),
    ({"handler": "pricing"}, {"quotes": {}}, "unknown handler 'pricing'"),
    ({"handler": "quotes"}, {"quotes": {"backlog_bound": 0}}, "quotes.backlog_bound"),
    ({"handler": "quotes"}, {"quotes": {"redis_url": "http://x"}}, "quotes.redis_url"),
    ({"handler": "quotes"}, {"quotes": {"colour": 1}}, "unknown key 'colour'"),
])
def test_bad_quotes_config_names_the_key(route: dict[str, Any], top: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_cfg(route, **top))


def test_signature_is_hmac_sha256_of_the_body() -> None:
    header = sign(b'{"id": "1"}', b"k")
    assert header.startswith("sha256=")
    assert len(header) == 7 + 64
    assert verify(b'{"id": "1"}', header, b"k")
    assert not verify(b'{"id": "2"}', header, b"k")


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(a, base=1, cap=5, jitter=False) for a in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert 0.5 <= backoff_delay(1, base=1, cap=5) <= 1.0
