"""The hot/cold split, online: a real legacy MES serves a steady client loop while ``mesdb split``
moves the archived orders; no request fails, every order is still there, byte for byte."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest

from bench.mes_wrk import wrk_load
from mesdb import split as split_module
from mesdb.db import connect
from mesdb.ddl import retrying
from mesdb.errors import KitError
from tests.integration.mesdb.conftest import mesdb, mesdb_json, query
from tests.support.legacy import mes_processes

ORDER = {"customer": "Acme GmbH", "material": "PLA", "quantity": 3, "model_name": "bracket.stl"}
ROWS = "SELECT id, md5(o::text) FROM orders o"
ARCHIVABLE = (
    "SELECT id FROM orders WHERE status IN ('CLOSED', 'CANCELLED') "
    "AND status_changed_at < now() - interval '30 days'"
)


class SteadyClient:
    """Operators' lists, single orders, new orders, status changes and CRM redeliveries, in a loop."""

    def __init__(self, base: str, archived_ids: list[int], archived_crm: tuple[int, str]) -> None:
        self.base, self.archived_ids, self.archived_crm = base, archived_ids, archived_crm
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.created: list[int] = []

    def _check(self, what: str, status: int, wanted: int, body: object = None) -> None:
        self.outcomes[what] += 1
        if status != wanted:
            self.failures.append(f"{what}: {status} {body}")

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession(self.base, timeout=aiohttp.ClientTimeout(total=10)) as http:
            for i in itertools.count():
                if stop.is_set():
                    return
                for params in ({"status": "SHIPPED"}, {}, {"status": "CLOSED", "page": "3"}):
                    async with http.get("/orders", params=params) as resp:
                        self._check(f"list {params}", resp.status, 200, await resp.text())
                async with http.get(f"/orders/{self.archived_ids[i % len(self.archived_ids)]}") as resp:
                    self._check("get archived", resp.status, 200, await resp.text())
                async with http.post("/orders", json=ORDER) as resp:
                    self._check("create", resp.status, 201, body := await resp.json())
                    self.created.append(body["id"])
                async with http.post(f"/orders/{body['id']}/status", json={"status": "CANCELLED"}) as resp:
                    self._check("cancel", resp.status, 200, await resp.text())
                order_id, ref = (
                    self.archived_crm
                )  # a CRM redelivery of an archived order: the same order back
                async with http.post("/orders", json={**ORDER, "source": "crm", "external_ref": ref}) as resp:
                    self._check("redelivery", resp.status, 200, dup := await resp.json())
                    if dup.get("id") != order_id:
                        self.failures.append(f"redelivery answered order {dup.get('id')}, not {order_id}")


@pytest.fixture
def mes_url(seeded_dsn: str, tmp_path: Path) -> Iterator[str]:
    mesdb_json(seeded_dsn, "apply", "--no-measure")  # before the MES connects: its sessions plan per value
    with mes_processes(seeded_dsn, tmp_path, count=1) as started:
        yield started[0][0]


@pytest.mark.slow
async def test_split_under_load_fails_no_request_and_keeps_every_row(seeded_dsn: str, mes_url: str) -> None:
    """Two loads at once: a steady wrk load (bench/mes_migration.lua: lists, archived orders by id,
    new orders, CRM redeliveries; any non-2xx counts) and a client loop that checks each answer."""
    before = dict(query(seeded_dsn, ROWS))
    archivable = {r[0] for r in query(seeded_dsn, ARCHIVABLE)}
    crm = query(
        seeded_dsn,
        "SELECT id, external_ref FROM orders WHERE source = 'crm' AND id = ANY(%s) LIMIT 1",
        sorted(archivable),
    )
    load = {"archived_ids": sorted(archivable)[::500], "crm_ref": crm[0][1]}
    with wrk_load(mes_url, **load) as baseline:  # the MES before the migration, same load
        await asyncio.sleep(3)
    client = SteadyClient(mes_url, sorted(archivable)[::500], crm[0])
    stop = asyncio.Event()
    with wrk_load(mes_url, **load) as during:
        steady = asyncio.create_task(client.run(stop))
        try:
            split = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mesdb",
                "--dsn",
                seeded_dsn,
                "--json",
                "split",
                "--batch",
                "500",
                "--pause",
                "0.05",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _out, err = await asyncio.wait_for(split.communicate(), timeout=240)
        finally:
            stop.set()
            await steady
    assert split.returncode == 0, err.decode()
    assert (baseline[0].failures, during[0].failures) == (0, 0)
    assert baseline[0].requests > 0
    assert during[0].requests > 0
    assert client.failures == []
    assert sum(client.outcomes.values()) > 50, client.outcomes  # the MES was really under load meanwhile
    after = dict(query(seeded_dsn, ROWS))
    assert {i: after[i] for i in before} == before  # every seeded order, identical
    made_by_wrk = {r[0] for r in query(seeded_dsn, "SELECT id FROM orders WHERE customer = 'wrk'")}
    assert set(after) - set(before) == set(client.created) | made_by_wrk
    assert {r[0] for r in query(seeded_dsn, "SELECT id FROM orders_archive")} == archivable
    assert query(seeded_dsn, "SELECT count(*) FROM ONLY orders WHERE id = ANY(%s)", sorted(archivable)) == [
        (0,)
    ]
    moved = query(seeded_dsn, "SELECT sum(rows_moved) FROM mesdb.moves WHERE direction = 'archive'")
    assert moved == [(len(archivable),)]


def test_split_resumes_after_an_interruption(seeded_dsn: str) -> None:
    archivable = len(query(seeded_dsn, ARCHIVABLE))
    first = mesdb_json(seeded_dsn, "split", "--batch", "1000", "--max-batches", "3")
    assert (first["rows"], first["batches"]) == (3000, 3)
    rest = mesdb_json(seeded_dsn, "split", "--batch", "1000")
    assert first["rows"] + rest["rows"] == archivable
    assert query(seeded_dsn, "SELECT count(*) FROM orders_archive") == [(archivable,)]


def test_split_keeps_the_foreign_keys_as_triggers_over_both_tables(seeded_dsn: str) -> None:
    mesdb_json(seeded_dsn, "split")
    archived = query(seeded_dsn, "SELECT min(id) FROM orders_archive")[0][0]
    with psycopg.connect(seeded_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO order_status_history (order_id, new_status) VALUES (%s, 'CLOSED')", (archived,)
        )
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO order_status_history (order_id, new_status) VALUES (-1, 'CLOSED')")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "INSERT INTO price_calculations (instance_id, model_sha256, material, order_id) "
                "VALUES ('mes-1', 'x', 'PLA', -1)"
            )


def _validated_foreign_keys(dsn: str) -> list[tuple[object, ...]]:
    return query(
        dsn,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' "
        "AND convalidated ORDER BY 1",
    )


def test_unsplit_moves_everything_back_and_restores_the_foreign_keys(seeded_dsn: str) -> None:
    before = dict(query(seeded_dsn, ROWS))
    keys = _validated_foreign_keys(seeded_dsn)  # the legacy's, as it created them
    archived = mesdb_json(seeded_dsn, "split")
    restored = mesdb_json(seeded_dsn, "unsplit")
    assert restored["rows"] == archived["rows"] > 0
    assert dict(query(seeded_dsn, ROWS)) == before
    assert query(seeded_dsn, "SELECT to_regclass('orders_archive')") == [(None,)]
    assert _validated_foreign_keys(seeded_dsn) == keys
    assert query(seeded_dsn, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'mesdb_%'") == [(0,)]
    assert mesdb(seeded_dsn, "archive").returncode == 1  # nothing to archive into any more


def test_a_split_interrupted_while_swapping_the_keys_resumes_and_unsplits_to_the_original(
    seeded_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = _validated_foreign_keys(seeded_dsn)  # the legacy's, as it created them

    def crash_at_the_second_key(conn: psycopg.Connection, what: str, step: Callable[[], object]) -> object:
        if what == "replace foreign key price_calculations_order_id_fkey":
            raise KitError("simulated crash")  # the first key is already swapped and committed
        return retrying(conn, what, step)

    monkeypatch.setattr(split_module, "retrying", crash_at_the_second_key)
    with connect(seeded_dsn) as conn, pytest.raises(KitError):
        split_module.prepare(conn)
    monkeypatch.undo()
    assert query(seeded_dsn, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == [(1,)]
    assert mesdb_json(seeded_dsn, "split")["rows"] > 0  # resumes: archive kept, second key swapped
    assert query(seeded_dsn, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == [(0,)]
    mesdb_json(seeded_dsn, "revert")
    assert _validated_foreign_keys(seeded_dsn) == keys
