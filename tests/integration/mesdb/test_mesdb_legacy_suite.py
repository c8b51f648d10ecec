"""The legacy MES's own tests, run again on the schema the kit leaves behind (apply + split)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.mesdb.conftest import query
from tests.support.mesdb_schema import ENV, migrate

LEGACY_DB_TESTS = [
    f"tests/integration/legacy_sim/{name}.py"
    for name in (
        "test_sim_mes_orders",
        "test_sim_mes_lifecycle",
        "test_sim_mes_archived",
        "test_sim_crm_consumer",
        "test_sim_seed",
        "test_sim_journey",
    )
]


def test_the_migrated_schema_is_what_the_legacy_suite_runs_on(pg_dsn: str) -> None:
    migrate(pg_dsn)  # what MES_TEST_SCHEMA=mesdb does to every fresh database
    assert query(pg_dsn, "SELECT inhrelid::regclass::text FROM pg_inherits") == [("orders_archive",)]
    assert query(pg_dsn, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == [(0,)]  # triggers now


@pytest.mark.slow
@pytest.mark.timeout(600)  # the legacy suite itself, ~70 tests: 2-3 min on a shared 2-core box
def test_the_legacy_mes_tests_pass_on_the_migrated_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *LEGACY_DB_TESTS],
        env={**os.environ, ENV: "mesdb"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:]
