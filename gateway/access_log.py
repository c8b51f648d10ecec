"""The gateway's access log: the shared buffered ECS writer plus the ``gateway.*`` fields."""

from __future__ import annotations

from telemetry.access_log import BufferedJsonLog, http_access_record


class AccessLog(BufferedJsonLog):
    """One ``gateway.access`` line per request (see :mod:`telemetry.access_log`)."""

    def __init__(self, *, service_name: str, path: str | None = None, buffer_bytes: int = 64 * 1024,
                 flush_interval: float = 1.0) -> None:
        super().__init__(path=path, buffer_bytes=buffer_bytes, flush_interval=flush_interval)
        self.service_name = service_name

    def write(self, *, method: str, path: str, query: str, status: int, duration_s: float, listener: str,
              route: str, cluster: str | None, request_id: str, client_ip: str | None,
              user_agent: str | None, bytes_out: int | None, upstream: str | None = None,
              trace_id: str | None = None, span_id: str | None = None) -> None:
        """Append one access-log line (ECS names; ``event.duration`` in nanoseconds)."""
        record = http_access_record(
            timestamp=self.timestamp(), service_name=self.service_name, dataset="gateway.access",
            method=method, path=path, query=query, status=status, duration_s=duration_s,
            request_id=request_id, client_ip=client_ip, user_agent=user_agent, bytes_out=bytes_out,
            trace_id=trace_id, span_id=span_id)
        record["gateway.listener"] = listener
        record["gateway.route"] = route
        if cluster:
            record["gateway.cluster"] = cluster
        if upstream:
            record["gateway.upstream.address"] = upstream
        self.append(record)
