"""The partners' webhook receiver during a chaos run: records every delivery, answers 204.

One JSON line per delivery in ``path``: ``id`` (``webhook-id``: the job id), ``status`` and
``price`` of the job as delivered, ``attempt`` (``X-Webhook-Attempt``) and ``t``. The ledger
checks that no job was delivered twice with different results. Signatures are not verified here:
the webhook's own tests do that (``tests/security/``); this receiver only counts outcomes.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devstack.ports import free_port

MAX_BODY = 1 << 20


class WebhookSink:
    """``http://127.0.0.1:port/hook`` in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                sink.record({"t": round(time.time(), 3), "id": self.headers.get("webhook-id", ""),
                             "attempt": self.headers.get("X-Webhook-Attempt", ""),
                             "status": body.get("status"), "price": body.get("price")})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def record(self, line: dict[str, object]) -> None:
        with self._lock, self.path.open("a") as out:
            out.write(json.dumps(line) + "\n")

    def start(self) -> WebhookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
