"""``make run`` for the tests: ``devstack.platform.Platform`` with every port moved by one offset.

The same ``Platform.start()`` and ``Platform.banner()`` that `make run` runs, with its state in a
temporary run dir (never ``.run/``) and every port shifted by an offset whose ports are all free,
so a developer's own `make run` on the default ports can stay up. What the README says about
the default ports is checked by moving them in the README's text the same way
(``devstack.moved_ports.move_ports``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.moved_ports import move_ports
from devstack.platform import Platform, Ports, free_offset

ROOT = Path(__file__).resolve().parents[2]
@dataclass(frozen=True)
class MakeRun:
    """A running platform: its banner, run dir, the environment of a user's shell, the port map."""

    banner: str
    root: Path
    env: dict[str, str]
    moved: dict[int, int]  # default port → the one in use

    def moved_text(self, text: str) -> str:
        """``text`` (README commands, URLs) with the default ports replaced by this platform's."""
        return move_ports(text, self.moved)


@contextmanager
def make_run(root: Path, *, replica: bool = False) -> Iterator[MakeRun]:
    """Start the platform as ``make run`` does (ports moved; ``replica``: as ``MES_REPLICA=1 make run``),
    yield, stop every process by PID."""
    ports = Ports().shifted(free_offset())
    platform = Platform(root=root, ports=ports, replica=replica)
    try:
        platform.start()
        env = {**os.environ, "GATEWAY_API_KEY_STORE": str(root / "api-keys.json")}
        yield MakeRun(banner=platform.banner(), root=root, env=env, moved=ports.moved_from(Ports()))
    finally:
        platform.stop()
