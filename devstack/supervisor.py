"""`make run`'s supervisor: a crashed child is restarted with backoff; only a crash loop stops all.

What the gateway master does for its workers, for the processes `make run` starts (the
``ServerProcess`` children: legacy stand-ins, sidecars, pricing workers, the archiver, the
gateway, Prometheus, Alertmanager, the alert logger). A child that exits while the platform runs
-- whatever its exit code: these are servers -- is

- logged (one line on `make run`'s output naming it, its PID, exit code and log file) and
  counted (``restarts`` per child, also written to ``<run dir>/children.json``);
- started again, with the same argv, environment and log file, after a full-jitter backoff
  (``resilience.backoff.Backoff``: the n-th restart in a row waits uniform in
  ``[0, min(cap, base * 2**(n-1))]``, by default 0.5 s doubling to 15 s); the backoff starts
  over once the child has stayed up for ``stable_after`` seconds (60);
- given up on when it crashed more than ``max_restarts`` times within ``window`` seconds
  (5 in 60 s; ``MES_EDGE_MAX_RESTARTS``): ``poll`` raises ``CrashLoop``, whose message names the
  child, its exit code and the last lines of its output, and `make run` stops everything.

When a child is found dead, what is left of its process group is killed before its exit is
reaped (the group is the one `make run` created for it, and the unreaped zombie keeps its ID
from being reused): a gateway master's orphaned workers would hold its ports.
PostgreSQL and Redis are not restarted (their data directories need care a blind restart does
not give); they are not watched, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from devstack.process import ServerProcess
from resilience.backoff import Backoff

__all__ = ["CrashLoop", "Supervisor"]

#: Output lines of a child quoted when it is given up on.
TAIL_LINES = 20


def _exited(proc: ServerProcess) -> bool:
    """True once the child has exited, *without* reaping it (its zombie keeps the PID ours)."""
    popen = proc.proc
    if popen is None or popen.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return popen.poll() is not None


class CrashLoop(RuntimeError):
    """A child crashed more than ``max_restarts`` times within ``window`` seconds."""

    def __init__(self, name: str, exit_code: int | None, crashes: int, window: float, log_path: Path,
                 tail: str) -> None:
        super().__init__(
            f"{name} keeps crashing: it exited {crashes} times within {window:.0f} s (last exit code "
            f"{exit_code}); stopping everything. Its last output ({log_path}):\n{tail}"
        )
        self.name = name


@dataclass
class _Child:
    name: str
    proc: ServerProcess
    backoff: Backoff
    started_at: float
    restarts: int = 0
    last_exit: int | None = None
    restart_at: float | None = None  # a crash is waiting out its backoff
    crashes: deque[float] = field(default_factory=deque)


class Supervisor:
    """Watches ``children`` (name, started ``ServerProcess``); call ``poll`` periodically."""

    def __init__(self, children: Iterable[tuple[str, ServerProcess]], *, status_path: Path | None = None,
                 base: float = 0.5, cap: float = 15.0, max_restarts: int = 5, window: float = 60.0,
                 stable_after: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 say: Callable[[str], None] = print) -> None:
        if max_restarts < 0 or window <= 0:
            raise ValueError("need max_restarts >= 0 and window > 0")
        self._clock = clock
        self._say = say
        self.status_path = status_path
        self.max_restarts = max_restarts
        self.window = window
        self.stable_after = stable_after
        now = clock()
        self._children = [_Child(name, proc, Backoff(base=base, cap=cap), started_at=now)
                          for name, proc in children]
        self._write_status()

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts so far, per child name."""
        return {child.name: child.restarts for child in self._children}

    def poll(self) -> None:
        """Restart what is due, notice what died; raise ``CrashLoop`` for a child that keeps crashing."""
        now = self._clock()
        for child in self._children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child, now)
                continue
            if not _exited(child.proc):
                if child.backoff.failures and now - child.started_at >= self.stable_after:
                    child.backoff.reset()  # up long enough: the next crash waits little again
                continue
            self._crashed(child, now)

    def _crashed(self, child: _Child, now: float) -> None:
        popen = child.proc.proc
        if popen is not None:
            if popen.returncode is None:  # not reaped yet: its PID cannot be reused meanwhile
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(popen.pid, signal.SIGKILL)  # what is left of its group (own session)
            child.last_exit = popen.wait()
        child.crashes.append(now)
        while child.crashes and now - child.crashes[0] > self.window:
            child.crashes.popleft()
        if len(child.crashes) > self.max_restarts:
            self._write_status()
            raise CrashLoop(child.name, child.last_exit, len(child.crashes), self.window,
                            child.proc.log_path, child.proc.log_tail(TAIL_LINES))
        delay = child.backoff.next_delay()
        child.restart_at = now + delay
        self._say(f"{child.name} (pid {child.proc.pid}) exited with code {child.last_exit}; restarting it "
                  f"in {delay:.1f} s (crash {len(child.crashes)} of at most {self.max_restarts} in "
                  f"{self.window:.0f} s; its output: {child.proc.log_path})")
        self._write_status()

    def _restart(self, child: _Child, now: float) -> None:
        child.proc.start()
        child.restart_at = None
        child.started_at = now
        child.restarts += 1
        self._say(f"{child.name} restarted (pid {child.proc.pid}, restart {child.restarts})")
        self._write_status()

    def _write_status(self) -> None:
        """``children.json``: each child's PID, restarts and last exit code (for people and tools)."""
        if self.status_path is None:
            return
        status = {child.name: {"pid": child.proc.pid, "restarts": child.restarts,
                               "last_exit_code": child.last_exit, "restarting": child.restart_at is not None}
                  for child in self._children}
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=1) + "\n")
        tmp.replace(self.status_path)
