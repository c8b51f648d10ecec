"""The one Redis connection spec: every kind parsed, bad specs named by their full path, no secret shown."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from configkit import ConfigError
from sharedstate.redis_spec import parse_redis_spec

NO_ENV: dict[str, str] = {}


@pytest.mark.parametrize(("url", "kind", "tls"), [
    ("redis://127.0.0.1:6379/2", "single", False),
    ("rediss://cache.example:6380/0", "single", True),
    ("unix:///run/redis.sock?db=1", "single", False),
    ("redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster?db=3", "sentinel", False),
    ("rediss+sentinel://s1:26379/mymaster", "sentinel", True),
    ("redis+cluster://n1:7000,n2:7001", "cluster", False),
])
def test_every_kind_is_accepted(url: str, kind: str, tls: bool) -> None:
    spec = parse_redis_spec(url, "x.redis_url", NO_ENV)
    assert (spec.kind, spec.tls) == (kind, tls)


def test_sentinel_spec_names_hosts_service_and_db() -> None:
    spec = parse_redis_spec("redis+sentinel://u:p%40ss@s1:26379,[::1]:26380/orders?db=3", "p", NO_ENV)
    assert spec.hosts == (("s1", 26379), ("::1", 26380))
    assert (spec.service, spec.db, spec.username, spec.password) == ("orders", 3, "u", "p@ss")


def test_credentials_come_from_the_environment_unless_the_spec_has_them() -> None:
    env = {"REDIS_USERNAME": "svc", "REDIS_PASSWORD": "from-env", "REDIS_SENTINEL_PASSWORD": "sent"}
    spec = parse_redis_spec("redis+cluster://n1:7000", "p", env)
    assert (spec.username, spec.password) == ("svc", "from-env")
    assert parse_redis_spec("redis+sentinel://s:1/m", "p", env).sentinel_password == "sent"
    own = parse_redis_spec("redis://:inurl@h:6379/0", "p", env)
    assert own.password is None  # the URL's own password wins (redis-py reads it from the URL)


@pytest.mark.parametrize(("url", "problem"), [
    ("http://h:6379", "must be a redis:// URL or another Redis spec"),
    ("", "must be a redis:// URL or another Redis spec"),
    ("redis+sentinel://s1:26379", "a Sentinel spec names its service"),
    ("redis+sentinel://s1:26379/a/b", "a Sentinel spec names its service"),
    ("redis+sentinel://s1/mymaster", "expected host:port (the port is required)"),
    ("redis+sentinel://s1:26379/m?db=x", "db must be a number"),
    ("redis+sentinel://s1:26379/m?timeout=1", "unknown option 'timeout'"),
    ("redis+cluster://n1:7000/2", "a Cluster has only db 0"),
    ("redis+cluster://n1:99999", "expected host:port"),
])
def test_a_bad_spec_is_a_config_error_naming_the_full_path(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_redis_spec(url, "cache.events_redis_url", NO_ENV)
    assert str(err.value).startswith("cache.events_redis_url: ")
    assert problem in str(err.value)


def test_a_password_is_never_shown() -> None:
    with pytest.raises(ConfigError) as err:
        parse_redis_spec("redis+sentinel://u:s3cret@s1:26379", "ratelimit.redis_url", NO_ENV)
    assert "s3cret" not in str(err.value)
    assert "u:***@s1" in str(err.value)
    assert parse_redis_spec("redis://u:s3cret@h:1/0", "p", NO_ENV).shown == "redis://u:***@h:1/0"


async def test_each_kind_makes_its_redis_py_client() -> None:
    single = parse_redis_spec("redis://127.0.0.1:1/0", "p", NO_ENV).client(socket_timeout=0.1)
    sentinel = parse_redis_spec("redis+sentinel://127.0.0.1:1/m?db=2", "p", NO_ENV).client()
    cluster = parse_redis_spec("redis+cluster://127.0.0.1:1", "p", NO_ENV).client(db=0)
    assert isinstance(single, Redis)
    assert isinstance(cluster, RedisCluster)
    assert isinstance(sentinel, Redis)
    assert type(sentinel.connection_pool).__name__ == "SentinelConnectionPool"
    assert sentinel.connection_pool.connection_kwargs["db"] == 2
    for client in (single, sentinel, cluster):
        await client.aclose()
