"""``mesdb unsplit`` while the archiver keeps running: no order is ever lost (the archiver's
batches stop while the rollback holds the kit's move lock; the archive is dropped only empty)."""

from __future__ import annotations

import asyncio
import sys
import threading

import psycopg

from mesdb import split
from mesdb.db import connect
from mesdb.errors import KitError
from tests.integration.mesdb.conftest import mesdb_json, query
from tests.integration.mesdb.test_mesdb_split import ROWS
from tests.support.waiting import eventually


class Archiver(threading.Thread):
    """``mesdb archive`` passes back to back (small batches), as a busy archiver runs them."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.stop, self.passes, self.moved = dsn, threading.Event(), 0, 0
        self.first_pass = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with connect(self.dsn) as conn:
                    while not self.stop.is_set():
                        self.moved += split.archive(conn, batch=50).rows
                        self.passes += 1
                        self.first_pass.set()
            except (KitError, psycopg.Error):  # no split any more, or the archive just dropped
                self.passes += 1
                self.first_pass.set()


def test_unsplit_while_the_archiver_runs_loses_no_order(seeded_dsn: str) -> None:
    before = dict(query(seeded_dsn, ROWS))
    archived = mesdb_json(seeded_dsn, "split")["rows"]
    assert archived > 0
    archiver = Archiver(seeded_dsn)
    archiver.start()
    try:
        assert archiver.first_pass.wait(30)
        passes = archiver.passes
        restored = mesdb_json(seeded_dsn, "unsplit", "--batch", "500")
        assert archiver.passes > passes  # the archiver did run during the rollback
    finally:
        archiver.stop.set()
        archiver.join(30)
    after = dict(query(seeded_dsn, ROWS))
    assert len(after) == len(before)
    assert after == before  # same ids, byte-identical rows
    assert query(seeded_dsn, "SELECT to_regclass('orders_archive')") == [(None,)]
    assert restored["rows"] >= archived


async def test_an_order_an_mes_transaction_keeps_locked_is_moved_back_once_released(seeded_dsn: str) -> None:
    before = dict(query(seeded_dsn, ROWS))
    mesdb_json(seeded_dsn, "split")
    ((order_id,),) = query(  # an archived order without history: the foreign keys validate regardless
        seeded_dsn,
        "SELECT id FROM orders_archive a WHERE NOT EXISTS (SELECT 1 FROM order_status_history h "
        "WHERE h.order_id = a.id) AND NOT EXISTS (SELECT 1 FROM price_calculations p "
        "WHERE p.order_id = a.id) ORDER BY id LIMIT 1",
    )
    with psycopg.connect(seeded_dsn) as mes:  # the legacy, mid-transaction on that order
        mes.execute("SELECT 1 FROM orders WHERE id = %s FOR UPDATE", (order_id,))
        unsplit = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mesdb", "--dsn", seeded_dsn, "--json", "unsplit",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

        async def only_the_locked_order_left() -> bool:
            return query(seeded_dsn, "SELECT count(*) FROM orders_archive") == [(1,)]

        await eventually(only_the_locked_order_left, timeout=60, what="every other order moved back")
        mes.commit()  # the MES transaction ends while unsplit is still running
    _, stderr = await unsplit.communicate()
    assert unsplit.returncode == 0, stderr.decode()
    assert dict(query(seeded_dsn, ROWS)) == before  # the once-locked order too
    assert query(seeded_dsn, "SELECT to_regclass('orders_archive')") == [(None,)]
