"""The image the chart runs (nothing here builds it: no container engine): its user is the chart's,
and .dockerignore keeps out nothing the Dockerfile copies."""

from __future__ import annotations

import fnmatch
import re

import yaml

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
