"""uvloop's RuntimeError for a write on a closed transport is a lost connection (sharedstate/errors.py)."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError

from sharedstate.errors import REDIS_ERRORS, closed_connection_as_connection_error

UVLOOP = ("unable to perform operation on <TCPTransport closed=True reading=False 0x55b5b17b0a90>; "
          "the handler is closed")  # as a SIGKILLed Cluster primary gave it in bench.failover


def test_a_write_on_a_closed_transport_becomes_a_connection_error() -> None:
    with pytest.raises(ConnectionError) as raised, closed_connection_as_connection_error():
        raise RuntimeError(UVLOOP)
    assert isinstance(raised.value, REDIS_ERRORS)


def test_other_runtime_errors_pass_unchanged() -> None:
    with pytest.raises(RuntimeError, match="Event loop is closed"), closed_connection_as_connection_error():
        raise RuntimeError("Event loop is closed")
