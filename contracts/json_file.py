"""The on-disk protocol of the JSON files an operator CLI writes and running processes read.

The key CLI (``python -m gateway.api_keys``) writes the API key store, read by every gateway
process, and the per-partner webhook secrets file, read by every pricing worker. Writer and
readers agree on three things, kept here once: the file is replaced atomically (a reader never
sees half a file), it is mode 0600 (it holds hashes or secrets), and its version is
``(st_mtime_ns, st_ino)`` — a reader re-reads it when that changes, at most one ``stat`` per
``check_interval``, so keys and secrets change without a restart. The document's fields stay
with the store that owns them (``parse``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = ["WatchedJsonFile"]

T = TypeVar("T")
#: ``(st_mtime_ns, st_ino)``: a rewrite (new inode by ``os.replace``) or an edit in place both change it.
Version = tuple[int, int]


def _version(path: Path) -> Version | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_ino)


class WatchedJsonFile(Generic[T]):
    """One JSON document on disk and ``value``, what ``parse`` made of it (``parse({})`` when absent)."""

    def __init__(self, path: str | Path, parse: Callable[[Mapping[str, Any]], T], *,
                 check_interval: float = 1.0) -> None:
        self.path = Path(path)
        self._parse = parse
        self._check_interval = check_interval
        self._next_check = 0.0
        self._version: Version | None = None
        self.value: T = parse({})
        self.reload()

    def reload(self) -> None:
        """Re-read the file now (a missing file is an empty document); raises for a bad one."""
        version = _version(self.path)  # before reading: a rewrite meanwhile is read again next time
        if version is None:
            self.value, self._version = self._parse({}), None
            return
        data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        self.value, self._version = self._parse(data), version

    def maybe_reload(self, on_error: Callable[[Exception], None] | None = None) -> None:
        """At most one ``stat`` per ``check_interval`` seconds; re-read when the file changed.

        Without ``on_error`` a bad file raises (and is tried again at the next check). With it, an
        unreadable or malformed file (``OSError``, ``ValueError``, ``TypeError``) is passed to
        ``on_error``, ``value`` stays the last good one, and that version is not tried again.
        """
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._check_interval
        version = _version(self.path)
        if version == self._version:
            return
        if on_error is None:
            self.reload()
            return
        try:
            self.reload()
        except (OSError, ValueError, TypeError) as exc:
            on_error(exc)
            self._version = version

    def write(self, document: Mapping[str, Any]) -> None:
        """Replace the file atomically (mode 0600, a temporary file beside it), then read it back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=1)
        os.replace(tmp, self.path)
        self.reload()
