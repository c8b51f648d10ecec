"""A child server process stopped by PID, with its output kept in a log file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path


class ServerProcess:
    """Start ``argv`` with stdout/stderr appended to ``log_path``; stop it by PID."""

    def __init__(self, argv: Sequence[str], *, log_path: Path, user: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.user = user
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = self.argv
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        log = self.log_path.open("ab")
        try:
            # own process group so a terminal Ctrl-C reaches the orchestrator only,
            # which then stops children in order
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)
        finally:
            log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Send ``sig`` to the process group we started, then SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_ready(url: str, proc: ServerProcess, timeout: float = 30.0) -> None:
    """Poll ``url`` (``/readyz``, ``/-/ready``) until 200; raise with the log tail if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (loopback URL we built)
                if resp.status == 200:
                    return
        except OSError:
            pass
        if not proc.alive():
            raise RuntimeError(f"{proc.argv[0]} exited:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready after {timeout:.0f} s:\n{proc.log_tail()}")
        time.sleep(0.1)
