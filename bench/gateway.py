"""How the benchmark starts the project's gateway: its config file and its command line.

The contract (overridable with ``--gateway-cmd`` / ``--gateway-config``)::

    .venv/bin/python -m gateway --config FILE.yaml --workers N

The config template is a ``string.Template`` (``${name}`` placeholders, so YAML's own
braces need no escaping); the command is split with ``shlex`` and each word is
formatted with ``str.format`` (``{name}`` placeholders). Both get the same names:
python, config, workers, workdir, admin_port, external_port, internal_port,
access_log, endpoint1, endpoint2.

``--tree PATH`` runs the gateway of another checkout (e.g. ``/work/base``, the code before a
change) with this checkout's interpreter: the command runs in that directory with
``PYTHONPATH`` set to it (:func:`tree_env`), so ``-m gateway`` imports that tree's packages.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import string
import subprocess
import sys
from pathlib import Path

from bench.processes import ROOT

DEFAULT_COMMAND = "{python} -m gateway --config {config} --workers {workers}"

DEFAULT_CONFIG_TEMPLATE = """\
admin: {host: 127.0.0.1, port: ${admin_port}}
logging: {access_log: "${access_log}"}
listeners:
  external: {host: 127.0.0.1, port: ${external_port}}
  internal: {host: 127.0.0.1, port: ${internal_port}}
clusters:
  mes:
    endpoints: ["${endpoint1}", "${endpoint2}"]
    balancer: least_request
    health_check: {path: /healthz, interval: 5}
routes:
  - {name: orders, listener: internal, prefix: /orders, methods: [GET], cluster: mes}
"""


@dataclasses.dataclass(frozen=True, kw_only=True)
class GatewayLaunch:
    """Everything needed to start one gateway variant and to point wrk at it."""

    argv: list[str]
    config_path: Path
    admin_port: int
    internal_port: int
    external_port: int


def prepare_launch(
    *,
    name: str,
    workers: int,
    ports: tuple[int, int, int],
    endpoints: tuple[str, str],
    workdir: Path,
    command: str = DEFAULT_COMMAND,
    config_template: str = DEFAULT_CONFIG_TEMPLATE,
) -> GatewayLaunch:
    """Write ``<workdir>/<name>.yaml`` from the template and build the command line.

    ``ports`` is (admin, external, internal).
    """
    admin_port, external_port, internal_port = ports
    config_path = workdir / f"{name}.yaml"
    values: dict[str, str] = {
        "python": sys.executable,
        "config": str(config_path),
        "workers": str(workers),
        "workdir": str(workdir),
        "admin_port": str(admin_port),
        "external_port": str(external_port),
        "internal_port": str(internal_port),
        "access_log": str(workdir / f"{name}.access.log"),
        "endpoint1": endpoints[0],
        "endpoint2": endpoints[1],
    }
    try:
        config_path.write_text(string.Template(config_template).substitute(values))
        argv = [word.format_map(values) for word in shlex.split(command)]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"bad gateway command or config template: {exc!r}") from exc
    return GatewayLaunch(
        argv=argv,
        config_path=config_path,
        admin_port=admin_port,
        internal_port=internal_port,
        external_port=external_port,
    )


def tree_env(tree: Path) -> dict[str, str]:
    """The environment that makes ``python -m gateway`` (run in ``tree``) import ``tree``'s code."""
    return {**os.environ, "PYTHONPATH": str(tree)}


def tree_revision(tree: Path) -> str:
    """``tree``'s commit, with ``+changes`` when its work tree differs from it (for the results)."""

    def git(*words: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(tree), *words], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({exc})"
        return done.stdout.strip() if done.returncode == 0 else f"unknown ({done.stderr.strip()})"

    commit = git("rev-parse", "--short=12", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}+changes" if changed else commit


def missing_reason(argv: list[str], tree: Path = ROOT) -> str | None:
    """Why ``argv`` cannot run in ``tree`` (program absent, ``-m`` module not importable), or None."""
    if not argv:
        return "empty command"
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} not found"
    if "-m" not in argv[:-1]:
        return None
    module = argv[argv.index("-m") + 1]
    # a package runs through its __main__; checked in a child so nothing is imported here
    probe = (
        "import importlib.util as u, sys\n"
        f"s = u.find_spec({module!r})\n"
        f"ok = s is not None and (s.submodule_search_locations is None"
        f" or u.find_spec({module + '.__main__'!r}) is not None)\n"
        "sys.exit(0 if ok else 1)\n"
    )
    try:
        done = subprocess.run(
            [argv[0], "-c", probe],
            cwd=tree,
            env=tree_env(tree),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"checking that {module} is importable took over 30 s"
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or ["no module or no __main__"]
        return f"{module} not importable ({detail[0]})"
    return None
