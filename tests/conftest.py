"""Session-wide real servers: PostgreSQL and Redis on ephemeral ports in temp dirs.

They are started once per test session by `devstack` (the same code `make run`
uses) and stopped by PID at the end. Tests needing isolation use the
per-test fixtures (`pg_dsn` gives a fresh database, `redis_url` a flushed db;
`replicated_dsns` a fresh database on a primary with a streaming replica).
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from devstack import PostgresServer, RedisServer
from devstack.postgres import pg_bin
from tests.support import mesdb_schema, stale_sessions
from tests.support.redis_cluster_keys import ClusterNodes, redis_cluster
from tests.support.replica import ReplicaPair, replica_pair

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def session_tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=stale_sessions.PREFIX) as tmp:
        stale_sessions.sweep(Path(tmp).parent)  # servers of sessions killed from outside
        stale_sessions.claim(Path(tmp))
        yield Path(tmp)


@pytest.fixture(scope="session")
def pg_server(session_tmp: Path) -> Iterator[PostgresServer]:
    # pg_stat_statements preloaded, as the DBA's `mesdb analyse` expects of a production server
    server = PostgresServer(session_tmp / "postgres", fast=True, database="postgres",
                            settings={"shared_preload_libraries": "pg_stat_statements"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_replica_pair(session_tmp: Path) -> Iterator[ReplicaPair]:
    """A primary of its own with a streaming replica (`pg_basebackup -R`), started on first use."""
    with replica_pair(session_tmp / "replication") as pair:
        yield pair


@pytest.fixture
def replicated_dsns(pg_replica_pair: ReplicaPair) -> tuple[str, str]:
    """``(primary DSN, replica DSN)`` of a fresh database, already visible on the replica."""
    return pg_replica_pair.database()


@pytest.fixture(scope="session")
def redis_server(session_tmp: Path) -> Iterator[RedisServer]:
    server = RedisServer(session_tmp / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster_server(session_tmp: Path) -> Iterator[ClusterNodes]:
    """A real Redis Cluster of 3 primaries (devstack/redis_cluster.py), started on first use."""
    with redis_cluster(session_tmp / "redis-cluster") as nodes:
        yield nodes


@pytest.fixture
def redis_cluster_nodes(redis_cluster_server: ClusterNodes) -> ClusterNodes:
    """The session's Redis Cluster with every primary flushed before the test."""
    for port in redis_cluster_server.ports:  # a replica refuses FLUSHALL (READONLY): ignored
        subprocess.run(["redis-cli", "-p", str(port), "FLUSHALL"], check=False, capture_output=True)
    return redis_cluster_server


@pytest.fixture
async def cluster_client(redis_cluster_nodes: ClusterNodes) -> AsyncIterator[RedisCluster]:
    """A redis-py asyncio cluster client on :func:`redis_cluster_nodes`, closed after the test."""
    client = RedisCluster.from_url(redis_cluster_nodes.seed_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> str:
    """DSN of a fresh, empty database on the session's PostgreSQL."""
    name = f"test_{next(_db_counter)}"
    subprocess.run([pg_bin("psql"), "-h", "127.0.0.1", "-p", str(pg_server.port), "-U", "postgres",
                    "-d", "postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True,
                   capture_output=True)
    dsn = f"postgresql://postgres@127.0.0.1:{pg_server.port}/{name}"
    if mesdb_schema.wanted():  # MES_TEST_SCHEMA=mesdb: the legacy tables as the database kit leaves them
        mesdb_schema.migrate(dsn)
    return dsn


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's Redis with logical db 0 flushed before the test."""
    subprocess.run(["redis-cli", "-p", str(redis_server.port), "FLUSHALL"], check=True,
                   capture_output=True)
    return redis_server.url
