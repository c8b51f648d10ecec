"""The layers of docs/architecture.md, checked over the real import graph of the repository.

Every module's imports (including those inside functions and ``TYPE_CHECKING`` blocks: a
deployment ships what they name) are read with ``ast``; the graph is closed transitively, so
``gateway → x → legacy_sim`` fails as surely as a direct ``import legacy_sim``:

* production (``gateway``, ``sidecar``, ``legacy_adapters``, ``mesdb``, ``telemetry``, ``resilience``,
  ``contracts``) never reaches the simulator ``legacy_sim``;
* ``contracts`` (the ground) imports no other package of the repository;
* ``resilience`` (shared runtime, owned by no deployable) reaches only ``contracts`` and itself;
* ``sharedstate`` (shared runtime: the one Redis connection spec) reaches only ``configkit``;
* the two deployables stand apart: ``sidecar`` never reaches ``gateway``, nor ``gateway``
  ``sidecar`` (what both need is in ``resilience``/``telemetry``/``contracts``);
* ``mesdb`` (the database kit) reaches only ``contracts`` and ``telemetry`` (and so ``configkit``);
* ``legacy_sim`` (apart) imports only ``contracts`` and itself (and ``telemetry``, its logs, and
  ``sharedstate``, the Redis spec its CRM stand-in shares with the relay);
* the cluster's HTTP/1.1 client (``gateway.upstreams.http1``) is imported by no production
  module outside ``gateway.upstreams``: above the cluster only its transport interface exists
  (``gateway.upstreams.transport``), and its errors arrive translated into ``gateway.errors``;
* the modules of the cluster manager (``gateway.upstreams``) import one another without cycles,
  and so do the modules of every production package (a lazy import inside a function or a
  ``TYPE_CHECKING`` import closes a cycle as surely as a top-level one);
* ``configkit`` (the ground, with ``contracts``) imports no other package of the repository;
* the gateway and the pricing pool (``legacy_adapters``): only the gateway's quote API
  (``gateway.quotes``) imports the pool's modules — it submits and reads jobs through them —
  and the pool never reaches the gateway. What else both need (the webhook secrets file the key
  CLI writes and the workers sign with) is in ``contracts``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "sidecar", "legacy_adapters", "mesdb", "telemetry", "resilience", "sharedstate",
            "contracts", "configkit", "legacy_sim", "devstack", "bench", "loadtests", "tests")
PRODUCTION = ("gateway", "sidecar", "legacy_adapters", "mesdb", "telemetry", "resilience", "sharedstate",
              "contracts", "configkit")


class ImportGraph:
    """The repository's modules under ``root`` and which of them each imports (direct/closed)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules = {self._name(p): p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}
        self._direct: dict[str, frozenset[str]] = {}

    def _name(self, path: Path) -> str:
        parts = list(path.relative_to(self.root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    def _resolve(self, name: str) -> str | None:
        """The repository module ``name`` refers to (itself, or its closest existing parent)."""
        while name and name not in self.modules:
            name = name.rpartition(".")[0]
        return name or None

    def imports(self, module: str) -> frozenset[str]:
        """Repository modules ``module`` imports directly."""
        if module in self._direct:
            return self._direct[module]
        path = self.modules[module]
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for name in names:
                if name.split(".")[0] in PACKAGES and (target := self._resolve(name)) and target != module:
                    found.add(target)
        self._direct[module] = frozenset(found)
        return self._direct[module]

    def importers_of(self, target: str) -> set[str]:
        """Repository modules that import ``target`` directly."""
        return {m for m in self.modules if target in self.imports(m)}

    def cycles(self, package: str) -> list[list[str]]:
        """Import cycles among the modules of ``package`` (strongly connected components, sorted).

        An edge to a module's own parent package does not count: importing a submodule
        runs its package's ``__init__`` first whatever the code says.
        """
        inside = {m for m in self.modules if m.startswith(f"{package}.")}
        edges = {m: {t for t in self.imports(m) & inside if not m.startswith(f"{t}.")} for m in inside}
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        found: list[list[str]] = []

        def visit(module: str) -> None:  # Tarjan
            index[module] = low[module] = len(index)
            stack.append(module)
            for target in edges[module]:
                if target not in index:
                    visit(target)
                    low[module] = min(low[module], low[target])
                elif target in stack:
                    low[module] = min(low[module], index[target])
            if low[module] == index[module]:
                component = []
                while (member := stack.pop()) != module:
                    component.append(member)
                if component:
                    found.append(sorted([module, *component]))

        for module in sorted(inside):
            if module not in index:
                visit(module)
        return sorted(found)

    def reaches(self, module: str) -> set[str]:
        """Every repository module ``module`` imports, directly or through others."""
        seen: set[str] = set()
        todo = [module]
        while todo:
            for target in self.imports(todo.pop()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    def reached_from(self, package: str, *, outside: frozenset[str]) -> dict[str, list[str]]:
        """Modules of ``package`` → the modules of ``outside`` packages they reach (those reaching any)."""
        found = {m: sorted(t for t in self.reaches(m) if _top(t) in outside)
                 for m in self.modules if _top(m) == package}
        return {m: t for m, t in found.items() if t}

    def simulator_reached_from(self, package: str) -> dict[str, list[str]]:
        """Modules of ``package`` → the legacy_sim modules they reach (only those reaching any)."""
        return self.reached_from(package, outside=frozenset({"legacy_sim"}))


def _top(module: str) -> str:
    return module.split(".")[0]


@cache
def _graph() -> ImportGraph:
    return ImportGraph(ROOT)


@pytest.mark.parametrize("package", PRODUCTION)
def test_production_code_never_reaches_the_simulator(package: str) -> None:
    assert _graph().simulator_reached_from(package) == {}


@pytest.mark.parametrize("package", ["contracts", "configkit"])
def test_the_ground_imports_no_other_package_of_the_repository(package: str) -> None:
    graph = _graph()
    imported = {t for m in graph.modules if _top(m) == package for t in graph.imports(m)}
    assert {t for t in imported if _top(t) != package} == set()


def test_the_simulator_stands_on_contracts_only() -> None:
    graph = _graph()
    imported = {t for m in graph.modules if _top(m) == "legacy_sim" for t in graph.imports(m)}
    assert {_top(t) for t in imported} <= {"legacy_sim", "contracts", "telemetry", "sharedstate"}


def test_an_indirect_import_of_the_simulator_from_the_gateway_is_reported(tmp_path: Path) -> None:
    """The check is not vacuous: a gateway module reaching legacy_sim through another is named."""
    for path, source in {"gateway/__init__.py": "", "gateway/quotes.py": "from . import helper\n",
                         "gateway/helper.py": "def f():\n    import legacy_sim.pricing\n",
                         "legacy_sim/__init__.py": "", "legacy_sim/pricing.py": ""}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(source)
    assert ImportGraph(tmp_path).simulator_reached_from("gateway") == {
        "gateway.helper": ["legacy_sim.pricing"], "gateway.quotes": ["legacy_sim.pricing"]}


def test_resilience_stands_on_contracts_only() -> None:
    """Shared by the gateway and the sidecar, owned by neither: no deployable, no simulator."""
    allowed = {"resilience", "contracts"}
    assert _graph().reached_from("resilience", outside=frozenset(set(PACKAGES) - allowed)) == {}


def test_sharedstate_stands_on_configkit_only() -> None:
    """Every deployable and the CRM stand-in import the Redis spec: it imports none of them."""
    allowed = {"sharedstate", "configkit"}
    assert _graph().reached_from("sharedstate", outside=frozenset(set(PACKAGES) - allowed)) == {}


def test_the_sidecar_never_reaches_the_gateway() -> None:
    assert _graph().reached_from("sidecar", outside=frozenset({"gateway"})) == {}


def test_the_gateway_never_reaches_the_sidecar() -> None:
    assert _graph().reached_from("gateway", outside=frozenset({"sidecar"})) == {}


def test_the_database_kit_stands_on_contracts_and_telemetry_only() -> None:
    """mesdb is a deployable the DBA runs: no other deployable's internals, never the simulator
    (``configkit``, ground, only as ``telemetry``'s own import: the archiver's logs and metrics)."""
    allowed = {"mesdb", "contracts", "telemetry", "configkit"}
    assert _graph().reached_from("mesdb", outside=frozenset(set(PACKAGES) - allowed)) == {}


def _write(root: Path, files: dict[str, str]) -> None:
    for path, source in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(source)


def test_a_gateway_import_in_a_sidecar_module_is_reported(tmp_path: Path) -> None:
    """Directly, inside a function, or through resilience: each sidecar module that reaches it is named."""
    _write(tmp_path, {
        "gateway/__init__.py": "", "gateway/errors.py": "",
        "resilience/__init__.py": "", "resilience/adaptive.py": "from resilience import shedding\n",
        "resilience/shedding.py": "def shed():\n    from gateway.errors import LoadShed\n",
        "sidecar/__init__.py": "", "sidecar/proxy.py": "import gateway\n",
        "sidecar/relay/__init__.py": "", "sidecar/relay/relay.py": "from resilience.adaptive import x\n",
        "sidecar/app.py": "from .relay import relay\n", "sidecar/clean.py": "import contracts\n",
    })
    graph = ImportGraph(tmp_path)
    assert graph.reached_from("sidecar", outside=frozenset({"gateway"})) == {
        "sidecar.app": ["gateway.errors"], "sidecar.proxy": ["gateway"],
        "sidecar.relay.relay": ["gateway.errors"]}
    assert graph.reached_from("resilience", outside=frozenset({"gateway", "sidecar"})) == {
        "resilience.adaptive": ["gateway.errors"], "resilience.shedding": ["gateway.errors"]}


def test_adding_import_gateway_to_the_real_relay_fails_the_check(tmp_path: Path) -> None:
    """The check over a copy of today's tree passes, and fails once a sidecar module imports gateway."""
    for package in ("gateway", "sidecar", "resilience", "contracts", "telemetry"):
        for path in (ROOT / package).rglob("*.py"):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text())
    assert ImportGraph(tmp_path).reached_from("sidecar", outside=frozenset({"gateway"})) == {}
    relay = tmp_path / "sidecar" / "relay" / "relay.py"
    relay.write_text(relay.read_text() + "\nimport gateway  # the mistake\n")
    reported = ImportGraph(tmp_path).reached_from("sidecar", outside=frozenset({"gateway"}))
    assert reported["sidecar.relay.relay"] == ["gateway"]


HTTP1 = "gateway.upstreams.http1"


def _http1_importers_above_the_cluster(graph: ImportGraph) -> set[str]:
    return {m for m in graph.importers_of(HTTP1)
            if _top(m) in PRODUCTION and not m.startswith("gateway.upstreams.")}


def test_nothing_above_the_cluster_imports_its_http1_client() -> None:
    assert _http1_importers_above_the_cluster(_graph()) == set()


def test_an_http1_import_above_the_cluster_is_reported(tmp_path: Path) -> None:
    """A copy of today's gateway passes; a module above the cluster importing the client fails."""
    for path in (ROOT / "gateway").rglob("*.py"):
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    assert _http1_importers_above_the_cluster(ImportGraph(tmp_path)) == set()
    proxy = tmp_path / "gateway" / "proxy.py"
    proxy.write_text(proxy.read_text() + "\nfrom gateway.upstreams.http1 import Response  # the mistake\n")
    answers = tmp_path / "gateway" / "upstream_answers.py"
    answers.write_text(answers.read_text() + "\ndef f():\n    from gateway.upstreams import http1\n")
    assert _http1_importers_above_the_cluster(ImportGraph(tmp_path)) == {
        "gateway.proxy", "gateway.upstream_answers"}


def test_the_cluster_modules_import_one_another_without_cycles() -> None:
    assert _graph().cycles("gateway.upstreams") == []


def test_an_import_cycle_is_reported_even_through_type_checking(tmp_path: Path) -> None:
    _write(tmp_path, {
        "gateway/__init__.py": "", "gateway/upstreams/__init__.py": "from .cluster import Cluster\n",
        "gateway/upstreams/cluster.py": "from gateway.upstreams.request import UpstreamRequest\n",
        "gateway/upstreams/request.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                        "    from gateway.upstreams.cluster import Cluster\n",
        "gateway/upstreams/retry.py": "from gateway.upstreams import transport\n",
        "gateway/upstreams/transport.py": "",
    })
    assert ImportGraph(tmp_path).cycles("gateway.upstreams") == [
        ["gateway.upstreams.cluster", "gateway.upstreams.request"]]


@pytest.mark.parametrize("package", PRODUCTION)
def test_no_production_package_has_an_import_cycle(package: str) -> None:
    """Between modules of different concerns (config ↔ auth ↔ state, backend ↔ its implementations)
    a cycle means neither can be read, tested or moved alone."""
    assert _graph().cycles(package) == []


def test_a_cycle_through_a_lazy_factory_import_is_reported(tmp_path: Path) -> None:
    """The factory-in-the-base-module shape: the implementations import the base, the base's
    factory imports them inside a function."""
    _write(tmp_path, {
        "legacy_adapters/__init__.py": "",
        "legacy_adapters/backend.py": "def make():\n    from legacy_adapters.http_backend import Http\n",
        "legacy_adapters/http_backend.py": "from legacy_adapters.backend import PricingError\n",
    })
    assert ImportGraph(tmp_path).cycles("legacy_adapters") == [
        ["legacy_adapters.backend", "legacy_adapters.http_backend"]]


#: The part of the gateway that may import the pricing pool: the quote API submits and reads jobs.
PRICING_CLIENT = "gateway.quotes"


def _pool_importers_outside_the_quote_api(graph: ImportGraph) -> set[str]:
    return {m for m in graph.modules
            if _top(m) == "gateway" and m != PRICING_CLIENT and not m.startswith(f"{PRICING_CLIENT}.")
            and any(_top(t) == "legacy_adapters" for t in graph.imports(m))}


def test_only_the_quote_api_of_the_gateway_imports_the_pricing_pool() -> None:
    assert _pool_importers_outside_the_quote_api(_graph()) == set()


def test_the_pricing_pool_never_reaches_the_gateway() -> None:
    assert _graph().reached_from("legacy_adapters", outside=frozenset({"gateway"})) == {}


def test_the_key_cli_importing_the_workers_secrets_module_is_reported(tmp_path: Path) -> None:
    """A copy of today's gateway passes; the key CLI's old import of ``legacy_adapters.webhook_secrets``
    (before the secrets file moved to ``contracts``) is named, and so is one inside a function."""
    for path in (ROOT / "gateway").rglob("*.py"):
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    _write(tmp_path, {"legacy_adapters/__init__.py": "", "legacy_adapters/webhook_secrets.py": "",
                      "legacy_adapters/submit.py": ""})
    assert _pool_importers_outside_the_quote_api(ImportGraph(tmp_path)) == set()
    cli = tmp_path / "gateway" / "api_keys.py"
    cli.write_text(cli.read_text() + "\nfrom legacy_adapters.webhook_secrets import WebhookSecretStore\n")
    usage = tmp_path / "gateway" / "usage" / "api.py"
    usage.write_text(usage.read_text() + "\ndef f():\n    from legacy_adapters import submit\n")
    assert _pool_importers_outside_the_quote_api(ImportGraph(tmp_path)) == {
        "gateway.api_keys", "gateway.usage.api"}
