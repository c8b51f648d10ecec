"""Usage counts: every key one write touches hashes to one Cluster slot (docs/redis.md), the day
boundaries are UTC, and the usage section refuses what would break either."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from redis.crc import key_slot

from configkit import ConfigError
from gateway.config import parse_config
from gateway.errors import RequestInvalid
from gateway.usage.config import parse_usage_section
from gateway.usage.report import parse_range
from sharedstate.usage_counts import UsageKeys, day_of, days_between
from tests.support.partner_edge import partner_echo_route


@pytest.mark.parametrize("partner", ["acme", "a.b-c_1", "a}b", "{x}"])
def test_every_key_of_one_partners_write_shares_one_slot(partner: str) -> None:
    keys = UsageKeys()
    touched = [keys.seq(partner, "w1"), keys.job(partner, "0-" + "a" * 32),
               *(keys.day(partner, d) for d in ("2026-12-31", "2027-01-01"))]
    assert len({key_slot(k.encode()) for k in touched}) == 1, touched


def test_days_are_utc_whatever_the_local_zone() -> None:
    midnight = dt.datetime(2026, 12, 5, tzinfo=dt.UTC).timestamp()
    assert (day_of(midnight - 0.001), day_of(midnight)) == ("2026-12-04", "2026-12-05")
    assert days_between(dt.date(2026, 12, 30), dt.date(2027, 1, 2)) == [
        "2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02"]


@pytest.mark.parametrize(("first", "last", "pointers"), [
    (None, None, ["/from", "/to"]), ("2026-13-01", "2026-12-01", ["/from"]),
    ("2026-12-02", "2026-12-01", ["/to"]), ("2026-01-01", "2026-04-03", ["/to"]),
    ("20261201", "2026-12-01", ["/from"]), ("2026-12-01", "+2026-12-01", ["/to"])])
def test_bad_ranges_name_every_pointer(first: str | None, last: str | None, pointers: list[str]) -> None:
    with pytest.raises(RequestInvalid) as caught:
        parse_range(first, last, max_days=92)
    assert caught.value.status == 422
    extra = caught.value.extra
    assert extra is not None
    assert [p["pointer"] for p in extra["invalid_params"]] == pointers


def test_a_range_of_max_days_is_accepted() -> None:
    assert parse_range("2026-01-01", "2026-04-02", max_days=92) == (dt.date(2026, 1, 1), dt.date(2026, 4, 2))


@pytest.mark.parametrize(("section", "message"), [
    ({"key_prefix": "u:{x}"}, "usage.key_prefix"),
    ({"max_range_days": 400, "retention_days": 100}, "usage.max_range_days"),
    ({"redis_url": "http://x"}, "usage.redis_url"),
    ({"flush_interval": 0}, "usage.flush_interval"),
    ({"flushinterval": 1}, "unknown key 'flushinterval'"),
])
def test_bad_usage_sections_are_refused_by_name(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_usage_section(section)


def test_only_routes_outside_the_partner_document_may_turn_usage_off() -> None:
    base: dict[str, Any] = {
        "listeners": {"external": {"port": 1}},
        "clusters": {"mes": {"endpoints": ["http://127.0.0.1:1"]}},
        "routes": [partner_echo_route(usage=False)]}
    assert parse_config(base).routes[0].usage is False
    base["routes"][0]["prefix"] = "/partner/v1/orders"
    with pytest.raises(ConfigError, match=r"routes\[0\]\.usage: the partner API's routes"):
        parse_config(base)
