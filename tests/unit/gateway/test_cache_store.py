"""The in-memory store (LRU in bytes, versions), entries, HTTP storability and invalidation sets."""

from __future__ import annotations

from multidict import CIMultiDict
from prometheus_client import REGISTRY

from gateway.cache.backends import ENTRY_OVERHEAD, MemoryBackend
from gateway.cache.entry import (
    Entry,
    build_entry,
    client_wants_fresh,
    etag_matches,
    not_storable_reason,
    strong_etag,
)
from gateway.cache.invalidation import change_of_response, change_versions
from gateway.cache.keys import VersionKeys

KEYS = VersionKeys("c:")


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_memory_store_evicts_least_recently_used_to_stay_within_its_bytes() -> None:
    store = MemoryBackend(max_bytes=3 * (ENTRY_OVERHEAD + 2 + 100))
    evicted = sample("gateway_cache_evictions_total")
    for name in ("k1", "k2", "k3"):
        await store.store(name, b"x" * 100, ttl=60)
    await store.lookup("k1", [])          # k1 is now the most recently used
    await store.store("k4", b"x" * 100, ttl=60)
    assert [(await store.lookup(k, []))[1] is not None for k in ("k1", "k2", "k3", "k4")] == \
        [True, False, True, True]
    assert store.byte_size() <= store.max_bytes
    assert sample("gateway_cache_evictions_total") - evicted == 1


async def test_memory_store_drops_expired_entries_and_counts_versions() -> None:
    store = MemoryBackend(max_bytes=10_000)
    await store.store("k", b"body", ttl=0)
    assert (await store.lookup("k", ["v:a"])) == ((0,), None)
    await store.bump(["v:a", "v:a", "v:b"])
    assert await store.versions(["v:a", "v:b", "v:c"]) == (2, 1, 0)


async def test_trimming_the_version_table_never_brings_an_old_version_back() -> None:
    store = MemoryBackend(max_bytes=10_000)
    before = await store.versions(["v:x"])
    await store.bump([f"v:order:{i}" for i in range(100_001)])
    assert (await store.versions(["v:x"]))[0] > before[0]


async def test_refresh_lock_is_granted_once_until_it_expires() -> None:
    store = MemoryBackend(max_bytes=10_000)
    assert await store.try_lock("k", ttl=60)
    assert not await store.try_lock("k", ttl=60)


def test_entry_round_trips_and_drops_per_request_headers() -> None:
    headers = CIMultiDict({"Content-Type": "application/json", "X-Request-ID": "abc", "Date": "x",
                           "Server": "mes"})
    entry = build_entry(headers, b'{"items": []}', (1, 2, 3))
    assert entry.headers == (("Content-Type", "application/json"),)
    assert entry.etag == strong_etag(b'{"items": []}')
    assert not entry.etag.startswith("W/")
    assert Entry.decode(entry.encode()) == entry


def test_only_complete_public_200_answers_are_stored() -> None:
    ok = CIMultiDict({"Content-Type": "application/json"})
    assert not_storable_reason(200, ok, 10, 100) is None
    assert not_storable_reason(404, ok, 10, 100) == "status"
    assert not_storable_reason(200, CIMultiDict({"Set-Cookie": "a=b"}), 10, 100) == "set-cookie"
    for cc in ("private", "no-store", "max-age=0, no-cache"):
        assert not_storable_reason(200, CIMultiDict({"Cache-Control": cc}), 10, 100) == "cache-control"
    assert not_storable_reason(200, ok, 101, 100) == "too-large"


def test_conditional_and_client_directives() -> None:
    assert etag_matches('"a", W/"b"', '"b"')
    assert etag_matches("*", '"z"')
    assert not etag_matches('"a"', '"b"')
    assert client_wants_fresh(CIMultiDict({"Cache-Control": "no-cache"}))  # type: ignore[arg-type]
    assert client_wants_fresh(CIMultiDict({"Cache-Control": "max-age=0"}))  # type: ignore[arg-type]
    assert not client_wants_fresh(CIMultiDict({"Cache-Control": "max-age=60"}))  # type: ignore[arg-type]


def test_a_forward_step_bumps_the_order_both_statuses_and_unfiltered_lists() -> None:
    assert sorted(change_versions(KEYS, 7, "SUBMITTED", "PRICE_CALCULATED")) == sorted(
        ["c:{v}:order:7", "c:{v}:lists", "c:{v}:status:SUBMITTED", "c:{v}:status:PRICE_CALCULATED"])


def test_an_unknown_old_status_bumps_every_status() -> None:
    bumped = change_versions(KEYS, 7, None, "CANCELLED")
    assert "c:{v}:status:SHIPPED" in bumped
    assert "c:{v}:status:SUBMITTED" in bumped


def test_a_creation_bumps_only_submitted_lists() -> None:
    assert sorted(change_versions(KEYS, 7, None, "SUBMITTED", created=True)) == sorted(
        ["c:{v}:order:7", "c:{v}:lists", "c:{v}:status:SUBMITTED"])


def test_the_old_status_of_a_write_is_its_unique_predecessor() -> None:
    assert change_of_response(b'{"id": 3, "status": "SHIPPED"}', created=False) == (
        3, "MANUFACTURING_COMPLETED", "SHIPPED")
    assert change_of_response(b'{"id": 3, "status": "CANCELLED"}', created=False) == (3, None, "CANCELLED")
    assert change_of_response(b"not json", created=False) is None
