"""devstack.ports: ports handed out once per process, and a port that refuses while held."""

from __future__ import annotations

import socket

import pytest

from devstack.ports import free_port, refusing_port


def test_free_port_never_hands_out_the_same_port_twice() -> None:
    # the kernel re-picks a released port now and then: 2,000 plain bind-to-0 draws repeated
    # 137 times on this machine (2026-12-05)
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)


def test_a_refusing_port_refuses_connections_and_cannot_be_taken_while_held() -> None:
    with refusing_port() as port:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        with socket.socket() as other, pytest.raises(OSError, match="Address already in use"):
            other.bind(("127.0.0.1", port))
