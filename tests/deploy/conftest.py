"""The chart rendered once per session with its default values (tests/support/chart.py)."""

from __future__ import annotations

import pytest

from tests.support import chart


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Missing tools fail the chart tests (never skip them): `make test` installs them."""
    if not chart.HELM.exists() and any("tests/deploy/" in str(item.fspath) for item in items):
        raise pytest.UsageError(f"no pinned helm at {chart.HELM}: run scripts/install-deps.sh "
                                "(make test does; scripts/install-k8s-tools.sh installs it, x86_64 only)")


@pytest.fixture(scope="session")
def objects() -> list[chart.Obj]:
    return chart.render()
