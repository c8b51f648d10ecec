"""Cache keys: the normalised request, and the version counters an entry depends on.

An entry is stored under ``<prefix>e:<route>:<partner>:<path>?<params>`` with the values of
its version counters at the time the upstream request was *sent*. A lookup reads the current
values in the same round trip; any difference means an invalidation happened since, and the
entry is unreachable (never served, not even as stale).

Version counters (all shared by every route, so a change seen anywhere reaches every view):

* ``{v}:all`` — everything (reconnect of the event feed, purge all);
* ``{v}:route:<name>`` — one route (admin purge);
* ``{v}:lists`` — unfiltered lists (any order change may alter them);
* ``{v}:status:<STATUS>`` — lists filtered by that status;
* ``{v}:order:<id>`` — the order read by id.

On Redis Cluster: every version counter carries the hash tag ``{v}``, so the counters one
entry depends on are read with one single-slot ``MGET`` and the counters one order change bumps
are written in one slot. Entries are not tagged (each is read and written alone, so they spread
over the shards); an entry and its counters may live on different shards, and the lookup stays
correct without reading them atomically (docs/redis.md, "Cache").
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from multidict import MultiMapping

from gateway.cache.policy import CachePolicy

MAX_KEY_CHARS = 512


@dataclass(frozen=True, slots=True)
class CacheKey:
    """Where an entry lives and which version counters guard it."""

    entry: str
    versions: tuple[str, ...]


class Uncacheable(Exception):
    """The request cannot be served from the cache; ``str(exc)`` is the Cache-Status detail."""


@dataclass(frozen=True, slots=True)
class VersionKeys:
    """Names of the version counters under one key prefix (all in the hash slot of ``{v}``)."""

    prefix: str

    @property
    def tagged(self) -> str:
        return f"{self.prefix}{{v}}"

    @property
    def all(self) -> str:
        return f"{self.tagged}:all"

    @property
    def lists(self) -> str:
        return f"{self.tagged}:lists"

    def route(self, name: str) -> str:
        return f"{self.tagged}:route:{name}"

    def status(self, status: str) -> str:
        return f"{self.tagged}:status:{status}"

    def order(self, order_id: int | str) -> str:
        return f"{self.tagged}:order:{order_id}"


def _normal_value(name: str, value: str, policy: CachePolicy) -> str:
    value = value.strip()
    if name == policy.status_param:
        return value.upper()  # the MES parses statuses case-insensitively
    if value.isdecimal():
        return str(int(value))  # page=01 is page=1
    return value


def normalised_params(query: MultiMapping[str], policy: CachePolicy) -> dict[str, str]:
    """Key parameters, defaults applied (a value equal to its default is dropped), sorted."""
    params: dict[str, str] = {}
    for name in query:
        if name not in policy.key_params:
            if policy.unknown_params == "bypass":
                raise Uncacheable("unknown-param")
            continue
        values = query.getall(name)
        if len(values) > 1:
            raise Uncacheable("repeated-param")
        params[name] = _normal_value(name, values[0], policy)
    return {name: value for name, value in sorted(params.items())
            if value != _normal_value(name, policy.key_params[name], policy)}


def cache_key(*, keys: VersionKeys, route: str, policy: CachePolicy, prefix: str, path: str,
              query: MultiMapping[str], partner: str | None) -> CacheKey:
    """The key of a GET on the route's collection (``prefix``) or one item (``prefix/<id>``)."""
    if policy.vary_partner and partner is None:
        raise Uncacheable("no-partner")
    rest = path[len(prefix):].strip("/")
    params = normalised_params(query, policy)
    common = (keys.all, keys.route(route))
    if not rest:
        status = params.get(policy.status_param)
        versions = (*common, keys.status(status) if status else keys.lists)
    elif rest.isdecimal() and 0 < len(rest) <= 19:
        rest = str(int(rest))
        versions = (*common, keys.order(rest))
    else:
        raise Uncacheable("path")
    qs = urlencode(params)
    entry = f"{keys.prefix}e:{route}:{partner or '-'}:/{rest}?{qs}"
    if len(entry) > MAX_KEY_CHARS:
        raise Uncacheable("key-too-long")
    return CacheKey(entry=entry, versions=versions)
