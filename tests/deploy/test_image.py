"""The image the chart runs (nothing here builds it: no container engine): its user is the chart's,
.dockerignore keeps out nothing the Dockerfile copies, the final stage holds the runtime dependencies
only, and they cover everything the copied packages import."""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
import tomllib
from importlib import metadata

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import chart

DOCKERFILE = (chart.ROOT / "Dockerfile").read_text()


def test_the_image_user_is_the_charts_non_root_user() -> None:
    security = yaml.safe_load((chart.CHART / "values.yaml").read_text())["podSecurity"]
    assert re.search(rf"^USER {security['runAsUser']}:{security['runAsGroup']}$", DOCKERFILE, re.M)
    assert security["runAsUser"] != 0


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    ignored = [line.strip() for line in (chart.ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    sources = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M)
    copied = [src for line in sources for src in line.split()]
    assert {"gateway", "config", "prometheus/webhook_logger.py", "pyproject.toml"} <= set(copied)
    for src in copied:
        top = src.split("/")[0]
        assert not any(fnmatch.fnmatch(src, pat) or fnmatch.fnmatch(top, pat) for pat in ignored), src


def _copied_packages() -> list[str]:
    """The Python packages the build stage copies (``COPY gateway ./gateway``)."""
    return [name for name in re.findall(r"^COPY (\w+) \./\1$", DOCKERFILE, re.M)
            if (chart.ROOT / name / "__init__.py").exists()]


def _runtime_imports(packages: list[str]) -> dict[str, str]:
    """Top-level third-party modules those packages import at run time → one file importing each
    (imports under ``if TYPE_CHECKING:`` are not run)."""
    found: dict[str, str] = {}
    for package in packages:
        for path in sorted((chart.ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            typing_only = {id(sub) for node in ast.walk(tree)
                           if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                           for sub in ast.walk(node)}
            for node in ast.walk(tree):
                if id(node) in typing_only:
                    continue
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for top in (name.split(".")[0] for name in names):
                    if top not in sys.stdlib_module_names and top not in packages:
                        found.setdefault(top, str(path.relative_to(chart.ROOT)))
    return found


def _installed_by_the_image() -> set[str]:
    """Distributions `pip install '.[extras]'` puts in the image: pyproject's dependencies plus the
    extras the Dockerfile names, and everything they require (normalised names)."""
    [install] = re.findall(r"^RUN [^\n]*pip install ([^\n]*)", DOCKERFILE, re.M)
    named = re.search(r"\.\[([\w,]+)\]", install)
    extras = named.group(1) if named else ""
    project = tomllib.loads((chart.ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in filter(None, extras.split(",")):
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    seen: set[str] = set()
    while wanted:
        req = wanted.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:  # e.g. psycopg-binary: the dev venv uses the system libpq
            continue
        for text in requires:
            sub = Requirement(text)
            extras_here = ["", *sorted(req.extras)]
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras_here):
                wanted.append(sub)
    return seen


def test_the_image_installs_what_its_packages_import() -> None:
    """Every third-party module the copied packages import comes with the image's install (mesdb's
    psycopg included), so no process fails at start-up with ModuleNotFoundError."""
    packages = _copied_packages()
    assert {"gateway", "sidecar", "legacy_adapters", "legacy_sim", "mesdb"} <= set(packages)
    installed = _installed_by_the_image()
    providers = metadata.packages_distributions()
    missing = {module: where for module, where in _runtime_imports(packages).items()
               if not {canonicalize_name(d) for d in providers.get(module, [module])} & installed}
    assert not missing, f"imported at run time but not installed in the image: {missing}"


def test_the_final_stage_has_only_runtime_dependencies() -> None:
    build, runtime = DOCKERFILE.split("\nFROM ${PYTHON_IMAGE} AS runtime\n")
    assert re.search(r"^ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$",
                     DOCKERFILE, re.M), "the base image is pinned by exact version and digest"
    install = re.search(r"^RUN [^\n]*pip install ([^\n]*)", build, re.M)
    assert install is not None
    assert "dev" not in install.group(1)  # no [dev] extras: test and lint tools stay out
    assert "--only-binary :all:" in install.group(1)  # wheels only: nothing is compiled
    assert "pip uninstall --yes pip setuptools" in build  # no installer left in the venv
    assert "devstack" not in _copied_packages()  # make run's tooling, not a deployable
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in runtime, tool  # the final stage only copies the built venv
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
