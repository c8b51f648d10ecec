"""What pyproject installs is what the image copies: a package missing from the Dockerfile is an
image that fails at its first import, and nothing here builds images (no container engine)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _installed_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]}


def _copied_folders(dockerfile: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^COPY\s+(?:--\S+\s+)*([\w]+)/?\s", dockerfile, re.M)}


def test_the_image_copies_every_installed_package() -> None:
    packages = _installed_packages()
    assert {"gateway", "contracts", "resilience", "configkit"} <= packages
    # devstack is `make run`'s tooling, imported by no deployable (tests/deploy/test_image.py checks
    # what the copied packages import): not in the image
    assert packages - _copied_folders((ROOT / "Dockerfile").read_text()) == {"devstack"}


def test_a_package_missing_from_the_image_is_reported() -> None:
    dockerfile = "COPY gateway ./gateway\nCOPY --chown=1:1 sidecar/ ./sidecar\n"
    assert _copied_folders(dockerfile) == {"gateway", "sidecar"}
