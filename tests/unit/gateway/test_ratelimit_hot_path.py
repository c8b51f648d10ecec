"""ratelimit.hot_path: the pipe only where it can go (one server over plain TCP)."""

from __future__ import annotations

import pytest

from configkit import ConfigError
from gateway.ratelimit import PartnerLimiter
from gateway.ratelimit.client_windows import ClientWindows
from gateway.ratelimit.policy import parse_ratelimit_section
from gateway.ratelimit.shared import SharedWindows


@pytest.mark.parametrize(("url", "hot_path", "client"), [
    ("redis://127.0.0.1:1/0", "auto", SharedWindows),
    ("redis://127.0.0.1:1/0", "redis-py", ClientWindows),
    ("rediss://127.0.0.1:1/0", "auto", ClientWindows),
    ("redis+sentinel://127.0.0.1:1/mymaster", "auto", ClientWindows),
    ("redis+cluster://127.0.0.1:1", "auto", ClientWindows),
])
async def test_auto_takes_the_pipe_on_redis_urls_only(url: str, hot_path: str, client: type) -> None:
    limiter = PartnerLimiter(parse_ratelimit_section({"redis_url": url, "hot_path": hot_path}))
    assert isinstance(limiter.shared, client)
    await limiter.aclose()


def test_the_pipe_is_refused_where_it_cannot_go() -> None:
    with pytest.raises(ConfigError, match=r"^ratelimit.hot_path: pipe speaks to one server over plain TCP"):
        parse_ratelimit_section({"redis_url": "redis+sentinel://u:pw@s:26379/m", "hot_path": "pipe"})


def test_a_bad_spec_names_the_full_path() -> None:
    with pytest.raises(ConfigError, match=r"^ratelimit.redis_url: a Sentinel spec names its service"):
        parse_ratelimit_section({"redis_url": "redis+sentinel://s:26379"})


async def test_an_unreachable_cluster_degrades_instead_of_raising() -> None:
    """redis-py raises RedisClusterException (not a RedisError) when no seed answers."""
    limiter = PartnerLimiter(parse_ratelimit_section({"redis_url": "redis+cluster://127.0.0.1:1"}))
    windows = limiter.config.windows_for("acme", "default")
    await limiter.start()
    decision = await limiter.check(windows, (("partner", "acme"),))
    assert limiter.degraded
    assert decision is not None
    assert decision.allowed
    await limiter.aclose()


async def test_an_unclassified_store_error_degrades_instead_of_a_500(redis_url: str) -> None:
    """A clean-clone run of bench.failover's reshard answered 4 partner requests with 500: redis-py's
    Cluster client raises types outside the backend errors mid-migration. Any failure of the store
    call leaves the store's answer unknown: degraded, counted as ``reason="other"``."""
    from prometheus_client import REGISTRY

    limiter = PartnerLimiter(parse_ratelimit_section({"redis_url": redis_url}))
    windows = limiter.config.windows_for("acme", "default")
    await limiter.start()
    try:
        assert not limiter.degraded

        async def leaks(*_args: object) -> None:
            raise KeyError("slot 1234")  # what a client bug mid-reshard looks like

        before = REGISTRY.get_sample_value("gateway_ratelimit_backend_errors_total", {"reason": "other"}) or 0
        limiter.shared.hit = leaks  # type: ignore[union-attr,method-assign]
        decision = await limiter.check(windows, (("partner", "acme"),))
        assert limiter.degraded
        assert decision is not None
        assert decision.allowed
        after = REGISTRY.get_sample_value("gateway_ratelimit_backend_errors_total", {"reason": "other"})
        assert after == before + 1
    finally:
        await limiter.aclose()
