"""A private Redis server in a folder of its own (the embedded default)."""

from __future__ import annotations

import shutil
from pathlib import Path

from devstack.ports import free_port, wait_for_port
from devstack.process import ServerProcess


class RedisServer:
    """redis-server on ``127.0.0.1:port``; ``persistent`` keeps an append-only file."""

    def __init__(self, base_dir: Path, *, port: int = 0, persistent: bool = False) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.port = port or free_port()
        self.persistent = persistent
        self._server: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: apt-get install redis-server (or `make deps`)")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.base_dir),
                "--save", "", "--daemonize", "no", "--protected-mode", "yes",
                "--appendonly", "yes" if self.persistent else "no"]
        self._server = ServerProcess(argv, log_path=self.base_dir / "redis.log")
        self._server.start()
        try:
            wait_for_port(self.port, timeout=timeout)
        except TimeoutError:
            tail = self._server.log_tail()
            self.stop()
            raise RuntimeError(f"Redis did not start:\n{tail}") from None
        return self

    @property
    def pid(self) -> int | None:
        return self._server.pid if self._server else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
