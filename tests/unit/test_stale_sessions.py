"""A later test session stops the servers a killed one left behind, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stale_sessions import OWNER_FILE, PREFIX, sweep


def _server_naming(path: Path) -> subprocess.Popen[bytes]:
    """A long-running process whose command line names ``path`` (like ``postgres -D <dir>``)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(path / "data")])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:  # whatever the sweep left running: ours to stop, by pid
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_only_sessions_whose_owner_is_gone_are_swept(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(10)
    dead, live, legacy = (tmp_path / f"{PREFIX}{name}" for name in ("dead", "live", "legacy"))
    for session in (dead, live, legacy):
        session.mkdir()
        processes.append(_server_naming(session))
    (dead / OWNER_FILE).write_text(str(finished.pid))
    (live / OWNER_FILE).write_text(str(os.getpid()))

    assert sweep(tmp_path, grace=5.0) == [dead]

    assert processes[0].wait(10) is not None  # the dead session's server was stopped
    assert not dead.exists()
    assert processes[1].poll() is None
    assert live.exists()
    assert processes[2].poll() is None
    assert legacy.exists()
