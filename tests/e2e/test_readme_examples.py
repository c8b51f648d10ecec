"""``make run`` as a newcomer meets it: the banner's URLs and the README's shell blocks, in order.

One platform for the module, started by the code `make run` runs (tests/support/make_run.py:
every port moved by one free offset, state in a temporary run dir, so a developer's `make run`
can stay up). The README's blocks are extracted from README.md itself
(tests/support/readme_shell.py has the marker convention), their default ports moved the same
way, and run with bash from the repository root, as a user would paste them.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.make_run import ROOT, MakeRun, make_run
from tests.support.readme_shell import ShellRun, run_bash, script, sh_blocks

README = ROOT / "README.md"
URL = re.compile(r"http://[^\s'\"`),]+")
SHELL_TIMEOUT = 240.0

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def platform(session_tmp: Path) -> Iterator[MakeRun]:
    with make_run(session_tmp / "make-run") as running:
        yield running


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None  # a redirect is an answer of its own here, not a 200


def _status(url: str) -> int:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _try_lines(banner: str) -> str:
    """The commands under ``Try:``, unindented (line continuations kept)."""
    section = banner.split("\nTry:\n", 1)[1]
    return "\n".join(line.removeprefix("  ") for line in section.splitlines() if line.strip())


# first in the module: the README meets a fresh `make run`, as a newcomer's does
def test_the_readme_shell_blocks_run_in_order_against_make_run(platform: MakeRun) -> None:
    blocks = [b for b in sh_blocks(README.read_text()) if b.marker == "run"]
    assert len(blocks) >= 5
    commands = [(f"README.md line {b.line}", platform.moved_text(b.text)) for b in blocks]
    source = "\n".join(text for _, text in commands)

    run: ShellRun = run_bash(script(commands), cwd=ROOT, env=platform.env, timeout=SHELL_TIMEOUT)

    assert run.returncode == 0, run.report()
    assert run.unexpected_errors(source) == [], run.report()
    _assert_the_quote_price_is_the_documented_one(source, run)


def test_every_url_the_banner_prints_answers_200(platform: MakeRun) -> None:
    addresses = platform.banner.split("\nTry:\n", 1)[0]
    assert f":{platform.moved[9090]}/" in addresses  # the ports moved (not a developer's make run)
    urls = sorted(set(URL.findall(addresses)))
    assert len(urls) >= 10, addresses

    answers = {url: _status(url) for url in urls}

    assert {url: code for url, code in answers.items() if code != 200} == {}


def _readme_text_urls(markdown: str) -> list[str]:
    """URLs on the platform's loopback addresses in the README's prose and tables (code blocks are run)."""
    urls, fenced = [], False
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            urls += [url for url in URL.findall(line) if url.startswith("http://127.0.0.1:")]
    return sorted(set(urls))


def test_every_url_the_readme_text_names_answers_200(platform: MakeRun) -> None:
    urls = _readme_text_urls(platform.moved_text(README.read_text()))
    assert urls

    answers = {url: _status(url) for url in urls}

    assert {url: code for url, code in answers.items() if code != 200} == {}


def test_the_banners_try_commands_work_as_printed(platform: MakeRun) -> None:
    commands = _try_lines(platform.banner)

    run = run_bash(script([("make run banner: Try", commands)]), cwd=ROOT, env=platform.env,
                   timeout=SHELL_TIMEOUT)

    assert run.returncode == 0, run.report()
    assert run.statuses(), run.report()
    assert run.unexpected_errors(commands) == [], run.report()


def test_prometheus_of_a_moved_platform_scrapes_and_alerts_on_its_moved_ports(platform: MakeRun) -> None:
    prometheus = f"http://127.0.0.1:{platform.moved[9090]}"

    # discovery runs once Prometheus is up: poll (bounded) until it has found them
    targets = _first_non_empty(lambda: _get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"])
    alertmanagers = _first_non_empty(
        lambda: _get_json(f"{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"])

    ports = {int(t["scrapeUrl"].split("/")[2].rsplit(":", 1)[1]) for t in targets}
    # prometheus/prometheus.yml
    scraped = (9901, 9121, 9122, 9221, 9101, 9102, 9201, 9301, 9302, 9401, 9501, 9502, 9090, 9093)
    assert ports == {platform.moved[port] for port in scraped}
    assert [a["url"] for a in alertmanagers] == [f"http://127.0.0.1:{platform.moved[9093]}/api/v2/alerts"]


def test_make_run_records_redis_ops_and_the_stores_disks_from_its_exporters(platform: MakeRun) -> None:
    """The Redis and node exporters make run starts feed the capacity model (docs/capacity.md)."""
    query = urllib.parse.quote('capacity:usage{resource=~"redis_ops|metrics_store_bytes|log_store_bytes"} '
                               'or capacity:limit{limit_source="live"} or capacity:store_free_bytes')
    url = f"http://127.0.0.1:{platform.moved[9090]}/api/v1/query?query={query}"
    wanted = {("capacity:usage", "redis_ops"), ("capacity:usage", "metrics_store_bytes"),
              ("capacity:usage", "log_store_bytes"), ("capacity:limit", "mes_database_bytes"),
              ("capacity:limit", "metrics_store_bytes"), ("capacity:limit", "log_store_bytes"),
              ("capacity:store_free_bytes", "metrics"), ("capacity:store_free_bytes", "logs"),
              ("capacity:store_free_bytes", "mes_database")}

    def complete() -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = _get_json(url)["data"]["result"]
        seen = {(r["metric"]["__name__"], r["metric"].get("resource") or r["metric"].get("store"))
                for r in result}
        return result if wanted <= seen else []

    # a rate needs two scrapes (15 s apart) and then a rule evaluation
    result = _first_non_empty(complete, timeout=90)
    assert result, f"not recorded within 90 s: {wanted}"
    values = {(r["metric"]["__name__"], r["metric"].get("resource") or r["metric"].get("store")):
              float(r["value"][1]) for r in result}
    assert values[("capacity:usage", "redis_ops")] > 0  # the platform's own commands
    assert values[("capacity:limit", "log_store_bytes")] > values[("capacity:usage", "log_store_bytes")] > 0


def _first_non_empty(fetch: Callable[[], list[dict[str, Any]]], timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while not (found := fetch()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (a loopback URL of the test)
        body: dict[str, Any] = json.load(resp)
    return body


def test_every_readme_shell_block_is_marked_run_or_skip() -> None:
    unmarked = [block.line for block in sh_blocks(README.read_text()) if block.marker is None]

    assert unmarked == [], "README.md ```sh blocks without <!-- readme-test: run|skip: why --> above"


def _assert_the_quote_price_is_the_documented_one(source: str, run: ShellRun) -> None:
    """The README's quote example posts a shipped model; the price printed is examples/models' one,
    and so is the price the README's comment announces."""
    model = re.search(r"--data-binary @examples/models/(\S+)", source)
    material = re.search(r"/quotes\?material=(\w+)", source)
    assert model, "the README's quote example posts a model from examples/models/"
    assert material
    prices = json.loads((ROOT / "examples" / "models" / "prices.json").read_text())
    expected = prices[model.group(1)]["price_eur"][material.group(1)]
    assert f'"price": "{expected}"' in run.stdout, run.report()
    assert f'"price": "{expected}"' in source, "the README's comment shows another price"
