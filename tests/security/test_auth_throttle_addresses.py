"""The pre-auth throttle's address keys and table bound (what raw sockets on loopback cannot show).

Attack: rotating source addresses — trivial inside one IPv6 /64 — to get a fresh budget per
address, or to grow the gateway's address table without bound.
"""

from __future__ import annotations

import pytest

from gateway.auth.throttle import AddressThrottle, client_address


@pytest.mark.parametrize(("peername", "key"), [
    (("192.0.2.7", 51000), "192.0.2.7"),
    (("2001:db8:1:2:aaaa::1", 51000, 0, 0), "2001:db8:1:2::/64"),
    (("2001:db8:1:2:ffff:ffff:ffff:ffff", 1, 0, 0), "2001:db8:1:2::/64"),  # same /64, same budget
    (("2001:db8:1:3::1", 51000, 0, 0), "2001:db8:1:3::/64"),
    (("::ffff:192.0.2.7", 51000, 0, 0), "192.0.2.7"),  # IPv4-mapped: the IPv4 address's budget
    (("fe80::1%eth0", 51000, 0, 2), "fe80::/64"),
    ("", "unknown"), (None, "unknown"),  # a Unix socket / a closed transport
])
def test_client_address_keys_ipv6_per_64_and_mapped_ipv4_as_ipv4(peername: object, key: str) -> None:
    assert client_address(peername) == key


def test_address_table_never_exceeds_its_cap_under_a_flood_of_new_addresses() -> None:
    throttle = AddressThrottle(failures=3, seconds=60, max_addresses=1000)
    for n in range(50_000):
        throttle.failure(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 0.0)
        assert len(throttle) <= 1000
    assert len(throttle) == 1000


def test_budget_refills_at_its_rate_and_the_wait_says_when() -> None:
    throttle = AddressThrottle(failures=3, seconds=60, max_addresses=10)  # one token per 20 s
    assert [throttle.failure("a", 0.0) for _ in range(3)] == [False, False, True]
    assert throttle.wait("a", 0.0) == pytest.approx(20.0)
    assert throttle.wait("a", 15.0) == pytest.approx(5.0)
    assert throttle.wait("a", 20.0) == 0.0  # one more attempt
    assert throttle.wait("a", 60.0) == 0.0
    assert len(throttle) == 0  # fully refilled: forgotten, the check is free again
