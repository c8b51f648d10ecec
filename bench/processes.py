"""Servers under test as child processes: free ports, start, readiness, CPU time, stop by PID.

Every server is started in its own session, so its process group id is its PID:
stopping it signals exactly that group (the server and the workers it forked) and
nothing else on the machine.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_ports(count: int) -> list[int]:
    """``count`` free TCP ports on 127.0.0.1, none handed out before by this process."""
    return [free_port() for _ in range(count)]


class StartupError(RuntimeError):
    """A server exited or did not become ready in time."""


class ManagedProcess:
    """One server process (and whatever it forks), logging to files in ``workdir``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        workdir: Path,
        *,
        cwd: Path = ROOT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.env = None if env is None else dict(env)
        self.stdout_path = workdir / f"{name}.stdout.log"
        self.stderr_path = workdir / f"{name}.stderr.log"
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._popen.pid

    def start(self) -> None:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self._popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def exit_code(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_http_ok(self, port: int, path: str, timeout: float) -> None:
        """Poll ``GET http://127.0.0.1:port/path`` until it answers 200, or raise StartupError."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            code = self.exit_code()
            if code is not None:
                raise StartupError(f"{self.name} exited with code {code}{self._tail_note()}")
            status, last = http_get(port, path)
            if status == 200:
                return
            time.sleep(0.1)
        raise StartupError(
            f"{self.name} not ready: GET 127.0.0.1:{port}{path} gave {last} "
            f"for {timeout:.0f} s{self._tail_note()}"
        )

    def _tail_note(self) -> str:
        tail = self.stderr_tail()
        return f"\n--- {self.stderr_path} (tail) ---\n{tail}" if tail else ""

    def cpu_seconds(self) -> float:
        """User+system CPU seconds of every live process in this server's process group."""
        if self._popen is None:
            return 0.0
        return group_cpu_seconds(self._popen.pid)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL it if the leader is still alive after ``timeout``."""
        if self._popen is None or self._popen.poll() is not None:
            return
        _signal_group(self._popen.pid, signal.SIGTERM)
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self._popen.pid, signal.SIGKILL)
            self._popen.wait(timeout)
        # forked workers may outlive a leader that exited on SIGTERM
        deadline = time.monotonic() + timeout
        while _live_members(self._popen.pid):
            if time.monotonic() > deadline:
                _signal_group(self._popen.pid, signal.SIGKILL)
                break
            time.sleep(0.05)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_stats(pgid: int) -> list[tuple[str, int]]:
    """(state, utime+stime ticks) of each /proc entry whose process group is ``pgid``."""
    stats = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is stat field 3 (state): pgrp is field 5, utime 14, stime 15
        if int(fields[2]) == pgid:
            stats.append((fields[0], int(fields[11]) + int(fields[12])))
    return stats


def _live_members(pgid: int) -> int:
    return sum(1 for state, _ in _group_stats(pgid) if state != "Z")


def group_cpu_seconds(pgid: int) -> float:
    """User+system CPU seconds of the live processes in process group ``pgid``."""
    return sum(ticks for _, ticks in _group_stats(pgid)) / CLOCK_TICKS


def http_get(port: int, path: str, timeout: float = 1.0) -> tuple[int | None, str]:
    """One ``GET`` on 127.0.0.1: (status or None, a short description for error messages)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read(200)
        return response.status, f"{response.status} {body[:80]!r}"
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def box_busy_seconds() -> float:
    """CPU seconds spent non-idle by the whole machine since boot (from /proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS
