"""The one Redis connection spec of every shared-state user, parsed, validated and connected here.

Accepted (``docs/configuration.md#redis-connection-spec``)::

    redis://[user:pass@]host:port[/db][?client_name=…]        one server
    rediss://…                                                one server over TLS
    unix:///path/redis.sock[?db=…]                            one server, local socket
    redis+sentinel://[user:pass@]host:port[,host:port…]/service[?db=…]   Sentinel (rediss+sentinel: TLS)
    redis+cluster://[user:pass@]host:port[,host:port…]        Cluster seeds (rediss+cluster: TLS)

Credentials: those in the spec win; otherwise ``REDIS_USERNAME`` / ``REDIS_PASSWORD`` from the
environment (so a command line or a config file needs no secret; YAML may also say
``${VAR}``, substituted by each config reader). The sentinels themselves authenticate with
``REDIS_SENTINEL_USERNAME`` / ``REDIS_SENTINEL_PASSWORD`` when set (``requirepass`` of a
sentinel is separate from the data nodes'). A bad spec is a :class:`configkit.ConfigError`
naming the setting's full path; a password is never shown in a message (:attr:`RedisSpec.shown`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.connection import parse_url

from configkit import ConfigError
from sharedstate.cluster_client import FollowingCluster

Kind = Literal["single", "sentinel", "cluster"]
KINDS: tuple[Kind, ...] = ("single", "sentinel", "cluster")
SCHEMES = {"redis": "single", "rediss": "single", "unix": "single", "redis+sentinel": "sentinel",
           "rediss+sentinel": "sentinel", "redis+cluster": "cluster", "rediss+cluster": "cluster"}
EXPECTED = ("a redis:// URL or another Redis spec (rediss://…, unix:///path, redis+sentinel://host:port"
            "[,host:port…]/service, redis+cluster://host:port[,host:port…]; docs/configuration.md"
            "#redis-connection-spec)")
AnyRedis = aioredis.Redis | RedisCluster


@dataclass(frozen=True, slots=True)
class RedisSpec:
    """A validated spec: ``kind``, where to connect, and the credentials (never in ``shown``)."""

    kind: Kind
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    @property
    def shown(self) -> str:
        """The spec with any password replaced by ``***`` (for logs and errors)."""
        return redacted(self.url)

    @property
    def plain_tcp(self) -> bool:
        """One server over plain TCP (what ``gateway/ratelimit/pipe.py`` can speak)."""
        return self.kind == "single" and urlsplit(self.url).scheme == "redis"

    def client(self, **options: Any) -> AnyRedis:
        """A redis-py asyncio client; ``options`` are connection keywords (timeouts, decoding …).

        Sentinel: ``Sentinel(...).master_for(service)`` — the pool asks the sentinels for the
        primary on every new connection and drops connections to a demoted one. Cluster:
        ``RedisCluster`` on the seeds (slot map, ``MOVED``/``ASK`` handled by redis-py).
        """
        creds = {k: v for k, v in (("username", self.username), ("password", self.password)) if v}
        if self.kind == "single":
            return aioredis.Redis.from_url(self.url, **(creds | options))
        if self.kind == "sentinel":
            assert self.service is not None
            sentinel_auth = {k: v for k, v in (("username", self.sentinel_username),
                                               ("password", self.sentinel_password)) if v}
            timeouts = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout") if k in options}
            sentinel = Sentinel(list(self.hosts),  # type: ignore[no-untyped-call]
                                sentinel_kwargs=sentinel_auth | timeouts | _tls(self), **_tls(self))
            primary: aioredis.Redis = sentinel.master_for(self.service, db=self.db, **(creds | options))
            return primary
        cluster_options = {k: v for k, v in options.items() if k not in _NOT_FOR_CLUSTER}
        return FollowingCluster(startup_nodes=[ClusterNode(h, p) for h, p in self.hosts],
                                    **(creds | _tls(self) | cluster_options))


_NOT_FOR_CLUSTER = frozenset({"db"})


def _tls(spec: RedisSpec) -> dict[str, Any]:
    return {"ssl": True} if spec.tls and spec.kind != "single" else {}


def redacted(url: str) -> str:
    """``redis://u:secret@h`` → ``redis://u:***@h``."""
    head, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{head}{sep}{userinfo.split(':', 1)[0]}:***@{hostpart}"


def parse_redis_spec(value: object, path: str, env: Mapping[str, str] | None = None) -> RedisSpec:
    """Validate ``value`` (the setting at ``path``) into a :class:`RedisSpec`, or raise ConfigError."""
    env = os.environ if env is None else env
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, f"must be {EXPECTED}, got {value!r}")
    scheme = value.partition("://")[0].lower() if "://" in value else ""
    kind = SCHEMES.get(scheme)
    if kind is None:
        raise ConfigError(path, f"must be {EXPECTED}, got {redacted(value)!r}")
    creds = {"username": env.get("REDIS_USERNAME") or None, "password": env.get("REDIS_PASSWORD") or None,
             "sentinel_username": env.get("REDIS_SENTINEL_USERNAME") or None,
             "sentinel_password": env.get("REDIS_SENTINEL_PASSWORD") or None}
    if kind == "single":
        try:
            opts = parse_url(value)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise ConfigError(path, f"{exc} (in {redacted(value)!r})") from None
        if opts.get("password") or opts.get("username"):
            creds["username"] = creds["password"] = None  # the URL's own win (redis-py reads them)
        return RedisSpec(kind="single", url=value, db=int(opts.get("db") or 0), tls=scheme == "rediss",
                         **creds)  # type: ignore[arg-type]
    return _multi_host(value, path, kind, scheme, creds)


def _multi_host(value: str, path: str, kind: str, scheme: str, creds: dict[str, str | None]) -> RedisSpec:
    parts = urlsplit(value)
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    if at:
        user, _, password = userinfo.partition(":")
        creds["username"], creds["password"] = unquote(user) or None, unquote(password) or None
    hosts = tuple(_host_port(item, path, value) for item in hostlist.split(","))
    query = parse_qs(parts.query, keep_blank_values=True)
    allowed = {"db"} if kind == "sentinel" else set()
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise ConfigError(path, f"unknown option {unknown[0]!r} in {redacted(value)!r}"
                                f" (allowed: {', '.join(sorted(allowed)) or 'none'})")
    db = 0
    if "db" in query:
        raw = query["db"][-1]
        if not raw.isdigit():
            raise ConfigError(path, f"db must be a number, got {raw!r}")
        db = int(raw)
    segments = [s for s in parts.path.split("/") if s]
    service = None
    if kind == "sentinel":
        if len(segments) != 1:
            raise ConfigError(path, f"a Sentinel spec names its service: redis+sentinel://host:port/service,"
                                    f" got {redacted(value)!r}")
        service = unquote(segments[0])
    elif segments:
        raise ConfigError(path, f"a Cluster has only db 0 and no path, got {redacted(value)!r}")
    return RedisSpec(kind="sentinel" if kind == "sentinel" else "cluster", url=value, hosts=hosts,
                     service=service, db=db, tls=scheme.startswith("rediss"), **creds)


def _host_port(item: str, path: str, value: str) -> tuple[str, int]:
    host, colon, port = item.rpartition(":")
    if not colon:
        host, port = item, ""
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(path, f"expected host:port (the port is required), got {item!r}"
                                f" in {redacted(value)!r}")
    return host, int(port)
