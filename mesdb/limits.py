"""How long the kit may make the MES wait: ``lock_timeout`` with bounded retries for every DDL step,
``statement_timeout`` for every batch. Set once per run (the CLI's ``--lock-timeout``,
``--lock-attempts``, ``--statement-timeout``, or ``$MESDB_LOCK_TIMEOUT`` …), read where needed.

Why: a DDL statement waiting for its lock (``ALTER TABLE``, ``CREATE TRIGGER``, ``LOCK``) queues
every later query on that table behind itself — one long MES transaction would then stop all MES
traffic for as long as it lasts. With a short ``lock_timeout`` the DDL gives up instead, the queued
queries proceed, and the step is tried again after a pause (GitLab's ``with_lock_retries`` does the
same for its migrations). docs/mes-data.md ("Timeouts").
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from dataclasses import dataclass

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min)?\s*$")
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "min": 60_000.0, None: 1.0}


def duration_ms(text: str) -> int:
    """``"500ms"``, ``"2s"``, ``"1min"`` or a bare number of milliseconds → milliseconds (> 0)."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"not a duration (e.g. 500ms, 2s, 1min): {text!r}")
    return max(1, round(float(match.group(1)) * _UNIT_MS[match.group(2)]))


@dataclass(frozen=True, slots=True)
class Limits:
    """The waits the kit allows itself."""

    #: the longest one DDL statement waits for its lock (and so the longest MES queries queue behind it)
    lock_timeout_ms: int = 1000
    #: how often a DDL step that timed out on its lock is tried before the kit gives up
    lock_attempts: int = 10
    #: the first pause between two attempts (doubling, capped at 10 s, with jitter)
    retry_pause_s: float = 0.5
    #: the longest one batch of the split/archiver/unsplit may run (rolled back past it)
    statement_timeout_ms: int = 60_000

    def __post_init__(self) -> None:
        if min(self.lock_timeout_ms, self.lock_attempts, self.statement_timeout_ms) < 1:
            raise ValueError(f"limits must be positive: {self}")

    @classmethod
    def from_environment(cls) -> Limits:
        """The defaults, overridden by ``$MESDB_LOCK_TIMEOUT``, ``$MESDB_LOCK_ATTEMPTS`` and
        ``$MESDB_STATEMENT_TIMEOUT``."""
        env = os.environ
        return cls(
            lock_timeout_ms=duration_ms(env.get("MESDB_LOCK_TIMEOUT", "1s")),
            lock_attempts=int(env.get("MESDB_LOCK_ATTEMPTS", "10")),
            statement_timeout_ms=duration_ms(env.get("MESDB_STATEMENT_TIMEOUT", "60s")),
        )


_DEFAULT = Limits()
_CURRENT: ContextVar[Limits | None] = ContextVar("mesdb_limits", default=None)


def current() -> Limits:
    """The limits of this run (the defaults unless :func:`use` set others)."""
    return _CURRENT.get() or _DEFAULT


def use(limits: Limits) -> None:
    """Set the limits of this run (the CLI does, once, before it connects)."""
    _CURRENT.set(limits)
