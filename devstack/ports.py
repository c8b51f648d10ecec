"""Ephemeral loopback ports."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

#: Ports this process has handed out: never handed out twice. The kernel picks a released port
#: again now and then (2,000 plain bind-to-0 draws repeated 137 times here), so a fixture asking
#: for 18 ports one by one got the same one twice about once in a hundred starts.
_handed_out: set[int] = set()
_lock = threading.Lock()
_MAX_DRAWS = 1000


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago (the kernel picks it), never one this
    process returned before."""
    held: list[socket.socket] = []  # drawn ports stay bound until the end, so no draw repeats
    try:
        with _lock:
            for _ in range(_MAX_DRAWS):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
                if port not in _handed_out:
                    _handed_out.add(port)
                    return port
        raise RuntimeError(f"no fresh port on {host} in {_MAX_DRAWS} draws")
    finally:
        for sock in held:
            sock.close()


@contextlib.contextmanager
def refusing_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port where connections are refused for as long as the block runs: bound, never
    listening, so no other server (of this process or another) can take it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    """Block until something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s") from None
            time.sleep(0.05)
