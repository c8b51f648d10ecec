"""`make run`'s supervisor on real (tiny) child processes: restart with backoff, give up on a loop."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.process import ServerProcess
from devstack.supervisor import CrashLoop, Supervisor

pytestmark = pytest.mark.timeout(60)


def fast(children: list[tuple[str, ServerProcess]], **options: object) -> Supervisor:
    """A supervisor with a backoff of at most 50 ms (the default waits up to 15 s)."""
    return Supervisor(children, base=0.01, cap=0.05, **options)  # type: ignore[arg-type]


def child(tmp_path: Path, code: str) -> ServerProcess:
    proc = ServerProcess([sys.executable, "-c", code], log_path=tmp_path / "child.log")
    proc.start()
    return proc


def poll_until(supervisor: Supervisor, done: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll the supervisor (as `make run` does, faster) until ``done()`` is true."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "supervisor did not get there in time"
        supervisor.poll()
        time.sleep(0.01)


def test_a_child_that_dies_is_restarted_logged_and_counted(tmp_path: Path) -> None:
    marker = tmp_path / "starts"
    # appends a line per start; the first start dies at once (as a SIGKILLed worker), later ones stay up
    proc = child(tmp_path, f"import pathlib, sys, time\np = pathlib.Path({str(marker)!r})\n"
                           "n = len(p.read_text().splitlines()) if p.exists() else 0\n"
                           "p.open('a').write('start\\n')\n"
                           "sys.exit(9) if n == 0 else time.sleep(60)\n")
    first_pid = proc.pid
    said: list[str] = []
    status = tmp_path / "children.json"
    supervisor = fast([("pricing-worker-1", proc)], status_path=status, say=said.append)
    try:
        poll_until(supervisor, lambda: marker.exists() and marker.read_text().count("start") == 2)
        assert proc.alive()
        assert proc.pid != first_pid
        assert marker.read_text().splitlines() == ["start", "start"]
        assert said[0].startswith(f"pricing-worker-1 (pid {first_pid}) exited with code 9; restarting it in ")
        assert said[1] == f"pricing-worker-1 restarted (pid {proc.pid}, restart 1)"
        assert json.loads(status.read_text()) == {"pricing-worker-1": {
            "pid": proc.pid, "restarts": 1, "last_exit_code": 9, "restarting": False}}
    finally:
        proc.stop()


def test_a_child_that_keeps_crashing_is_given_up_with_its_name_and_last_output(tmp_path: Path) -> None:
    proc = child(tmp_path, "import sys; print('cannot open the queue: connection refused'); sys.exit(3)")
    supervisor = fast([("pricing-worker-2", proc)], max_restarts=2, say=lambda _line: None)
    with pytest.raises(CrashLoop) as info:
        poll_until(supervisor, lambda: False)
    message = str(info.value)
    assert info.value.name == "pricing-worker-2"
    assert message.startswith(
        "pricing-worker-2 keeps crashing: it exited 3 times within 60 s (last exit code 3)")
    assert "cannot open the queue: connection refused" in message
    assert supervisor.restarts == {"pricing-worker-2": 2}
    assert not proc.alive()


def test_a_child_that_stays_up_is_left_alone(tmp_path: Path) -> None:
    proc = child(tmp_path, "import time; time.sleep(60)")
    supervisor = fast([("mes-1", proc)], say=lambda _line: None)
    try:
        for _ in range(20):
            supervisor.poll()
        assert supervisor.restarts == {"mes-1": 0}
        assert proc.alive()
    finally:
        proc.stop()
