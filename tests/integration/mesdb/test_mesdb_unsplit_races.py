"""``mesdb unsplit`` while the archiver keeps running: no order is ever lost (the archiver's
batches stop while the rollback holds the kit's move lock; the archive is dropped only empty)."""

from __future__ import annotations

import threading

import psycopg

from mesdb import split
from mesdb.db import connect
from mesdb.errors import KitError
from tests.integration.mesdb.conftest import mesdb_json, query
from tests.integration.mesdb.test_mesdb_split import ROWS


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
