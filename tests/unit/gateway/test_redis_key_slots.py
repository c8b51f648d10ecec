"""Keys one Redis command or script touches together hash to one Cluster slot (docs/redis.md)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

import limits
import pytest
from multidict import MultiDict
from redis.crc import key_slot

from configkit import ConfigError
from contracts.lifecycle import STATUS_NAMES
from gateway.cache.invalidation import change_versions
from gateway.cache.keys import VersionKeys, cache_key
from gateway.cache.policy import CachePolicy, parse_cache_section
from gateway.ratelimit import Window
from gateway.ratelimit.policy import parse_ratelimit_section
from gateway.ratelimit.shared import counter_keys

KEYS = VersionKeys("cache:")
POLICY = CachePolicy(ttl=60, key_params={"status": "", "page": "1"})


def _slots(keys: list[str]) -> set[int]:
    return {key_slot(k.encode()) for k in keys}


@pytest.mark.parametrize("partner", ["acme", "a}b", "{x}", "p:1"])
def test_every_window_of_a_partner_shares_one_slot(partner: str) -> None:
    windows = [Window(n, limits.parse(s)) for n, s in
               (("burst", "5/second"), ("rate", "100/minute"), ("quota", "5000/day"))]
    keys = [k for w in windows for k in counter_keys("gateway:rl", w, ("partner", partner))]
    keys += counter_keys("gateway:rl", Window("orders-burst", limits.parse("2/second")),
                         ("route", "partner-orders", partner))
    assert len(_slots(keys)) == 1, keys


@pytest.mark.parametrize(("path", "query"), [("/orders", ""), ("/orders", "status=SHIPPED&page=2"),
                                             ("/orders/42", "")])
def test_the_counters_of_an_entry_share_one_slot(path: str, query: str) -> None:
    key = cache_key(keys=KEYS, route="orders", policy=POLICY, prefix="/orders", path=path,
                    query=MultiDict(parse_qsl(query)), partner="acme")
    assert len(_slots(list(key.versions))) == 1


@pytest.mark.parametrize("old", [None, *STATUS_NAMES])
def test_the_counters_of_one_order_change_share_the_entries_counters_slot(old: str | None) -> None:
    bumped = change_versions(KEYS, 7, old, "SHIPPED")
    assert _slots(bumped) == _slots([KEYS.all, KEYS.route("orders")])


@pytest.mark.parametrize("section", [
    lambda prefix: parse_ratelimit_section({"key_prefix": prefix}),
    lambda prefix: parse_cache_section({"key_prefix": prefix}),
])
def test_a_key_prefix_with_a_hash_tag_is_refused(section: Callable[[str], object]) -> None:
    with pytest.raises(ConfigError, match="key_prefix"):
        section("rl{x}:")
