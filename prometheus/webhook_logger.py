"""A tiny Alertmanager webhook receiver: logs every notification as one JSON line.

    python prometheus/webhook_logger.py [--host 127.0.0.1] [--port 9095]

Alertmanager posts to ``/alerts/<receiver>`` (see alertmanager.yml); each alert becomes a
line ``{"@timestamp", "receiver", "status", "alertname", "severity", "labels", "annotations"}``
on stdout, so the alert drill in docs/observability-stack.md can watch them arrive.
``GET /healthz`` answers 200. Standard library only: it also runs in the compose image.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AlertHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._answer(200 if self.path == "/healthz" else 404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._answer(400)
            return
        receiver = self.path.removeprefix("/alerts/").strip("/") or payload.get("receiver", "")
        for alert in payload.get("alerts", []):
            labels = alert.get("labels", {})
            line = {"@timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "receiver": receiver, "status": alert.get("status"),
                    "alertname": labels.get("alertname"), "severity": labels.get("severity"),
                    "labels": labels, "annotations": alert.get("annotations", {})}
            print(json.dumps(line, sort_keys=True), flush=True)
        self._answer(200)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request access log: the alert lines are the output."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), AlertHandler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
