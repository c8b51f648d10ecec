"""The chart rendered once per session with its default values (tests/support/chart.py)."""

from __future__ import annotations

import pytest

from tests.support import chart


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not chart.HELM.exists():  # scripts/install-k8s-tools.sh installs it (x86_64 only)
        skip = pytest.mark.skip(reason="no pinned helm in .venv/k8s-tools (run scripts/install-deps.sh)")
        for item in items:
            if "tests/deploy/" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def objects() -> list[chart.Obj]:
    return chart.render()
