"""Cache keys: normalisation, version counters, partner separation, uncacheable requests."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from gateway.cache.keys import CacheKey, Uncacheable, VersionKeys, cache_key
from gateway.cache.policy import CachePolicy

KEYS = VersionKeys("cache:")
POLICY = CachePolicy(ttl=5, key_params={"status": "", "page": "1", "per_page": "50"})


def key(path: str = "/orders", query: str = "", *, policy: CachePolicy = POLICY,
        partner: str | None = None) -> CacheKey:
    params = MultiDict(p.split("=", 1) for p in query.split("&") if p)
    return cache_key(keys=KEYS, route="orders", policy=policy, prefix="/orders", path=path, query=params,
                     partner=partner)


def test_params_are_sorted_and_defaults_dropped() -> None:
    assert key(query="per_page=50&status=SUBMITTED&page=1") == key(query="status=SUBMITTED")
    assert key(query="page=2&status=shipped").entry == "cache:e:orders:-:/?page=2&status=SHIPPED"


def test_numbers_and_status_case_are_normalised() -> None:
    assert key(query="page=02&status= submitted") == key(query="status=SUBMITTED&page=2")


def test_status_filtered_list_depends_on_its_status_version() -> None:
    assert key(query="status=SHIPPED").versions == ("cache:{v}:all", "cache:{v}:route:orders",
                                                    "cache:{v}:status:SHIPPED")


def test_unfiltered_list_depends_on_the_lists_version() -> None:
    assert key().versions[-1] == "cache:{v}:lists"
    assert key(query="status=").versions[-1] == "cache:{v}:lists"


def test_order_by_id_depends_on_the_order_version() -> None:
    k = key("/orders/0042")
    assert k.versions[-1] == "cache:{v}:order:42"
    assert k.entry == "cache:e:orders:-:/42?"


@pytest.mark.parametrize(("path", "query", "why"), [
    ("/orders", "sort=asc", "unknown-param"),
    ("/orders", "status=A&status=B", "repeated-param"),
    ("/orders/42/history", "", "path"),
    ("/orders/abc", "", "path"),
])
def test_uncacheable_requests_say_why(path: str, query: str, why: str) -> None:
    with pytest.raises(Uncacheable, match=why):
        key(path, query)


def test_unknown_params_can_be_ignored_instead() -> None:
    lenient = CachePolicy(ttl=5, key_params={"status": ""}, unknown_params="ignore")
    assert key(query="utm=x&status=SHIPPED", policy=lenient) == key(query="status=SHIPPED", policy=lenient)


def test_partners_never_share_a_key() -> None:
    per_partner = CachePolicy(ttl=5, key_params={"status": ""}, vary_partner=True)
    assert key(policy=per_partner, partner="acme").entry != key(policy=per_partner, partner="globex").entry


def test_route_that_varies_by_partner_is_not_cached_without_one() -> None:
    with pytest.raises(Uncacheable, match="no-partner"):
        key(policy=CachePolicy(ttl=5, vary_partner=True))


def test_overlong_keys_are_not_cached() -> None:
    with pytest.raises(Uncacheable, match="key-too-long"):
        key(query="status=" + "X" * 600)
