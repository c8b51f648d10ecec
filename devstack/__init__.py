"""Private PostgreSQL and Redis servers for `make run` and the test session.

The embedded default of mes-edge: the user sets nothing up; each server runs
from a folder of its own on a loopback port and is stopped by PID.
"""

from devstack.ports import free_port
from devstack.postgres import PostgresServer
from devstack.redis import RedisServer

__all__ = ["PostgresServer", "RedisServer", "free_port"]
