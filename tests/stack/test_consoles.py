"""The Prometheus console pages `make run` serves instead of Grafana (prometheus/consoles/).

Static: the checked-in pages are the generator's output for the Grafana dashboard models, one
graph per Grafana graph panel with the same queries. Live (``stack_run``: the platform under a
real Prometheus started by devstack.monitoring, after a little traffic): Debian's headless
Chromium loads every page with 200 and no console error, and every graph draws data that a real
metric gave (a threshold line such as ``vector(0.1)`` alone does not count).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from devstack.platform import Platform
from tests.stack.conftest import StackRun
from tests.stack.consoles_browser import CONSOLES, ConsolePage, console_page_names
from tests.stack.stack_support import REPO, metric_names

GRAFANA = REPO / "grafana"
#: the pictures on-call needs first (issue 13), and capacity (issue 19): each must have a console page
REQUIRED_PAGES = {"index.html", "gateway.html", "orders.html", "pricing.html", "capacity.html"}


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(GRAFANA))  # build_dashboards imports build_consoles as a sibling
    try:
        spec = importlib.util.spec_from_file_location(name, GRAFANA / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(GRAFANA))


def _models() -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = _script("build_dashboards").build()
    return models


def _browser(stack_run: StackRun) -> dict[str, ConsolePage]:
    if stack_run.console_problem:
        pytest.fail(f"the console pages could not be opened in Chromium: {stack_run.console_problem}")
    pages = stack_run.console_pages
    assert {_page(url) for url in pages} >= REQUIRED_PAGES, "console pages missing from prometheus/consoles/"
    return pages


def _page(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_checked_in_console_pages_equal_the_generator_output() -> None:
    built = _script("build_consoles").build(_models())
    assert set(built) >= REQUIRED_PAGES
    assert set(built) == {p.name for p in CONSOLES.glob("*.html")}, "run grafana/build_dashboards.py"
    for name, text in built.items():
        assert (CONSOLES / name).read_text() == text, f"{name}: run grafana/build_dashboards.py"


def test_each_grafana_graph_panel_is_a_console_graph_with_the_same_queries() -> None:
    consoles = _script("build_consoles")
    for json_name, page in consoles.PAGES.items():
        model = _models()[json_name]
        values = consoles.variables(model)
        expected = [
            [consoles.substitute(t["expr"], values) for t in p["targets"]]
            for p in model["panels"]
            if p["type"] in consoles.GRAPH_PANELS
        ]
        text = (CONSOLES / page).read_text()
        graphs = re.findall(r"mesEdgeGraph\(\"[^\"]+\", (\[.*?\]), \[", text)
        assert [consoles.js(e) for e in expected] == graphs, page
        assert "$" not in "".join(graphs), f"{page}: a Grafana variable left in a query"


def test_banner_links_the_console_pages() -> None:
    banner = Platform(root=Path("/nonexistent")).banner()
    for page in REQUIRED_PAGES:
        assert f"/consoles/{page}" in banner, page


def test_every_console_page_loads_with_200_and_no_console_errors(stack_run: StackRun) -> None:
    pages = _browser(stack_run)
    assert {_page(u) for u in pages} == set(console_page_names())
    for url, page in pages.items():
        assert page.status == 200, url
        assert page.console_errors == [], url
        assert page.failed_requests == [], url
        assert page.settled, f"{url}: a graph was still loading"
        assert "{{" not in page.text, f"{url}: template text shown to the user"


def test_index_page_links_every_console_page(stack_run: StackRun) -> None:
    pages = _browser(stack_run)
    index = next(p for u, p in pages.items() if _page(u) == "index.html")
    linked = {_page(href) for href in index.links if "/consoles/" in href}
    assert linked >= set(console_page_names()) - {"index.html"}


def test_every_console_graph_draws_series_of_a_real_metric(stack_run: StackRun) -> None:
    problems = []
    for url, page in _browser(stack_run).items():
        graphs = [p for p in page.panels if p["kind"] == "graph"]
        assert len(graphs) == len(page.graphs), url
        assert graphs or _page(url) == "index.html", f"{url}: no graph"
        for panel, graph in zip(graphs, page.graphs, strict=True):
            where = f"{_page(url)}: {panel['title']}"
            series = graph["series"]
            if not panel["drawn"] or not isinstance(series, list):
                problems.append(f"{where}: {panel['error'] or 'no graph drawn'}")
            elif not any(n for e, n in zip(graph["exprs"], series, strict=True) if metric_names(e)):
                problems.append(f"{where}: only constant lines, no series from a metric")
    assert not problems, "\n".join(problems)


def test_every_console_value_has_a_value(stack_run: StackRun) -> None:
    problems = []
    for url, page in _browser(stack_run).items():
        for panel in page.panels:
            if panel["kind"] == "stat" and (not panel["values"] or panel["empty_values"]):
                problems.append(f"{_page(url)}: {panel['title']}: a query returned nothing")
    assert not problems, "\n".join(problems)
