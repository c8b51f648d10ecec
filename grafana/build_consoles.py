"""Prometheus console pages from the Grafana dashboard models: one source for both pictures.

``make run`` has no Grafana, but its Prometheus serves ``prometheus/consoles/*.html`` at
``/consoles/<page>.html``. Each dashboard of ``build_dashboards.build()`` becomes one page: a
timeseries or state-timeline panel becomes a graph with the same PromQL (template variables
match everything, ``$__rate_interval`` becomes ``1m``), a stat panel a table of values read when
the page is served, a logs panel a pointer to Kibana; panel links to Kibana and Jaeger stay links.
``grafana/build_dashboards.py`` writes (and ``--check``s) these pages with the JSON, or alone::

    .venv/bin/python grafana/build_consoles.py          # write prometheus/consoles/*.html
    .venv/bin/python grafana/build_consoles.py --check  # exit 1 if a checked-in page differs

Literal text never contains ``{{``: the pages are Go templates (``mes-edge.lib`` next door).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "prometheus" / "consoles"
RATE_INTERVAL = "1m"  # 4 x the 15 s scrape interval of prometheus/prometheus.yml
#: dashboard file → console page, in the order of the index page
PAGES = {
    "gateway.json": "gateway.html",
    "orders.json": "orders.html",
    "pricing.json": "pricing.html",
    "upstreams.json": "upstreams.html",
    "sidecars.json": "sidecars.html",
    "cache-ratelimits.json": "cache-ratelimits.html",
    "capacity.json": "capacity.html",
}
GRAPH_PANELS = ("timeseries", "state-timeline")
#: Grafana unit → (suffix on the y axis, PromConsole formatter, Go template function)
UNITS = {
    "s": (" s", "humanizeNoSmallPrefix", "humanizeDuration"),
    "bytes": ("B", "humanize1024", "humanize1024"),
    "percentunit": (" (ratio)", "humanizeNoSmallPrefix", "humanizePercentage"),
    "reqps": (" req/s", "humanizeNoSmallPrefix", "humanize"),
    "ops": (" /s", "humanizeNoSmallPrefix", "humanize"),
}
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def text(value: str) -> str:
    """HTML text or attribute value with braces as entities: a Go template sees no action in it."""
    return html.escape(value, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def js(value: Any) -> str:
    """A JavaScript literal safe inside <script> and a Go template (no braces, no ``</``)."""
    out = json.dumps(value, ensure_ascii=False)
    return out.replace("<", "\\u003c").replace("{", "\\u007b").replace("}", "\\u007d")


def go_string(value: str) -> str:
    """A Go template string literal (JSON's escapes are Go's)."""
    return json.dumps(value, ensure_ascii=True)


def variables(model: dict[str, Any]) -> dict[str, str]:
    """``$name`` → its value on the console page: match-all for queries, the default for textboxes."""
    values = {"__rate_interval": RATE_INTERVAL}
    for var in model["templating"]["list"]:
        values[var["name"]] = var.get("allValue", ".*") if var["type"] == "query" else var["query"]
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's ``$name`` / ``${name}`` replaced by ``values``; an unknown variable is an error."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ValueError(f"no console value for ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def link_url(url: str, values: dict[str, str]) -> str:
    """A panel link for "the last 3 hours" (Grafana's time-range macros have no console meaning)."""
    url = url.replace("&start=${__from}000&end=${__to}000", "&lookback=3h")
    url = url.replace("${__from:date:iso}", "now-3h").replace("${__to:date:iso}", "now")
    return substitute(url, values)


def panel_links(panel: dict[str, Any], values: dict[str, str]) -> str:
    links = [
        f'<a href="{text(link_url(link["url"], values))}" target="_blank" rel="noopener">'
        f'{text(link["title"])}</a>'
        for link in panel.get("links", [])
    ]
    return f'<p class="mes-links">{" · ".join(links)}</p>\n' if links else ""


def graph(panel: dict[str, Any], values: dict[str, str]) -> str:
    suffix, formatter, _ = UNITS.get(panel["fieldConfig"]["defaults"]["unit"], ("", "humanize", ""))
    exprs = [substitute(t["expr"], values) for t in panel["targets"]]
    legends = [LEGEND_LABEL.sub(r"[[\1]]", t.get("legendFormat", "")) for t in panel["targets"]]
    minimum = panel["fieldConfig"]["defaults"].get("min", "auto")
    node = f"mes-graph-{panel['id']}"
    return (
        f'<div class="mes-graph" id="{node}"></div>\n'
        f"<script>mesEdgeGraph({js(node)}, {js(exprs)}, {js(legends)}, {js(suffix)}, {js(minimum)}, "
        f"PromConsole.NumberFormatter.{formatter});</script>\n"
    )


def stat_label(legend: str) -> str:
    """A Grafana legend as Go template text: ``{{status}}`` → the series' ``status`` label."""
    parts = LEGEND_LABEL.split(legend)  # literal, label, literal, label, …, literal
    return "".join(text(part) if i % 2 == 0 else f"{{{{ .Labels.{part} }}}}" for i, part in enumerate(parts))


def stat(panel: dict[str, Any], values: dict[str, str]) -> str:
    """One row per series, evaluated by Prometheus when it serves the page ("-" when empty)."""
    _, _, humanize = UNITS.get(panel["fieldConfig"]["defaults"]["unit"], ("", "", "humanize"))
    rows = []
    for t in panel["targets"]:
        legend = t.get("legendFormat", "")
        label = stat_label(legend)
        rows.append(
            f"{{{{ range query {go_string(substitute(t['expr'], values))} }}}}"
            f'<tr><td>{label}</td><td class="mes-value">{{{{ .Value | {humanize} }}}}</td></tr>'
            '{{ else }}<tr><td class="mes-no-data" colspan="2">-</td></tr>{{ end }}'
        )
    return '<table class="mes-stat">\n' + "\n".join(rows) + "\n</table>\n"


def logs(panel: dict[str, Any], values: dict[str, str]) -> str:
    query = panel["targets"][0]["query"]
    discover = f"{values['kibana_url']}/app/discover"
    return (
        f'<p>Log lines in Kibana (<a href="{text(discover)}" target="_blank" rel="noopener">Discover</a>, '
        f"data view mes-edge-logs-*), query: <code>{text(query)}</code></p>\n"
    )


def panel_html(panel: dict[str, Any], values: dict[str, str]) -> str:
    kind = panel["type"]
    if kind == "row":
        return f"<h2>{text(panel['title'])}</h2>\n"
    if kind in GRAPH_PANELS:
        body = graph(panel, values)
    elif kind == "stat":
        body = stat(panel, values)
    elif kind == "logs":
        body = logs(panel, values)
    else:
        raise ValueError(f"{panel['title']}: no console rendering for panel type {kind!r}")
    shown = "graph" if kind in GRAPH_PANELS else kind
    return (
        f'<div class="mes-panel" data-kind="{shown}" data-title="{text(panel["title"])}">\n'
        f"<h3>{text(panel['title'])}</h3>\n"
        f'<p class="mes-desc">{text(panel["description"])}</p>\n'
        f"{body}{panel_links(panel, values)}</div>\n"
    )


def navigation(current: str, titles: dict[str, str]) -> str:
    links = [
        text(title) if page == current else f'<a href="{page}">{text(title)}</a>'
        for page, title in titles.items()
    ]
    return f'<p class="mes-nav"><a href="index.html">All pages</a> {" ".join(links)}</p>\n'


def page(name: str, model: dict[str, Any], titles: dict[str, str]) -> str:
    values = variables(model)
    source = next(json_name for json_name, html_name in PAGES.items() if html_name == name)
    return (
        "{{/* Generated by grafana/build_consoles.py from grafana/dashboards/"
        f"{source}: edit grafana/build_dashboards.py, not this file. */}}}}\n"
        f"{{{{ template \"mes_edge_head\" {go_string(model['title'])} }}}}\n"
        '<div class="prom_console_content"><div class="container-fluid">\n'
        '{{ template "mes_edge_timecontrol" }}\n'
        f"{navigation(name, titles)}"
        f"<h1>{text(model['title'])}</h1>\n<p>{text(model['description'])}</p>\n"
        + "".join(panel_html(p, values) for p in model["panels"])
        + '</div></div>\n{{ template "mes_edge_tail" }}\n'
    )


def index(models: dict[str, dict[str, Any]]) -> str:
    items = "".join(
        f'<li><a href="{page_name}">{text(models[json_name]["title"])}</a>: '
        f"{text(models[json_name]['description'])}</li>\n"
        for json_name, page_name in PAGES.items()
    )
    return (
        "{{/* Generated by grafana/build_consoles.py: the console pages of mes-edge. */}}\n"
        '{{ template "mes_edge_head" "mes-edge consoles" }}\n'
        '<div class="prom_console_content"><div class="container-fluid">\n'
        "<h1>mes-edge consoles</h1>\n"
        "<p>The Grafana dashboards of grafana/dashboards/, drawn by this Prometheus "
        '(same queries; no Grafana needed). <a href="../alerts">Alerts</a> · '
        '<a href="../targets">Targets</a></p>\n'
        f'<ul class="mes-pages">\n{items}</ul>\n'
        '</div></div>\n{{ template "mes_edge_tail" }}\n'
    )


def build(models: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Page file name → Go template text, from ``build_dashboards.build()``."""
    titles = {page_name: models[json_name]["title"] for json_name, page_name in PAGES.items()}
    pages = {page_name: page(page_name, models[json_name], titles) for json_name, page_name in PAGES.items()}
    return {"index.html": index(models), **pages}


def write(models: dict[str, dict[str, Any]], *, check: bool) -> list[str]:
    """Write the pages (or, with ``check``, compare them); the names of stale or extra files."""
    built = build(models)
    stale = [f"consoles/{p.name}" for p in OUT.glob("*.html") if p.name not in built]
    for name, page_text in built.items():
        path = OUT / name
        if check:
            if not path.exists() or path.read_text() != page_text:
                stale.append(f"consoles/{name}")
        else:
            path.write_text(page_text)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="generate prometheus/consoles/*.html")
    parser.add_argument("--check", action="store_true", help="exit 1 if a checked-in page is out of date")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import build_dashboards  # a sibling script, not a package

    stale = write(build_dashboards.build(), check=args.check)
    if stale:
        print(f"out of date: {', '.join(stale)} — run python grafana/build_consoles.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
