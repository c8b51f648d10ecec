"""Generates grafana/dashboards/*.json from plain dicts. Run it after editing, check in the output:

    .venv/bin/python grafana/build_dashboards.py          # write the JSON files
    .venv/bin/python grafana/build_dashboards.py --check  # exit 1 if a checked-in file differs

It also writes the same dashboards as Prometheus console pages, prometheus/consoles/*.html
(grafana/build_consoles.py): what `make run` shows without a Grafana.

Only metrics that exist (docs/metrics-gateway.md, docs/sidecar.md, docs/pricing.md,
legacy_sim/metrics.py, legacy_adapters/metrics.py); tests/stack checks that every query parses
and every metric it uses is scraped for real from the running platform.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
ELASTICSEARCH = {"type": "elasticsearch", "uid": "elasticsearch"}
RATE = "$__rate_interval"
KIBANA_TIME = "_g=(time:(from:'${__from:date:iso}',to:'${__to:date:iso}'))"


# ---------------------------------------------------------------- links to traces and logs


def kibana_link(title: str, kql: str) -> dict[str, Any]:
    """A link to Kibana Discover on the mes-edge-logs-* data view, for the dashboard's time range."""
    query = kql.replace("'", "!'")  # rison escaping
    url = (
        f"${{kibana_url}}/app/discover#/?{KIBANA_TIME}"
        f"&_a=(dataSource:(dataViewId:mes-edge-logs,type:dataView),"
        f"query:(language:kuery,query:'{query}'),sort:!(!('@timestamp',asc)))"
    )
    return {"title": title, "url": url, "targetBlank": True}


def jaeger_link(
    title: str, service: str, *, error: bool = False, min_duration: str | None = None
) -> dict[str, Any]:
    """A link to the Jaeger UI's trace search for ``service`` in the dashboard's time range."""
    url = f"${{jaeger_url}}/search?service={service}&start=${{__from}}000&end=${{__to}}000&limit=50"
    if error:
        url += "&tags=%7B%22error%22%3A%22true%22%7D"
    if min_duration:
        url += f"&minDuration={min_duration}"
    return {"title": title, "url": url, "targetBlank": True}


# ---------------------------------------------------------------- panels


def target(expr: str, legend: str = "", ref: str = "A") -> dict[str, Any]:
    return {"refId": ref, "datasource": PROMETHEUS, "expr": expr, "legendFormat": legend, "range": True}


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    links: list[dict[str, Any]] | None = None,
    field_links: list[dict[str, Any]] | None = None,
    **options: Any,
) -> dict[str, Any]:
    refs = "ABCDEFGH"
    for i, t in enumerate(targets):
        t["refId"] = refs[i]
    defaults: dict[str, Any] = {"unit": unit}
    if field_links:
        defaults["links"] = field_links
    if "thresholds" in options:
        defaults["thresholds"] = options.pop("thresholds")
    if "min" in options:
        defaults["min"] = options.pop("min")
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "links": links or [],
        "gridPos": {"w": width, "h": height},
    }


def timeseries(title: str, description: str, targets: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    kw.setdefault("legend", {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]})
    kw.setdefault("tooltip", {"mode": "multi", "sort": "desc"})
    return panel("timeseries", title, description, targets, **kw)


def stat(title: str, description: str, targets: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    kw.setdefault("width", 6)
    kw.setdefault("height", 5)
    kw.setdefault("reduceOptions", {"calcs": ["lastNotNull"], "fields": "", "values": False})
    kw.setdefault("colorMode", "background")
    return panel("stat", title, description, targets, **kw)


def state_timeline(title: str, description: str, targets: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    kw.setdefault("showValue", "never")
    return panel("state-timeline", title, description, targets, **kw)


def logs(title: str, description: str, lucene: str, **kw: Any) -> dict[str, Any]:
    """Log lines from Elasticsearch; the datasource turns `trace.id` into a Jaeger link."""
    p = panel(
        "logs",
        title,
        description,
        [],
        width=24,
        height=10,
        showTime=True,
        sortOrder="Descending",
        wrapLogMessage=True,
        enableLogDetails=True,
        **kw,
    )
    p["datasource"] = ELASTICSEARCH
    p["targets"] = [
        {
            "refId": "A",
            "datasource": ELASTICSEARCH,
            "query": lucene,
            "timeField": "@timestamp",
            "metrics": [{"id": "1", "type": "logs"}],
            "bucketAggs": [],
        }
    ]
    return p


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Place panels left to right, wrapping at 24 columns; give each a stable id."""
    x = y = line_height = 0
    for pid, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24 or p["type"] == "row":
            x, y, line_height = 0, y + line_height, 0
        p["id"] = pid
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        line_height = max(line_height, h)
        if p["type"] == "row":
            x, y, line_height = 0, y + h, 0
    return panels


# ---------------------------------------------------------------- dashboard shell


def query_variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": PROMETHEUS,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def textbox(name: str, label: str, value: str) -> dict[str, Any]:
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "query": value,
        "current": {"text": value, "value": value},
        "hide": 2,
    }


LINK_VARIABLES = [
    textbox("jaeger_url", "Jaeger UI", "http://127.0.0.1:16686"),
    textbox("kibana_url", "Kibana", "http://127.0.0.1:5601"),
]


def dashboard(
    uid: str, title: str, description: str, panels: list[dict[str, Any]], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["mes-edge"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [*variables, *LINK_VARIABLES]},
        "annotations": {"list": []},
        "links": [
            {"title": "mes-edge dashboards", "type": "dashboards", "tags": ["mes-edge"], "asDropdown": True}
        ],
        "panels": layout(panels),
    }


# ---------------------------------------------------------------- gateway RED


def gateway() -> dict[str, Any]:
    sel = 'listener=~"$listener", route=~"$route"'
    by = "listener, route"
    route_logs = kibana_link(
        "Access log of ${__field.labels.listener}/${__field.labels.route} (Kibana)",
        'event.dataset:"gateway.access" and gateway.route:"${__field.labels.route}"',
    )
    panels = [
        row("Requests (RED by listener and route)"),
        timeseries(
            "Requests per second",
            "Requests answered, by listener and route.",
            [
                target(
                    f"sum by ({by}) (rate(gateway_requests_total{{{sel}}}[{RATE}]))", "{{listener}} {{route}}"
                )
            ],
            unit="reqps",
            field_links=[route_logs],
        ),
        timeseries(
            "5xx ratio",
            "Share of responses with a 5xx status, by listener and route. The partner "
            "API SLO allows 0.5 % over 30 days.",
            [
                target(
                    f'sum by ({by}) (rate(gateway_requests_total{{{sel}, status_class="5xx"}}[{RATE}]))'
                    f" / sum by ({by}) (rate(gateway_requests_total{{{sel}}}[{RATE}]))",
                    "{{listener}} {{route}}",
                )
            ],
            unit="percentunit",
            min=0,
            links=[
                kibana_link(
                    "5xx access-log lines (Kibana)",
                    'event.dataset:"gateway.access" and http.response.status_code >= 500',
                ),
                jaeger_link("Error traces of the gateway (Jaeger)", "gateway", error=True),
            ],
            field_links=[route_logs],
        ),
        timeseries(
            "Responses by status class",
            "All listeners and routes selected above.",
            [
                target(
                    f"sum by (status_class) (rate(gateway_requests_total{{{sel}}}[{RATE}]))",
                    "{{status_class}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Latency p50 / p95 / p99",
            "Request received to response finished, per route. The price "
            "route is slow by design (legacy pricing); the gateway's buckets stop at 30 s.",
            [
                target(
                    f"histogram_quantile({q}, sum by ({by}, le) "
                    f"(rate(gateway_request_duration_seconds_bucket{{{sel}}}[{RATE}])))",
                    f"p{int(q * 100)} {{{{listener}}}} {{{{route}}}}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
            links=[jaeger_link("Slow traces, > 2.5 s (Jaeger)", "gateway", min_duration="2.5s")],
            field_links=[route_logs],
        ),
        timeseries(
            "Requests in flight",
            "Requests being handled now, all gateway workers summed.",
            [target('sum by (listener) (gateway_requests_in_flight{listener=~"$listener"})', "{{listener}}")],
        ),
        timeseries(
            "Rejected before routing",
            "Bodies refused (too large / too slow) and malformed requests "
            "answered by the protocol-error handler (never in the access log).",
            [
                target(
                    f"sum by (listener, reason) (rate(gateway_request_body_rejected_total"
                    f'{{listener=~"$listener"}}[{RATE}]))',
                    "body {{listener}} {{reason}}",
                ),
                target(
                    f"sum by (listener, status) (rate(gateway_protocol_errors_total"
                    f'{{listener=~"$listener"}}[{RATE}]))',
                    "protocol {{listener}} {{status}}",
                ),
            ],
            unit="reqps",
        ),
        row("Partners by tier (API keys and rate limits)"),
        timeseries(
            "Partner requests by tier",
            "Rate-limit decisions (every request of a rate-limited route) by partner tier: allowed "
            "or limited (429). Tiers, never partner ids, are labels; the partner is in the logs.",
            [
                target(
                    f"sum by (tier, decision) (rate(gateway_ratelimit_decisions_total"
                    f'{{tier=~"$tier", route=~"$route"}}[{RATE}]))',
                    "{{tier}} {{decision}}",
                )
            ],
            unit="reqps",
            width=8,
            field_links=[
                kibana_link(
                    "429 answers (Kibana)",
                    'event.dataset:"gateway.access" and http.response.status_code:429',
                )
            ],
        ),
        timeseries(
            "Limited share by tier and route",
            "Share of a tier's requests answered 429 on each route. PartnerTierRateLimited: "
            "over 10 % for 15 minutes.",
            [
                target(
                    f'sum by (tier, route) (rate(gateway_ratelimit_decisions_total{{tier=~"$tier", '
                    f'route=~"$route", decision="limited"}}[{RATE}]))'
                    f' / sum by (tier, route) (rate(gateway_ratelimit_decisions_total{{tier=~"$tier", '
                    f'route=~"$route"}}[{RATE}]))',
                    "{{tier}} {{route}}",
                ),
                target("vector(0.1)", "alert threshold"),
            ],
            unit="percentunit",
            min=0,
            width=8,
            field_links=[
                kibana_link(
                    "429 answers on ${__field.labels.route} (Kibana)",
                    'event.dataset:"gateway.access" and gateway.route:"${__field.labels.route}" '
                    "and http.response.status_code:429",
                )
            ],
        ),
        timeseries(
            "Refused by API-key auth",
            "401 missing / invalid / revoked key, 403 key without the route's scope, per listener.",
            [
                target(
                    f"sum by (listener, reason) (rate(gateway_auth_failures_total"
                    f'{{listener=~"$listener"}}[{RATE}]))',
                    "{{listener}} {{reason}}",
                )
            ],
            unit="reqps",
            width=8,
            links=[kibana_link("Auth refusals with the key id (Kibana)", 'event.action:"auth-failure"')],
        ),
        timeseries(
            "Partner answers refused by the scope filter (502)",
            "MES answers a partner could not be given: foreign_item / foreign_create (the MES "
            "ignored the partner filter: GatewayPartnerScopeViolation pages), too_large, unreadable.",
            [target(f"sum by (reason) (increase(gateway_partner_scope_refusals_total[{RATE}]))",
                    "{{reason}}")],
            width=8,
            links=[kibana_link("Scope refusals (Kibana)", 'event.action:"partner-scope-violation" or '
                                                          'event.action:"partner-scope-refused"')],
        ),
        timeseries(
            "Validation failures by operation",
            "Partner requests refused (400/404/422) because they violate the partner API document "
            "(gateway/openapi/partner-v1.yaml), by operationId; filtered by tier. A jump on one "
            "operation after a partner's release is their bug — the Kibana link lists the partner "
            "and the violations (never the values).",
            [target(f"sum by (operation) (rate(gateway_partner_validation_failures_total"
                    f'{{tier=~"$tier"}}[{RATE}]))', "{{operation}}")],
            unit="reqps",
            width=8,
            links=[kibana_link("Validation failures with partner and violations (Kibana)",
                               'event.action:"request-invalid"')],
        ),
        row("Partner API availability SLO (99.5 %)"),
        timeseries(
            "Error ratio by burn-rate window",
            "Recording rules of prometheus/rules/partner-api-slo.yml. "
            "Pages when both windows of a pair exceed 14.4x (1h & 5m) or 6x (6h & 30m) the budget.",
            [target(f"listener:gateway_requests_errors:ratio_rate{w}", w) for w in ("5m", "1h", "6h")]
            + [
                target("vector(14.4 * 0.005)", "14.4x budget (page)"),
                target("vector(6 * 0.005)", "6x budget (page)"),
            ],
            unit="percentunit",
            width=16,
            links=[jaeger_link("Error traces of the gateway (Jaeger)", "gateway", error=True)],
        ),
        stat(
            "Error budget left (30 days)",
            "1 - (5xx / all partner requests over 30 days) / 0.5 %.",
            [
                target(
                    # no partner request yet: the whole budget is left (not 0/0 = NaN)
                    "(1 - ((sum(increase("
                    'gateway_requests_total{listener="external", status_class="5xx"}[30d]))'
                    " or vector(0))"
                    ' / (sum(increase(gateway_requests_total{listener="external"}[30d])) > 0)) / 0.005)'
                    " or vector(1)"
                )
            ],
            unit="percentunit",
            width=8,
            height=8,
            thresholds={
                "mode": "absolute",
                "steps": [
                    {"color": "red", "value": None},
                    {"color": "orange", "value": 0.25},
                    {"color": "green", "value": 0.5},
                ],
            },
        ),
        row("Configuration"),
        stat(
            "Since the last config load",
            "A reload that was rejected leaves this growing.",
            [target("time() - max(gateway_config_last_reload_success_timestamp_seconds)")],
            unit="s",
            colorMode="none",
        ),
        row("Logs"),
        logs(
            "Gateway 5xx answers",
            "Access-log lines with a 5xx; expand a line for trace.id (a link to Jaeger) "
            "and http.request.id (search it in Kibana or with python -m telemetry order-journey).",
            'event.dataset:"gateway.access" AND http.response.status_code:[500 TO 599]',
        ),
    ]
    variables = [
        query_variable("listener", "Listener", "label_values(gateway_requests_total, listener)"),
        query_variable(
            "route", "Route", 'label_values(gateway_requests_total{listener=~"$listener"}, route)'
        ),
        query_variable("tier", "Partner tier", "label_values(gateway_ratelimit_decisions_total, tier)"),
    ]
    return dashboard(
        "mes-edge-gateway",
        "mes-edge / Gateway RED",
        "Rate, errors and duration of the gateway by listener and route, partner requests by tier; "
        "partner API SLO.",
        panels,
        variables,
    )


# ---------------------------------------------------------------- upstream health


def upstreams() -> dict[str, Any]:
    c = 'cluster=~"$cluster"'
    failed = 'status_class=~"5xx|connect_error|timeout|reset"'
    panels = [
        row("Clusters and endpoints"),
        stat(
            "Eligible endpoints",
            "Healthy and not ejected. 0 = every request to the cluster gets 503.",
            [target(f"gateway_upstream_healthy_endpoints{{{c}}}", "{{cluster}}")],
            width=8,
            thresholds={
                "mode": "absolute",
                "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
            },
        ),
        state_timeline(
            "Endpoint passes health checks",
            "1 healthy, 0 failing active health checks.",
            [target(f"gateway_upstream_endpoint_healthy{{{c}}}", "{{cluster}} {{endpoint}}")],
            width=8,
        ),
        state_timeline(
            "Endpoint ejected",
            "1 while passive outlier detection keeps it out of rotation.",
            [target(f"gateway_upstream_endpoint_ejected{{{c}}}", "{{cluster}} {{endpoint}}")],
            width=8,
        ),
        timeseries(
            "Attempts by endpoint and outcome",
            "Each retry counts; outcome is the status class or connect_error / timeout / reset.",
            [
                target(
                    f"sum by (cluster, endpoint, status_class) "
                    f"(rate(gateway_upstream_requests_total{{{c}}}[{RATE}]))",
                    "{{endpoint}} {{status_class}}",
                )
            ],
            unit="reqps",
            links=[
                kibana_link(
                    "Gateway answers from this cluster (Kibana)",
                    'event.dataset:"gateway.access" and event.outcome:"failure"',
                )
            ],
        ),
        timeseries(
            "Failed attempts ratio",
            "Alert GatewayUpstreamErrorRateHigh fires above 5 %.",
            [
                target(
                    f"sum by (cluster) (rate(gateway_upstream_requests_total{{{c}, {failed}}}[{RATE}]))"
                    f" / sum by (cluster) (rate(gateway_upstream_requests_total{{{c}}}[{RATE}]))",
                    "{{cluster}}",
                )
            ],
            unit="percentunit",
            min=0,
            links=[jaeger_link("Error traces of the gateway (Jaeger)", "gateway", error=True)],
        ),
        timeseries(
            "Attempt latency p95",
            "Sending to the endpoint's response headers, per attempt.",
            [
                target(
                    f"histogram_quantile(0.95, sum by (cluster, le) "
                    f"(rate(gateway_upstream_request_duration_seconds_bucket{{{c}}}[{RATE}])))",
                    "{{cluster}}",
                )
            ],
            unit="s",
            links=[jaeger_link("Slow traces, > 2.5 s (Jaeger)", "gateway", min_duration="2.5s")],
        ),
        timeseries(
            "Health check failures",
            "Active health check probes that failed.",
            [
                target(
                    f"sum by (cluster, endpoint) (rate(gateway_health_checks_total{{{c}, "
                    f'outcome="failure"}}[{RATE}]))',
                    "{{endpoint}}",
                )
            ],
            unit="reqps",
        ),
        row("Retries, ejections, circuit breaker"),
        timeseries(
            "Retries by reason",
            "Retries sent by reason; of those, retries of attempts the endpoint never saw (outside the "
            "budget: an endpoint going away); and retries the budget refused.",
            [
                target(
                    f"sum by (cluster, reason) (rate(gateway_upstream_retries_total{{{c}}}[{RATE}]))",
                    "{{cluster}} {{reason}}",
                ),
                target(
                    f"sum by (cluster) (rate(gateway_upstream_retries_unsent_total{{{c}}}[{RATE}]))",
                    "{{cluster}} never sent (outside the budget)",
                ),
                target(
                    f"sum by (cluster) (rate(gateway_upstream_retry_budget_exhausted_total{{{c}}}[{RATE}]))",
                    "{{cluster}} budget exhausted",
                ),
            ],
            unit="reqps",
            width=8,
        ),
        timeseries(
            "Ejections",
            "Outlier ejections per endpoint.",
            [
                target(
                    f"sum by (cluster, endpoint) (increase(gateway_upstream_ejections_total{{{c}}}[{RATE}]))",
                    "{{endpoint}}",
                )
            ],
            width=8,
        ),
        timeseries(
            "Circuit breaker",
            "Admitted (active) and queued (pending) requests; rejections answered 503.",
            [
                target(f"sum by (cluster) (gateway_upstream_active_requests{{{c}}})", "{{cluster}} active"),
                target(f"sum by (cluster) (gateway_upstream_pending_requests{{{c}}})", "{{cluster}} pending"),
                target(
                    f"sum by (cluster, reason) "
                    f"(rate(gateway_circuit_breaker_rejections_total{{{c}}}[{RATE}]))",
                    "{{cluster}} rejected {{reason}}",
                ),
            ],
            width=8,
        ),
    ]
    variables = [
        query_variable("cluster", "Cluster", "label_values(gateway_upstream_healthy_endpoints, cluster)")
    ]
    return dashboard(
        "mes-edge-upstreams",
        "mes-edge / Upstream health",
        "Clusters and endpoints behind the gateway: health, ejections, failures, retries, breaker.",
        panels,
        variables,
    )


# ---------------------------------------------------------------- order pipeline


def orders() -> dict[str, Any]:
    journey = kibana_link(
        "Order events (Kibana; add order.id:<id> for one order's journey)", "event.action:* and order.id:*"
    )
    panels = [
        row("Where the orders are"),
        timeseries(
            "Orders per active status",
            "From the MES database (business probe of the sidecar "
            "with --dsn); max over probing sidecars, never sum.",
            [target('max by (status) (orders_by_status{status!~"CLOSED|CANCELLED"})', "{{status}}")],
            links=[journey],
        ),
        timeseries(
            "Oldest order age per status",
            "Since the last status change of the oldest order in each "
            "active status: the stuck-order signal. Dashed: the OrdersStuck threshold.",
            [
                target("max by (status) (orders_oldest_age_seconds)", "{{status}}"),
                target("orders:oldest_age_threshold_seconds", "threshold {{status}}"),
            ],
            unit="s",
            links=[journey],
            field_links=[
                kibana_link(
                    "Events of ${__field.labels.status} orders (Kibana)",
                    'order.status.new:"${__field.labels.status}"',
                )
            ],
        ),
        timeseries(
            "New orders per minute",
            "Created in the last 60 s, now and one week ago.",
            [
                target("max(orders_new_per_minute)", "now"),
                target("max(orders_new_per_minute offset 1w)", "a week ago"),
            ],
            width=16,
        ),
        stat(
            "Closed / cancelled",
            "Terminal statuses, counted every --terminal-count-interval.",
            [target('max by (status) (orders_by_status{status=~"CLOSED|CANCELLED"})', "{{status}}")],
            width=8,
            height=8,
            colorMode="none",
        ),
        row("Intake and the CRM queue"),
        timeseries(
            "Orders created in the MES by source",
            "legacy_sim stand-ins only (the real MES exports "
            "no metrics): b2b via the API, crm via the queue.",
            [target(f"sum by (source) (rate(orders_created_total[{RATE}])) * 60", "{{source}}")],
            unit="short",
        ),
        timeseries(
            "CRM → MES relay deliveries by outcome",
            "The sidecar's relay of crm:orders into the MES (per minute); dead letters "
            "= moved to crm:orders:dead (alert CrmQueueDeadLetters). CRM writes for comparison.",
            [
                target(
                    f"sum by (outcome) (rate(sidecar_relay_deliveries_total[{RATE}])) * 60",
                    "delivered {{outcome}}",
                ),
                target(
                    f"sum by (outcome) (rate(orders_crm_queue_writes_total[{RATE}])) * 60",
                    "CRM write {{outcome}}",
                ),
            ],
            links=[
                kibana_link("Relay events (Kibana)", 'event.action:(crm-relay-* or "crm-queue-write")')
            ],
        ),
        timeseries(
            "CRM → MES relay backpressure",
            "Deliveries in flight against the adaptive limit, entries waiting (lag + pending) and "
            "whether the relay paused because the MES is slow or down (alert CrmRelayPaused).",
            [
                target("sum by (legacy_instance) (sidecar_relay_in_flight)", "in flight {{legacy_instance}}"),
                target("sum by (legacy_instance) (sidecar_relay_limit)", "limit {{legacy_instance}}", "B"),
                target("max(sidecar_relay_queue_lag) + max(sidecar_relay_queue_pending)", "waiting", "C"),
                target("max by (legacy_instance) (sidecar_relay_paused)", "paused {{legacy_instance}}", "D"),
            ],
        ),
        timeseries(
            "Status changes per minute",
            "Committed transitions in the MES (legacy_sim stand-ins).",
            [target(f"sum by (to) (rate(orders_status_changes_total[{RATE}])) * 60", "→ {{to}}")],
        ),
        timeseries(
            "Price calculations in progress",
            "Rows of price_calculations still running, per MES "
            "instance (the legacy pricing, not the future pricing pool).",
            [target("max by (legacy_instance) (pricing_calculations_in_progress)", "{{legacy_instance}}")],
        ),
        row("Is the probe seeing the database?"),
        timeseries(
            "Seconds since the last successful probe",
            "Alert SidecarProbeStale above 120 s (900 s for terminal_orders).",
            [
                target(
                    "time() - sidecar_probe_last_success_timestamp_seconds", "{{legacy_instance}} {{probe}}"
                )
            ],
            unit="s",
        ),
        timeseries(
            "Probe errors",
            "Failed probe steps (database down, statement timeout).",
            [
                target(
                    f"sum by (legacy_instance, probe) (rate(sidecar_probe_errors_total[{RATE}]))",
                    "{{legacy_instance}} {{probe}}",
                )
            ],
            unit="reqps",
        ),
    ]
    return dashboard(
        "mes-edge-orders",
        "mes-edge / Order pipeline",
        "Orders per status, stuck orders, intake, the CRM queue; from the sidecar's probes.",
        panels,
        [],
    )


# ---------------------------------------------------------------- sidecars


def sidecars() -> dict[str, Any]:
    s = 'legacy_instance=~"$legacy_instance"'
    by = "legacy_instance, route"
    panels = [
        row("Traffic to each legacy instance"),
        timeseries(
            "Requests per second",
            "By legacy instance and route template.",
            [
                target(
                    f"sum by ({by}) (rate(sidecar_requests_total{{{s}}}[{RATE}]))",
                    "{{legacy_instance}} {{route}}",
                )
            ],
            unit="reqps",
            field_links=[
                kibana_link(
                    "Access log of ${__field.labels.legacy_instance} (Kibana)",
                    'event.dataset:"sidecar.access" and sidecar.instance:"${__field.labels.legacy_instance}"',
                )
            ],
        ),
        timeseries(
            "5xx ratio",
            "Answers with 5xx (the legacy's own, or the sidecar's 502/504).",
            [
                target(
                    # a route without any 5xx reads 0, not "no data"
                    f'(sum by ({by}) (rate(sidecar_requests_total{{{s}, status_class="5xx"}}[{RATE}]))'
                    f" or 0 * sum by ({by}) (rate(sidecar_requests_total{{{s}}}[{RATE}])))"
                    f" / sum by ({by}) (rate(sidecar_requests_total{{{s}}}[{RATE}]))",
                    "{{legacy_instance}} {{route}}",
                )
            ],
            unit="percentunit",
            min=0,
            links=[jaeger_link("Error traces of sidecar-mes (Jaeger)", "sidecar-mes", error=True)],
        ),
        timeseries(
            "Latency p95",
            "Request received to response finished. Price calculations take minutes.",
            [
                target(
                    f"histogram_quantile(0.95, sum by ({by}, le) "
                    f"(rate(sidecar_request_duration_seconds_bucket{{{s}}}[{RATE}])))",
                    "{{legacy_instance}} {{route}}",
                )
            ],
            unit="s",
            links=[jaeger_link("Slow traces, > 2.5 s (Jaeger)", "sidecar-mes", min_duration="2.5s")],
        ),
        timeseries(
            "Calls to the legacy that failed",
            "connect_error → 502, timeout → 504, reset.",
            [
                target(
                    f"sum by (legacy_instance, reason) (rate(sidecar_upstream_errors_total{{{s}}}[{RATE}]))",
                    "{{legacy_instance}} {{reason}}",
                )
            ],
            unit="reqps",
            links=[
                kibana_link(
                    "Sidecar upstream errors (Kibana)", 'event.dataset:"sidecar.access" and error.type:*'
                )
            ],
        ),
        timeseries(
            "In flight",
            "Requests being handled by each sidecar.",
            [target(f"sum by (legacy_instance) (sidecar_requests_in_flight{{{s}}})", "{{legacy_instance}}")],
            width=8,
        ),
        row("Order-change events (Redis)"),
        timeseries(
            "Events published",
            "order.created / order.status_changed, by source (proxy or db poll).",
            [
                target(
                    f"sum by (legacy_instance, type, source) "
                    f"(rate(sidecar_events_published_total{{{s}}}[{RATE}]))",
                    "{{legacy_instance}} {{type}} {{source}}",
                )
            ],
            unit="reqps",
            width=8,
        ),
        timeseries(
            "Duplicates, publish errors, drops",
            "Duplicates are normal (proxy and poller see the "
            "same change); drops mean lost cache invalidations.",
            [
                target(
                    f"sum by (legacy_instance) (rate(sidecar_events_duplicates_total{{{s}}}[{RATE}]))",
                    "{{legacy_instance}} duplicate",
                ),
                target(
                    f"sum by (legacy_instance) (rate(sidecar_events_publish_errors_total{{{s}}}[{RATE}]))",
                    "{{legacy_instance}} publish error",
                ),
                target(
                    f"sum by (legacy_instance) (rate(sidecar_events_dropped_total{{{s}}}[{RATE}]))",
                    "{{legacy_instance}} dropped",
                ),
            ],
            unit="reqps",
            width=8,
        ),
        timeseries(
            "Events queued",
            "Waiting in the bounded in-memory queue (10,000) for Redis.",
            [target(f"sum by (legacy_instance) (sidecar_events_queued{{{s}}})", "{{legacy_instance}}")],
            width=8,
        ),
        row("Business probes"),
        timeseries(
            "Probe duration p95",
            "One probe query against the MES database.",
            [
                target(
                    f"histogram_quantile(0.95, sum by (legacy_instance, probe, le) "
                    f"(rate(sidecar_probe_duration_seconds_bucket{{{s}}}[{RATE}])))",
                    "{{legacy_instance}} {{probe}}",
                )
            ],
            unit="s",
            width=12,
        ),
        timeseries(
            "MES read replica lag",
            "How old the replica's data can be (the probes and order-journey read it, MES_REPLICA=1 / "
            "--read-dsn): 0 when it has replayed all the primary's WAL, also on an idle primary. "
            "Alert MesReplicaLagHigh: ticket > 60 s, page > 15 min.",
            [target("max by (replica) (mes_replica_lag_seconds)", "{{replica}}")],
            unit="s",
            min=0,
            width=6,
        ),
        timeseries(
            "Replica WAL not yet applied",
            "Primary's current WAL position minus the replica's replay position. Grows while the "
            "replica is disconnected or its replay is paused; 0 when caught up.",
            [target("max by (replica) (mes_replica_lag_bytes)", "{{replica}}")],
            unit="bytes",
            min=0,
            width=6,
        ),
        row("MES database archiver (mesdb archive --every, docs/mes-data.md)"),
        timeseries(
            "MES archiver: time since the last successful pass",
            "Seconds since the archiver last finished a pass (no line before its first success). "
            "Alert MesdbArchiverStalled: over max(3 intervals, 10 min), ticket.",
            [
                target("time() - (mesdb_archiver_last_success_timestamp_seconds > 0)", "{{instance}}"),
                target(
                    "clamp_min(3 * mesdb_archiver_interval_seconds, 600)", "alert threshold {{instance}}", "B"
                ),
            ],
            unit="s",
            min=0,
            width=8,
        ),
        timeseries(
            "MES archiver passes by outcome",
            "Passes per second that ended ok or with an error (retried at the next interval; the "
            "reason is in its archive-pass log line).",
            [
                target(
                    f"sum by (instance, outcome) (rate(mesdb_archiver_passes_total[{RATE}]))",
                    "{{instance}} {{outcome}}",
                )
            ],
            unit="ops",
            width=8,
        ),
        timeseries(
            "MES archiver: orders archived and pass duration",
            "Orders moved from orders to orders_archive per second, and the p95 duration of one pass.",
            [
                target(
                    f"sum by (instance) (rate(mesdb_archiver_orders_moved_total[{RATE}]))",
                    "{{instance}} orders/s",
                ),
                target(
                    f"histogram_quantile(0.95, sum by (instance, le) "
                    f"(rate(mesdb_archiver_pass_duration_seconds_bucket[{RATE}])))",
                    "{{instance}} pass p95 (s)",
                    "B",
                ),
            ],
            width=8,
        ),
    ]
    variables = [
        query_variable(
            "legacy_instance", "Legacy instance", "label_values(sidecar_requests_total, legacy_instance)"
        )
    ]
    return dashboard(
        "mes-edge-sidecars",
        "mes-edge / Sidecars",
        "RED per legacy instance and route template, order-change events, probe timings, read replica lag, "
        "the MES database archiver.",
        panels,
        variables,
    )


# ---------------------------------------------------------------- cache, rate limits, load shedding


def cache_and_ratelimits() -> dict[str, Any]:
    r = 'route=~"$cache_route"'
    t = 'tier=~"$tier"'
    cache_logs = kibana_link(
        "Access log of ${__field.labels.route} (Kibana)",
        'event.dataset:"gateway.access" and gateway.route:"${__field.labels.route}"',
    )
    edge_logs = kibana_link(
        "Rate-limit mode changes and auth refusals (Kibana)",
        'service.name:"gateway" and '
        'event.action:("ratelimit-degraded" or "ratelimit-shared" or "auth-failure")',
    )
    panels = [
        row("Response cache (docs/caching.md)"),
        timeseries(
            "Hit ratio by route",
            "Reads answered from the cache (fresh, stale-while-revalidate, collapsed) over all "
            "reads of the route. GatewayCacheHitRatioLow: below 30 % for 15 minutes.",
            [
                target(
                    f'sum by (route) (rate(gateway_cache_requests_total{{{r}, result=~"hit|stale|collapsed"}}'
                    f"[{RATE}])) / sum by (route) (rate(gateway_cache_requests_total{{{r}}}[{RATE}]))",
                    "{{route}}",
                ),
                target("vector(0.3)", "alert threshold"),
            ],
            unit="percentunit",
            min=0,
            width=8,
            field_links=[cache_logs],
        ),
        timeseries(
            "Reads by result",
            "hit, stale, stale_if_error, collapsed, miss, expired, invalidated, refresh (client "
            "no-cache), bypass (not cacheable, store failing or event feed down).",
            [
                target(
                    f"sum by (route, result) (rate(gateway_cache_requests_total{{{r}}}[{RATE}]))",
                    "{{route}} {{result}}",
                )
            ],
            unit="reqps",
            width=8,
            field_links=[cache_logs],
        ),
        timeseries(
            "Stale answers and collapsed misses",
            "Expired entries served while one refresh runs (stale) or because the MES failed "
            "(stale_if_error); misses that waited for a concurrent request's answer.",
            [
                target(
                    f"sum by (route, result) (rate(gateway_cache_requests_total{{{r}, "
                    f'result=~"stale|stale_if_error"}}[{RATE}]))',
                    "{{route}} {{result}}",
                ),
                target(
                    f"sum by (route) (rate(gateway_cache_collapsed_total{{{r}}}[{RATE}]))",
                    "{{route}} collapsed",
                ),
            ],
            unit="reqps",
            width=8,
        ),
        timeseries(
            "Invalidations by reason",
            "Version bumps: sidecar order-change events, writes through the gateway, "
            "(re)subscriptions to the feed (bump everything), admin purges.",
            [
                target(
                    f"sum by (reason) (rate(gateway_cache_invalidations_total[{RATE}]))",
                    "{{reason}}",
                )
            ],
            unit="ops",
            width=8,
            links=[kibana_link("Order-change events (Kibana)", "event.action:* and order.id:*")],
        ),
        timeseries(
            "Memory store: bytes and evictions",
            "Bytes held by the in-memory store (0 with the Redis store) and LRU evictions to stay "
            "within cache.memory_max_bytes.",
            [
                target("sum(gateway_cache_bytes)", "bytes"),
                target(f"sum(rate(gateway_cache_evictions_total[{RATE}]))", "evictions/s"),
            ],
            unit="bytes",
            width=8,
        ),
        timeseries(
            "Store errors and event feed",
            "Failed cache store calls by operation (the read bypasses the cache; "
            "GatewayCacheBackendErrors), and whether every process is subscribed to the order-change "
            "feed (0: cache bypassed; GatewayCacheEventsDisconnected).",
            [
                target(
                    f"sum by (operation) (rate(gateway_cache_backend_errors_total[{RATE}]))",
                    "error {{operation}}",
                ),
                target("min(gateway_cache_events_connected)", "feed subscribed (1/0)"),
            ],
            width=8,
            links=[
                kibana_link("Gateway cache log lines (Kibana)", 'service.name:"gateway" and message:"cache"')
            ],
        ),
        row("Rate limits per partner tier (docs/partner-edge.md)"),
        timeseries(
            "Decisions by tier and route",
            "allowed / limited (429) per partner tier and route; tiers, never partner ids.",
            [
                target(
                    f"sum by (tier, route, decision) "
                    f"(rate(gateway_ratelimit_decisions_total{{{t}}}[{RATE}]))",
                    "{{tier}} {{route}} {{decision}}",
                )
            ],
            unit="reqps",
            width=12,
            field_links=[
                kibana_link(
                    "429 answers on ${__field.labels.route} (Kibana)",
                    'event.dataset:"gateway.access" and gateway.route:"${__field.labels.route}" '
                    "and http.response.status_code:429",
                )
            ],
        ),
        timeseries(
            "Limited share by tier and route",
            "PartnerTierRateLimited: over 10 % for 15 minutes (at least one request per 10 s).",
            [
                target(
                    f'sum by (tier, route) (rate(gateway_ratelimit_decisions_total{{{t}, decision="limited"}}'
                    f"[{RATE}])) / sum by (tier, route) "
                    f"(rate(gateway_ratelimit_decisions_total{{{t}}}[{RATE}]))",
                    "{{tier}} {{route}}",
                ),
                target("vector(0.1)", "alert threshold"),
            ],
            unit="percentunit",
            min=0,
            width=12,
        ),
        state_timeline(
            "Degraded mode (local shares)",
            "1 while a gateway enforces limits locally because a call to the rate-limit Redis failed "
            "(until the next heartbeat probe succeeds). GatewayRateLimitBackendUnreachable fires on "
            "probes failing in a row for a minute, not on this state.",
            [target("max by (instance) (gateway_ratelimit_degraded)", "{{instance}}")],
            width=8,
            links=[edge_logs],
        ),
        timeseries(
            "Store errors and mode switches",
            "Failed calls to the rate-limit Redis (request path and heartbeat) by reason: timeouts "
            "alone also come from a slow box; connection/reply errors do not. Transitions into "
            "degraded mode and back to shared counters.",
            [
                target(f"sum by (reason) (rate(gateway_ratelimit_backend_errors_total[{RATE}]))",
                       "{{reason}} errors/s"),
                target(
                    f"sum by (mode) (increase(gateway_ratelimit_mode_switches_total[{RATE}]))",
                    "→ {{mode}}",
                ),
            ],
            width=8,
            links=[edge_logs],
        ),
        stat(
            "Gateway instances (heartbeat)",
            "Live gateway processes in the Redis heartbeat: the degraded-mode share is limit ÷ this.",
            [target("max(gateway_ratelimit_instances)")],
            width=8,
            height=8,
            colorMode="none",
        ),
        row("API keys"),
        timeseries(
            "Refused by API-key auth",
            "401 missing / invalid / revoked, 403 forbidden (no scope) per listener. "
            "GatewayAuthFailuresSpike: over 10 % of a listener's requests for 10 minutes.",
            [
                target(
                    f"sum by (listener, reason) (rate(gateway_auth_failures_total[{RATE}]))",
                    "{{listener}} {{reason}}",
                )
            ],
            unit="reqps",
            width=24,
            links=[kibana_link("Auth refusals with the key id (Kibana)", 'event.action:"auth-failure"')],
        ),
        row("Usage accounting (docs/partner-api.md#usage)"),
        timeseries(
            "Usage writes and backlog",
            "Per-partner usage batches written to Redis by outcome (failed = kept in memory and "
            "retried; duplicate = a retried batch Redis had already applied), workers' priced-model "
            "writes, and events not yet in Redis. UsageAccountingWritesFailing: failing for 10 min.",
            [
                target(f"sum by (outcome) (rate(gateway_usage_writes_total[{RATE}]))", "gateway {{outcome}}"),
                target(f"sum by (outcome) (rate(pricing_usage_writes_total[{RATE}]))", "workers {{outcome}}"),
                target("sum(gateway_usage_pending_events)", "pending events"),
            ],
            width=24,
            links=[kibana_link("Usage write failures (Kibana)",
                               'event.action:("usage-write-failed" OR "usage-lost" OR "usage-recovered")')],
        ),
        row("Load shedding (docs/load-shedding.md)"),
        timeseries(
            "Shed requests (503 load-shed)",
            "By cluster, priority (high = operators, normal/low = partners) and reason. "
            "GatewayLoadShedding pages when operators are shed.",
            [
                target(
                    f"sum by (cluster, priority, reason) (rate(gateway_load_shed_total[{RATE}]))",
                    "{{cluster}} {{priority}} {{reason}}",
                )
            ],
            unit="reqps",
            links=[
                kibana_link(
                    "503 answers (Kibana)",
                    'event.dataset:"gateway.access" and http.response.status_code:503',
                ),
                jaeger_link("Error traces of the gateway (Jaeger)", "gateway", error=True),
            ],
        ),
        timeseries(
            "Adaptive concurrency limit, in flight and queue",
            "The limit follows the cluster's latency (summed over gateway workers); requests "
            "admitted by the breaker and those waiting in the limiter's priority queue.",
            [
                target("sum by (cluster) (gateway_adaptive_concurrency_limit)", "{{cluster}} limit"),
                target("sum by (cluster) (gateway_upstream_active_requests)", "{{cluster}} in flight"),
                target("sum by (cluster) (gateway_adaptive_queue_length)", "{{cluster}} queued"),
            ],
            links=[jaeger_link("Slow traces, > 2.5 s (Jaeger)", "gateway", min_duration="2.5s")],
        ),
        row("Logs"),
        logs(
            "Rate-limit mode changes and auth refusals",
            "Degraded / shared transitions of each gateway process, API-key refusals with the "
            "key id (never the key).",
            'service.name:"gateway" AND '
            'event.action:("ratelimit-degraded" OR "ratelimit-shared" OR "auth-failure")',
        ),
    ]
    variables = [
        query_variable("cache_route", "Cached route", "label_values(gateway_cache_requests_total, route)"),
        query_variable("tier", "Partner tier", "label_values(gateway_ratelimit_decisions_total, tier)"),
    ]
    return dashboard(
        "mes-edge-cache-ratelimits",
        "mes-edge / Cache and rate limits",
        "Response cache, per-tier rate limits and their Redis, API-key refusals, load shedding.",
        panels,
        variables,
    )


# ---------------------------------------------------------------- pricing pool


def pricing() -> dict[str, Any]:
    worker_logs = kibana_link(
        "Pricing worker events (Kibana)", 'service.name:"pricing-worker" and event.action:pricing-*'
    )
    panels = [
        row("Queue (read from Redis by the gateways: max over gateways)"),
        timeseries(
            "Backlog vs bound",
            "Jobs queued or running (plus delayed retries) against quotes.backlog_bound: above "
            "it new models get 503 + Retry-After. PricingBacklogGrowing: over half and rising.",
            [
                target("max(pricing_queue_depth)", "depth"),
                target("max(pricing_backlog_bound)", "bound (503 above)"),
                target("max(pricing_jobs_delayed)", "waiting for a retry"),
            ],
            width=12,
            links=[worker_logs],
        ),
        timeseries(
            "Oldest job age",
            "Age of the oldest job not finished (0 when empty). PricingOldestJobTooOld above 1 h.",
            [
                target("max(pricing_queue_oldest_age_seconds)", "oldest job"),
                target("vector(3600)", "alert threshold"),
            ],
            unit="s",
            width=12,
            links=[jaeger_link("Slow pricing jobs, > 5 min (Jaeger)", "pricing-worker", min_duration="5m")],
        ),
        timeseries(
            "In flight vs capacity",
            "Jobs delivered and not finished (queue view), jobs the workers run now, the pool's "
            "capacity (sum of --concurrency) and workers with a heartbeat.",
            [
                target("max(pricing_jobs_in_flight)", "in flight (queue)"),
                target("sum(pricing_worker_jobs_in_flight)", "running (workers)"),
                target("sum(pricing_worker_concurrency)", "capacity"),
                target("max(pricing_workers_alive)", "workers alive"),
            ],
            width=12,
        ),
        timeseries(
            "Dead letters",
            "Jobs in the dead-letter set (PricingDeadLetters while > 0), and jobs moved there "
            "per reason.",
            [
                target("max(pricing_dead_letter_jobs)", "in the dead-letter set"),
                target(
                    f"sum by (reason) (increase(pricing_dead_letters_total[{RATE}]))",
                    "moved: {{reason}}",
                ),
            ],
            width=12,
            links=[
                kibana_link(
                    "Dead-lettered jobs (Kibana)",
                    'service.name:"pricing-worker" and event.action:"pricing-dead-letter"',
                )
            ],
        ),
        row("Submissions and the price cache (gateway)"),
        timeseries(
            "Submissions by outcome",
            "queued, attached (joined a running job), cached, replay (Idempotency-Key), full "
            "(503 at the bound), invalid / too_large / unsupported (rejected before Redis).",
            [
                target(f"sum by (outcome) (rate(pricing_submissions_total[{RATE}]))", "{{outcome}}"),
                target(f"sum(rate(pricing_queue_probe_errors_total[{RATE}]))", "queue probe errors"),
            ],
            unit="reqps",
            links=[jaeger_link("Quote submissions (Jaeger)", "gateway")],
        ),
        timeseries(
            "Answered without a new legacy call",
            "Price cache hits by kind: exact (same bytes) or geometric (same mesh, other file); "
            "via the stored price (cache) or by joining a running job (inflight).",
            [
                target(
                    f"sum by (kind, via) (rate(pricing_cache_hits_total[{RATE}]))",
                    "{{kind}} via {{via}}",
                )
            ],
            unit="reqps",
        ),
        row("Workers"),
        timeseries(
            "Job duration p50 / p95 / p99",
            "Delivery to a worker to the recorded outcome: one legacy price calculation "
            "(2-30 minutes on the real MES).",
            [
                target(
                    f"histogram_quantile({q}, sum by (le) "
                    f'(rate(pricing_job_duration_seconds_bucket{{outcome="done"}}[{RATE}])))',
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
            width=12,
            links=[jaeger_link("Slow pricing jobs, > 5 min (Jaeger)", "pricing-worker", min_duration="5m")],
        ),
        timeseries(
            "Queue wait p95 by tier, and each tier's objective",
            "Submission to a worker's first start, by the owner's tier (internal: operators; never a "
            "partner id). Fair scheduling (docs/pricing.md) keeps one partner's flood from raising "
            "another's wait; PricingTierWaitAboveObjective fires above the dashed objective.",
            [
                target(
                    "histogram_quantile(0.95, sum by (tier, le) "
                    f"(rate(pricing_queue_wait_seconds_bucket[{RATE}])))",
                    "p95 {{tier}}",
                ),
                target("max by (tier) (pricing_queue_wait_objective_seconds)", "objective {{tier}}"),
            ],
            unit="s",
            width=12,
            links=[worker_logs],
        ),
        timeseries(
            "Jobs by outcome",
            "done, duplicate (late second completion), retry, dead_letter, handed_back (SIGTERM), "
            "skipped.",
            [target(f"sum by (outcome) (rate(pricing_jobs_total[{RATE}]))", "{{outcome}}")],
            unit="ops",
            width=12,
            links=[worker_logs],
        ),
        timeseries(
            "Retries and reclaims",
            "Transient failures scheduled for another attempt; entries taken over from a worker "
            "that stopped (XAUTOCLAIM after the visibility timeout).",
            [
                target(f"sum(rate(pricing_retries_total[{RATE}]))", "retries"),
                target(f"sum(rate(pricing_reclaimed_total[{RATE}]))", "reclaimed"),
            ],
            unit="ops",
            width=8,
            links=[
                kibana_link(
                    "Retries and reclaims (Kibana)",
                    'service.name:"pricing-worker" and event.action:("pricing-retry" or "pricing-reclaim")',
                )
            ],
        ),
        timeseries(
            "Webhooks by outcome",
            "Job-finished webhook attempts: delivered, retry (non-2xx or error, backed off), gave_up, "
            "refused (callback to a non-public address), no_secret (the partner has no webhook secret).",
            [target(f"sum by (outcome) (rate(pricing_webhooks_total[{RATE}]))", "{{outcome}}")],
            unit="ops",
            width=8,
        ),
        state_timeline(
            "Worker scrapes",
            "1 while Prometheus scrapes the worker's /metrics (TargetDown after 5 minutes).",
            [target('up{job="pricing-workers"}', "{{instance}}")],
            width=8,
        ),
        row("Logs"),
        logs(
            "Pricing worker events",
            "Done, retried, dead-lettered, reclaimed and handed-back jobs; expand a line for "
            "trace.id (a link to Jaeger) and pricing.job_id.",
            'service.name:"pricing-worker" AND event.action:pricing-*',
        ),
    ]
    return dashboard(
        "mes-edge-pricing",
        "mes-edge / Pricing pool",
        "Async pricing: queue depth vs bound, oldest job, workers, durations, price-cache hits, "
        "retries and dead letters.",
        panels,
        [],
    )


# ---------------------------------------------------------------- capacity (telemetry/capacity_model.py)


def capacity() -> dict[str, Any]:
    """Headroom, trends and forecast crossings of every resource of the capacity model."""
    from telemetry.capacity_model import RESOURCES
    from telemetry.capacity_rules import WARNING_DAYS

    panels = [
        row("Headroom now (docs/capacity.md; python -m telemetry forecast for dates and confidence)"),
        stat("Headroom per resource", "1 - live usage / measured capacity (capacity:headroom:ratio); "
             "below 0 the resource runs over what was measured.",
             [target("capacity:headroom:ratio", "{{resource}}")], unit="percentunit", width=8,
             thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                       {"color": "orange", "value": 0.2},
                                                       {"color": "green", "value": 0.4}]}),
        stat("Days until capacity at the current trend", "The weekly peak (99th percentile of a week of "
             "usage) on its one-week line reaches the capacity in this many days; 365 means not "
             "within a year or not growing, -1 less than two weeks of history: no forecast yet "
             "(capacity:forecast:days_to_limit).",
             [target("capacity:forecast:days_to_limit or on (resource, kind) (capacity:limit * 0 - 1)",
                     "{{resource}}")], width=8,
             thresholds={"mode": "absolute", "steps": [{"color": "blue", "value": None},
                                                       {"color": "red", "value": 0},
                                                       {"color": "orange", "value": 3},
                                                       {"color": "green", "value": WARNING_DAYS}]}),
        stat("Capacity (where it comes from)",
             "capacity:limit, its limit_source label: measured (a load test or bench named in "
             "prometheus/capacity.yml), provisioned (a figure the operator set there) or live (PromQL: "
             "a store's size + its disk's free bytes, a retention limit).",
             [target("capacity:limit", "{{resource}} ({{limit_source}})")], width=8, colorMode="none"),
        timeseries("Utilization: usage / capacity", "Live usage over the measured capacity, per "
                   "resource (1 = the capacity).",
                   [target("capacity:utilization:ratio", "{{resource}}"), target("vector(1)", "capacity")],
                   unit="percentunit", width=12, min=0,
                   links=[kibana_link("Shed requests, 429/503 (Kibana)", 'event.dataset:"gateway.access" and '
                                      "http.response.status_code:(429 or 503)"),
                          jaeger_link("Slow gateway traces, > 1 s (Jaeger)", "gateway", min_duration="1s")]),
        timeseries("Growth per week, share of capacity", "Slope of the weekly peak over the last "
                   "week, per week, over the capacity (capacity:usage:growth_per_week / capacity:limit).",
                   [target("capacity:usage:growth_per_week / on (resource, kind) capacity:limit",
                           "{{resource}}")], unit="percentunit", width=12),
        row("Usage, weekly peak and forecast per resource"),
    ]
    for r in RESOURCES:
        sel = f'resource="{r.name}"'
        panels.append(timeseries(
            f"{r.title} ({r.unit})", f"{r.per}. Usage: {r.usage}. The forecast line is the weekly peak "
            f"{WARNING_DAYS} days ahead on its one-week trend: above the capacity, "
            "CapacityExhaustionForecast opens a ticket.",
            [target(f"capacity:usage{{{sel}}}", "usage"),
             target(f"capacity:usage:p99_1w{{{sel}}}", "weekly peak"),
             target(f"predict_linear(capacity:usage:p99_1w{{{sel}}}[1w], {WARNING_DAYS} * 86400)",
                    f"weekly peak in {WARNING_DAYS} days"),
             target(f"capacity:limit{{{sel}}}", "capacity")],
            unit=r.grafana_unit, width=12, min=0))
    panels += [
        row("Growth of the order pipeline"),
        timeseries("Orders created per day", "orders:created:per_day: the sidecar's new orders per minute, "
                   "averaged over a day, x 1440.", [target("orders:created:per_day", "orders/day")], width=6),
        timeseries("Active orders", "orders:active: orders in a non-terminal status.",
                   [target("orders:active", "active")], width=6),
        timeseries("Orders archived per day", "orders:archived:per_day: moved to orders_archive by the "
                   "archiver over the last day.", [target("orders:archived:per_day", "archived/day")],
                   width=6),
        timeseries("Archived orders", "orders:archived:rows: rows of orders_archive (PostgreSQL's "
                   "estimate, refreshed by the archiver's ANALYZE).",
                   [target("orders:archived:rows", "rows")], width=6),
        timeseries("Database growth per day", "mes:database_bytes:per_day: change of pg_database_size over "
                   "the last day.", [target("mes:database_bytes:per_day", "bytes/day")], unit="bytes",
                   width=6),
        timeseries("Peak gateway requests/s per day", "capacity:usage:max_1d: the highest 5-minute "
                   "request rate of the last day.",
                   [target('capacity:usage:max_1d{resource="gateway_rps"}', "peak req/s")], unit="reqps",
                   width=6),
        timeseries("Free share of each store's disk",
                   "capacity:store_free_bytes / capacity:store_size_bytes: the filesystem holding the "
                   "metrics store, the logs and the MES database (node_exporter; Elasticsearch's disks up "
                   "to flood stage for the logs in production). StoreDiskFullSoon pages under 25 % when "
                   "the last day's line empties it within 4 days.",
                   [target("capacity:store_free_bytes / on (store) capacity:store_size_bytes", "{{store}}")],
                   unit="percentunit", width=12, min=0),
    ]
    return dashboard("mes-edge-capacity", "mes-edge / Capacity",
                     "Capacity headroom per resource, trends and when each reaches its measured capacity "
                     "(docs/capacity.md).", panels, [])


def build() -> dict[str, dict[str, Any]]:
    """File name → dashboard JSON model."""
    return {
        "gateway.json": gateway(),
        "upstreams.json": upstreams(),
        "orders.json": orders(),
        "sidecars.json": sidecars(),
        "cache-ratelimits.json": cache_and_ratelimits(),
        "pricing.json": pricing(),
        "capacity.json": capacity(),
    }


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="generate grafana/dashboards/*.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if a checked-in file is out of date")
    args = parser.parse_args(argv)
    stale = []
    models = build()
    for name, model in models.items():
        path = OUT / name
        text = render(model)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import build_consoles  # the same panels as Prometheus console pages (a sibling script)

    stale += build_consoles.write(models, check=args.check)
    if stale:
        print(f"out of date: {', '.join(stale)} — run python grafana/build_dashboards.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
