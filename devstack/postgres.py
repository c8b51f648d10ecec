"""A private PostgreSQL cluster in a folder of its own (the embedded default).

PostgreSQL refuses to run as root; when we are root (CI, a fresh Debian box)
the server runs as the ``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from devstack.ports import free_port, wait_for_port
from devstack.process import ServerProcess

_FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL server binary (Debian keeps them out of PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise FileNotFoundError(
            f"{name} not found: install PostgreSQL (apt-get install postgresql) or run `make deps`")
    return candidates[0]


class PostgresServer:
    """initdb (once) + postgres on ``127.0.0.1:port`` with trust auth on loopback only."""

    def __init__(self, base_dir: Path, *, port: int = 0, fast: bool = False,
                 database: str = "mes", settings: dict[str, str] | None = None) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.data_dir = self.base_dir / "data"
        self.port = port or free_port()
        self.fast = fast
        self.database = database
        self.settings = dict(settings or {})  # extra `-c` server settings
        self.user = "postgres" if os.geteuid() == 0 else None
        self._server: ServerProcess | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            # the server user must be able to reach its folder (mkdtemp makes 0700 dirs)
            for parent in path.parents:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)
            pw = pwd.getpwnam(self.user)
            for p in [path, *path.rglob("*")]:
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def _run(self, argv: list[str]) -> None:
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")

    def start(self, timeout: float = 30.0) -> PostgresServer:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.base_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run([pg_bin("initdb"), "-D", str(self.data_dir), "-U", "postgres",
                       "--auth=trust", "--encoding=UTF8", "--locale=C"])
        settings = {"listen_addresses": "127.0.0.1", "port": str(self.port),
                    "unix_socket_directories": str(self.base_dir), "max_connections": "200",
                    **(_FAST if self.fast else {}), **self.settings}
        argv = [pg_bin("postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self._server = ServerProcess(argv, log_path=self.base_dir / "postgres.log", user=self.user)
        self._server.start()
        try:
            self._wait_ready(timeout)
            self._create_database()
        except Exception:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        wait_for_port(self.port, timeout=timeout)
        deadline = time.monotonic() + timeout
        while subprocess.run([pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or not (self._server and self._server.alive()):
                tail = self._server.log_tail() if self._server else ""
                raise RuntimeError(f"PostgreSQL did not become ready:\n{tail}")
            time.sleep(0.1)

    def _create_database(self) -> None:
        psql = [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                "-d", "postgres", "-tAc"]
        query = f"SELECT 1 FROM pg_database WHERE datname='{self.database}'"  # noqa: S608 (our own name)
        exists = subprocess.run([*psql, query],
                                capture_output=True, text=True, check=True).stdout.strip()
        if exists != "1":
            subprocess.run([*psql, f'CREATE DATABASE "{self.database}"'], capture_output=True,
                           check=True)

    @property
    def pid(self) -> int | None:
        return self._server.pid if self._server else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(signal.SIGINT)  # "fast" shutdown: abort sessions, checkpoint, exit
            self._server = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
