"""The buffered access-log writer: every line, in order, written off the event loop."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from telemetry.access_log import BufferedJsonLog


async def test_lines_arrive_in_order_across_flushes_and_close(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = BufferedJsonLog(path=str(path), buffer_bytes=512)  # small: many flushes
    log.start()
    for i in range(1000):
        log.append({"n": i, "message": "GET /orders 200"})
    await log.aclose()
    numbers = [json.loads(line)["n"] for line in path.read_text().splitlines()]
    assert numbers == list(range(1000))


class _RecordingStream:
    def __init__(self) -> None:
        self.writers: set[str] = set()
        self.data = b""

    def write(self, chunk: bytes) -> int:
        self.writers.add(threading.current_thread().name)
        self.data += chunk
        return len(chunk)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


async def test_the_event_loop_never_does_the_write_syscall() -> None:
    stream = _RecordingStream()
    log = BufferedJsonLog(stream=stream)  # type: ignore[arg-type]
    log.append({"message": "one"})
    log.flush()
    log.append({"message": "two"})
    await log.aclose()
    assert stream.writers == {"access-log-writer"}
    assert [json.loads(line)["message"] for line in stream.data.splitlines()] == ["one", "two"]


async def test_a_failing_stream_never_fails_the_caller(tmp_path: Path) -> None:
    closed = (tmp_path / "gone.log").open("ab")
    closed.close()  # writes now raise ValueError (closed file)
    log = BufferedJsonLog(stream=closed)
    log.append({"message": "lost, quietly"})
    log.flush()
    await log.aclose()
