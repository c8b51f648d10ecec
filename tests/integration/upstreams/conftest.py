"""Fake endpoints on ephemeral ports and a helper to build started clusters."""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway.upstreams.cluster import Cluster
from gateway.upstreams.config import ClusterConfig
from tests.support.fake_upstream import FakeUpstream, fake_upstream

_names = itertools.count()


@pytest.fixture
async def upstream_a() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as up:
        yield up


@pytest.fixture
async def upstream_b() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as up:
        yield up


@pytest.fixture
def dead_url() -> str:
    """A URL nothing listens on (port bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def unique_name() -> str:
    """A fresh cluster name, so metric series do not leak between tests."""
    return f"it-{next(_names)}"


ClusterFactory = Callable[..., Any]


@pytest.fixture
def started_cluster() -> ClusterFactory:
    """``async with started_cluster(url, ..., balancer=..., ...) as cluster``."""

    @asynccontextmanager
    async def factory(*urls: str, **settings: Any) -> AsyncIterator[Cluster]:
        settings.setdefault("balancer", "round_robin")
        cluster = Cluster(ClusterConfig(name=unique_name(), endpoints=urls, **settings))
        await cluster.start()
        try:
            yield cluster
        finally:
            await cluster.aclose()

    return factory
