"""Servers left behind by a test session that was killed from outside.

A pytest session killed with SIGKILL (a timeout, an impatient Ctrl-C twice) never runs its
fixture finalizers, so the PostgreSQL and Redis it started keep running, holding ports and
memory. Each session writes its pid to ``owner.pid`` in its temp dir; a later session stops,
by pid, the processes whose command line names a dir whose owner is gone, then removes the dir.
Dirs without ``owner.pid`` (older code, or a session just being set up) are left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["OWNER_FILE", "PREFIX", "claim", "sweep"]

PREFIX = "mes-edge-tests-"
OWNER_FILE = "owner.pid"


def claim(session_dir: Path) -> None:
    """Mark ``session_dir`` as owned by this process."""
    (session_dir / OWNER_FILE).write_text(str(os.getpid()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a reused pid that is not a Python process is not our session
        return b"python" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _pids_naming(path: Path) -> Iterator[int]:
    needle = str(path).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                yield int(entry.name)
        except OSError:
            continue


def _stop(pids: list[int], grace: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def sweep(tmp_root: Path, *, grace: float = 5.0) -> list[Path]:
    """Stop the servers of dead sessions under ``tmp_root`` and remove their dirs; returns them."""
    swept = []
    for session_dir in sorted(tmp_root.glob(PREFIX + "*")):
        try:
            owner = int((session_dir / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        _stop(list(_pids_naming(session_dir)), grace)
        shutil.rmtree(session_dir, ignore_errors=True)
        swept.append(session_dir)
    return swept
