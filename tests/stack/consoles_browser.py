"""Open Prometheus console pages in Debian's headless Chromium (Playwright) and record what rendered.

Playwright's own browser download does not work on our machines; the system browser does
(``apt-get install chromium``, done by scripts/install-deps.sh). Each page is loaded once; the
recorder waits (bounded) until every graph has either drawn (an ``svg``) or said why not
(PromConsole's ``.prom_graph_error``: "No timeseries returned", "Error loading data").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONSOLES = Path(__file__).resolve().parents[2] / "prometheus" / "consoles"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS_ENV = "MES_EDGE_CONSOLE_SCREENSHOTS"  # a folder: one full-page PNG per console page
#: as root, in a sandbox without a network: no sandbox, no GPU, nothing that calls home
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: true once every graph of the page finished: drawn, or PromConsole's error text shown
GRAPHS_SETTLED = """() => [...document.querySelectorAll('.mes-graph')].every(g =>
    !g.querySelector('img.prom_graph_loading') &&
    (g.querySelector('.rickshaw_graph svg') || g.querySelector('.prom_graph_error')))"""
PANELS = """() => [...document.querySelectorAll('.mes-panel')].map(p => ({
    title: p.dataset.title,
    kind: p.dataset.kind,
    drawn: !!p.querySelector('.rickshaw_graph svg path'),
    error: (p.querySelector('.prom_graph_error') || {}).textContent || '',
    empty_values: p.querySelectorAll('.mes-no-data').length,
    values: [...p.querySelectorAll('.mes-value')].map(v => v.textContent.trim()),
}))"""
#: each PromConsole.Graph: its expressions and how many series each returned
GRAPH_DATA = """() => (window.PromConsole ? PromConsole._graph_registry : []).map(g => ({
    node: g.params.node.id,
    exprs: g.params.expr,
    series: g.rendered_data ? g.rendered_data.map(d => d.data.result.length) : null,
}))"""


@dataclass
class ConsolePage:
    """What one console page showed in the browser."""

    url: str
    status: int = 0
    console_errors: list[str] = field(default_factory=list)  # console.error + uncaught exceptions
    failed_requests: list[str] = field(default_factory=list)  # network failures and HTTP >= 400
    panels: list[dict[str, Any]] = field(default_factory=list)
    graphs: list[dict[str, Any]] = field(default_factory=list)  # node id, exprs, series per expr
    links: list[str] = field(default_factory=list)  # hrefs of the page's <a> elements
    settled: bool = False  # every graph finished within the timeout
    text: str = ""  # the page as the user reads it


def chromium_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if shutil.which(CHROMIUM) is None:
        return f"{CHROMIUM} missing: apt-get install -y chromium (scripts/install-deps.sh does it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[dev]'"
    return None


def render_console_pages(urls: list[str], timeout_s: float = 30.0) -> dict[str, ConsolePage]:
    """Load each URL in one headless Chromium; the page's status, errors, panels and links."""
    from playwright.sync_api import sync_playwright

    results: dict[str, ConsolePage] = {}
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            for url in urls:
                results[url] = _render(context, url, timeout_s)
        finally:
            context.close()
    return results


def _render(context: object, url: str, timeout_s: float) -> ConsolePage:
    from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Request, Response

    assert isinstance(context, BrowserContext)
    result = ConsolePage(url=url)
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            result.console_errors.append(message.text)

    def on_response(response: Response) -> None:
        if response.status >= 400:
            result.failed_requests.append(f"{response.url}: {response.status}")

    def on_request_failed(request: Request) -> None:
        result.failed_requests.append(f"{request.url}: {request.failure}")

    def on_page_error(exc: Error) -> None:
        result.console_errors.append(f"uncaught: {exc}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.on("requestfailed", on_request_failed)
    page.on("response", on_response)
    try:
        response = page.goto(url, wait_until="load", timeout=timeout_s * 1000)
        result.status = response.status if response else 0
        try:
            page.wait_for_function(GRAPHS_SETTLED, timeout=timeout_s * 1000)
            result.settled = True
        except Error:
            result.settled = False
        result.panels = page.evaluate(PANELS)
        result.graphs = page.evaluate(GRAPH_DATA)
        result.links = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
        result.text = page.inner_text("body")
        if shots := os.environ.get(SCREENSHOTS_ENV):  # to look at the pages after a test run
            page.screenshot(path=str(Path(shots) / url.rsplit("/", 1)[1].replace(".html", ".png")),
                            full_page=True)
    finally:
        page.close()
    return result



def record_consoles(prometheus_url: str, pages: list[str]) -> tuple[dict[str, ConsolePage], str]:
    """Every page under ``/consoles/`` rendered, or why the browser could not run (for stack_run)."""
    problem = chromium_missing()
    if problem:
        return {}, problem
    try:
        return render_console_pages([f"{prometheus_url}/consoles/{p}" for p in pages]), ""
    except Exception as exc:  # the browser or driver failed: the console tests report it
        return {}, f"{type(exc).__name__}: {exc}"


def console_page_names() -> list[str]:
    """The checked-in pages of prometheus/consoles/, index first."""
    pages = sorted(p.name for p in CONSOLES.glob("*.html"))
    return sorted(pages, key=lambda name: name != "index.html")
