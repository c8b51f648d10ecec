"""Start the legacy stand-ins as real processes for tests (stopped by PID)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.ports import free_port, wait_for_port
from devstack.process import ServerProcess

ROOT = Path(__file__).parents[2]


@contextmanager
def mes_processes(dsn: str, log_dir: Path, *, count: int = 2, price_delay: float = 0.0,
                  extra: tuple[str, ...] = ()) -> Iterator[list[tuple[str, ServerProcess]]]:
    """``count`` legacy MES instances sharing ``dsn``; yields ``[(base_url, process), …]``."""
    started: list[tuple[str, ServerProcess]] = []
    try:
        for i in range(1, count + 1):
            port = free_port()
            argv = [sys.executable, "-m", "legacy_sim", "mes", "--port", str(port), "--dsn", dsn,
                    "--instance-id", f"mes-{i}", "--price-delay", str(price_delay), *extra]
            proc = ServerProcess(argv,
                                 log_path=log_dir / f"mes-{i}.log")
            proc.start()
            started.append((f"http://127.0.0.1:{port}", proc))
        for url, proc in started:
            try:
                wait_for_port(int(url.rsplit(":", 1)[1]), timeout=30)
            except TimeoutError:
                raise RuntimeError(f"MES did not start:\n{proc.log_tail()}") from None
        yield started
    finally:
        for _, proc in started:
            proc.stop()
