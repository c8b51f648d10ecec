"""The sidecar's access log: one ECS JSON line per proxied request, written through a buffer.

Buffered like the gateway's (``access_log … buffer=64k flush=1s`` in NGINX terms):
the request path pays for one ``json.dumps`` and a list append, a task flushes once
a second. Not a subclass of :class:`gateway.access_log.AccessLog`: its ``write()``
hard-codes ``gateway.*`` fields and its buffer is private, so reusing it meant
depending on its internals (which changed under us once). A public
``append(record)`` there would let both share one writer.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from telemetry.redaction import redact_text


class SidecarAccessLog:
    """Buffered writer of ``sidecar.access`` lines to a file or stdout; ``start()``, ``aclose()``."""

    def __init__(self, *, service_name: str, kind: str, instance: str, path: str | None = None,
                 buffer_bytes: int = 64 * 1024, flush_interval: float = 1.0) -> None:
        self.service_name, self.kind, self.instance = service_name, kind, instance
        self.path = path
        self.buffer_bytes = buffer_bytes
        self.flush_interval = flush_interval
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # held open for the process lifetime; closed by aclose()
        self._stream: IO[str] = Path(path).open("a", encoding="utf-8") if path else sys.stdout  # noqa: SIM115
        self._lines: list[str] = []
        self._size = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the periodic flush (needs a running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            self.flush()

    def write_request(self, *, method: str, path: str, query: str, status: int, duration_s: float,
                      route: str, request_id: str, client_ip: str | None, user_agent: str | None,
                      bytes_out: int | None, upstream_error: str | None = None,
                      trace_id: str | None = None, span_id: str | None = None) -> None:
        """Append one line; ``event.duration`` in nanoseconds, query string redacted."""
        record: dict[str, Any] = {
            "@timestamp": datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds"),
            "log.level": "info", "log.logger": "sidecar.access", "message": f"{method} {path} {status}",
            "service.name": self.service_name, "event.kind": "event", "event.category": "web",
            "event.dataset": "sidecar.access", "event.duration": int(duration_s * 1e9),
            "event.outcome": "success" if status < 500 else "failure",
            "http.request.method": method, "http.request.id": request_id,
            "http.response.status_code": status, "url.path": path, "client.ip": client_ip,
            "sidecar.kind": self.kind, "sidecar.instance": self.instance, "sidecar.route": route,
        }
        if trace_id:
            record["trace.id"], record["span.id"] = trace_id, span_id
        if query:
            record["url.query"] = redact_text(query)
        if user_agent:
            record["user_agent.original"] = user_agent
        if bytes_out is not None:
            record["http.response.body.bytes"] = bytes_out
        if upstream_error:
            record["error.type"] = f"upstream_{upstream_error}"
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.buffer_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines; a closed or full stream never fails a request."""
        if not self._lines:
            return
        lines, self._lines, self._size = self._lines, [], 0
        try:
            self._stream.write("".join(lines))
            self._stream.flush()
        except (OSError, ValueError):
            pass

    async def aclose(self) -> None:
        """Stop the periodic flush, write what is left, close the file."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.flush()
        if self.path:
            self._stream.close()
