"""The sidecar's access log: the shared buffered ECS writer plus the ``sidecar.*`` fields."""

from __future__ import annotations

from telemetry.access_log import BufferedJsonLog, http_access_record


class SidecarAccessLog(BufferedJsonLog):
    """One ``sidecar.access`` line per proxied request; ``start()``, ``aclose()``."""

    def __init__(self, *, service_name: str, kind: str, instance: str, path: str | None = None,
                 buffer_bytes: int = 64 * 1024, flush_interval: float = 1.0) -> None:
        super().__init__(path=path, buffer_bytes=buffer_bytes, flush_interval=flush_interval)
        self.service_name, self.kind, self.instance = service_name, kind, instance

    def write_request(self, *, method: str, path: str, query: str, status: int, duration_s: float,
                      route: str, request_id: str, client_ip: str | None, user_agent: str | None,
                      bytes_out: int | None, upstream_error: str | None = None,
                      trace_id: str | None = None, span_id: str | None = None) -> None:
        """Append one line; ``event.duration`` in nanoseconds, query string redacted."""
        record = http_access_record(
            timestamp=self.timestamp(), service_name=self.service_name, dataset="sidecar.access",
            method=method, path=path, query=query, status=status, duration_s=duration_s,
            request_id=request_id, client_ip=client_ip, user_agent=user_agent, bytes_out=bytes_out,
            trace_id=trace_id, span_id=span_id)
        record["sidecar.kind"] = self.kind
        record["sidecar.instance"] = self.instance
        record["sidecar.route"] = route
        if upstream_error:
            record["error.type"] = f"upstream_{upstream_error}"
        self.append(record)
