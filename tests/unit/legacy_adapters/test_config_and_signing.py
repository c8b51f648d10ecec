"""``quotes:`` / ``handler:`` config validation, webhook signatures (back-off: tests/unit/resilience)."""

from __future__ import annotations

import base64
import hmac
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from legacy_adapters.webhook_signing import sign, signature_header, verify
from legacy_adapters.worker import parse_objectives


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
    assert cfg.quotes.fair_window == 2  # fair scheduling across partners by default
    assert cfg.quotes.tier_weights == {}


def test_tier_weights_and_wait_objectives_parse() -> None:
    cfg = parse_config(_cfg({"handler": "quotes"}, quotes={"tier_weights": {"gold": 4}, "fair_window": 0}))
    assert cfg.quotes is not None
    assert (cfg.quotes.tier_weights, cfg.quotes.fair_window) == ({"gold": 4}, 0)
    assert (cfg.quotes.jobs_per_turn("gold"), cfg.quotes.jobs_per_turn("bronze")) == (20, 5)
    assert parse_objectives("gold=60, bronze=600") == {"gold": 60.0, "bronze": 600.0}
    for bad in ("gold", "gold=0", "Gold Tier=5"):
        with pytest.raises(ConfigError, match="--wait-objectives"):
            parse_objectives(bad)


@pytest.mark.parametrize(("route", "top", "message"), [
    ({"handler": "quotes"}, {}, "needs a quotes: section"),
    ({"handler": "quotes", "cluster": "mes"}, {"quotes": {}}, "not both"),
    ({}, {}, r"cluster: is required"),
    ({"handler": "pricing"}, {"quotes": {}}, "unknown handler 'pricing'"),
    ({"handler": "quotes"}, {"quotes": {"backlog_bound": 0}}, "quotes.backlog_bound"),
    ({"handler": "quotes"}, {"quotes": {"redis_url": "http://x"}}, "quotes.redis_url"),
    ({"handler": "quotes"}, {"quotes": {"colour": 1}}, "unknown key 'colour'"),
    ({"handler": "quotes"}, {"quotes": {"tier_weights": {"gold": 0}}}, r"quotes.tier_weights.gold"),
    ({"handler": "quotes"}, {"quotes": {"fair_window": -1}}, "quotes.fair_window"),
])
def test_bad_quotes_config_names_the_key(route: dict[str, Any], top: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_cfg(route, **top))


SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def test_signature_is_standard_webhooks_hmac_over_id_timestamp_and_body() -> None:
    entry = sign("job1", 1700000000, b'{"id": "job1"}', b"k" * 32)
    expected = hmac.digest(b"k" * 32, b'job1.1700000000.{"id": "job1"}', "sha256")
    assert entry == "v1," + base64.b64encode(expected).decode()
    signed = {"msg_id": "job1", "timestamp": "1700000000", "signature": entry, "secret": SECRET}
    assert verify(b'{"id": "job1"}', now=1700000000, **signed)
    assert not verify(b'{"id": "job2"}', now=1700000000, **signed)                     # body
    assert not verify(b'{"id": "job1"}', now=1700000000, **{**signed, "msg_id": "job2"})  # id
    assert not verify(b'{"id": "job1"}', now=1700000000, **{**signed, "timestamp": "1700000001"})


def test_receivers_reject_timestamps_older_or_newer_than_five_minutes() -> None:
    entry = sign("j", 1700000000, b"{}", b"k" * 32)
    signed = {"msg_id": "j", "timestamp": "1700000000", "signature": entry, "secret": SECRET}
    assert verify(b"{}", now=1700000000 + 300, **signed)
    assert not verify(b"{}", now=1700000000 + 301, **signed)
    assert not verify(b"{}", now=1700000000 - 301, **signed)


def test_any_of_several_signatures_verifies_during_a_rotation() -> None:
    header = signature_header("j", 1700000000, b"{}", [b"new" * 11, b"k" * 32])
    assert len(header.split(" ")) == 2
    assert verify(b"{}", msg_id="j", timestamp="1700000000", signature=header, secret=SECRET, now=1700000000)
