"""The multi-window script through redis-py: the hot path on Sentinel, Cluster and TLS specs.

``RespPipe`` speaks to one address over plain TCP; it has no Sentinel discovery, no
``MOVED``/``ASK`` and no TLS. On those specs the same script runs through redis-py's client
(``Script``: ``EVALSHA``, ``SCRIPT LOAD`` on ``NOSCRIPT``; Sentinel's pool follows the primary,
``RedisCluster`` routes by the keys' slot). Cost per request, measured against the pipe:
docs/partner-edge.md#redis-client-on-the-policy-path.
"""

from __future__ import annotations

from gateway.ratelimit.decision import Decision
from gateway.ratelimit.policy import Window
from gateway.ratelimit.shared import MULTI_WINDOW_SCRIPT, counter_keys
from sharedstate.redis_spec import AnyRedis


class ClientWindows:
    """Same keys, script and decision as ``SharedWindows``, on a redis-py client."""

    def __init__(self, client: AnyRedis, key_prefix: str) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self._script = client.register_script(MULTI_WINDOW_SCRIPT)

    async def hit(self, windows: tuple[Window, ...], ids: tuple[tuple[str, ...], ...]) -> Decision:
        keys: list[str] = []
        args: list[int] = []
        for window, identifiers in zip(windows, ids, strict=True):
            keys.extend(counter_keys(self.key_prefix, window, identifiers))
            args.extend((window.amount, window.seconds * 1000))
        out = await self._script(keys=keys, args=args)
        return Decision(bool(out[0]), windows, tuple(out[1::2]), tuple(ms / 1000 for ms in out[2::2]))

    def close(self) -> None:
        """The client is the limiter's; it closes it."""
