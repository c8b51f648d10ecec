"""Loss accounting: what clients were told was accepted, checked against the systems' own records.

* every CRM order answered ``202`` has a record in the CRM (its order hash) and exists in the
  MES database exactly once (``source='crm'``, ``external_ref`` = the CRM order id), or sits in the
  relay's dead-letter stream with a reason;
* every partner order answered ``201`` exists in the MES database (by id), and no model name of the
  run appears on two orders (the load generator names every order uniquely);
* every quote answered ``202`` is ``done`` with one completion in the job store, or ``failed`` in the
  dead-letter set with a reason;
* no webhook id was delivered twice with different results.

:func:`drain` waits (bounded) for what is still legitimately in flight when the load stops: CRM
orders still on the stream, quote jobs still queued or waiting for a retry.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from legacy_sim.crm.intake import ORDER_KEY_PREFIX as CRM_RECORD
from loadtests.chaos.figures import Request

CRM_DEAD = "crm:orders:dead"


@dataclass(frozen=True)
class Accepted:
    """What the clients were told was accepted during the run, with when (request start)."""

    crm: dict[str, float]       # CRM order id → time
    orders: dict[str, float]    # MES order id (partner 201) → time
    quotes: dict[str, float]    # job id → time

    @classmethod
    def from_journal(cls, requests: Iterable[Request]) -> Accepted:
        crm: dict[str, float] = {}
        orders: dict[str, float] = {}
        quotes: dict[str, float] = {}
        for r in requests:
            if r.ident is None:
                continue
            if r.name.startswith("crm POST /orders") and r.status == 202:
                crm[r.ident] = r.start
            elif r.name == "partner POST /orders" and r.status == 201:
                orders[r.ident] = r.start
            elif r.name == "partner POST /quotes" and r.status == 202:
                quotes[r.ident] = r.start
        return cls(crm=crm, orders=orders, quotes=quotes)


@dataclass
class Findings:
    """Per accepted item: what went wrong (empty lists and zeros are the goal)."""

    crm_lost: list[str] = field(default_factory=list)          # 202 but not in the MES, not dead-lettered
    crm_dead_lettered: list[str] = field(default_factory=list)
    crm_unrecorded: list[str] = field(default_factory=list)    # 202 but the CRM has no record of it
    crm_status_not_delivered: list[str] = field(default_factory=list)  # the CRM never heard it was delivered
    crm_duplicates: list[str] = field(default_factory=list)    # in the MES more than once
    orders_lost: list[str] = field(default_factory=list)       # 201 but no such MES order
    order_copies: list[tuple[str, int, float]] = field(default_factory=list)  # model name, copies, created
    quotes_lost: list[str] = field(default_factory=list)       # 202 but no job record
    quotes_unfinished: list[str] = field(default_factory=list)  # still queued/running after the drain
    quotes_dead_lettered: list[str] = field(default_factory=list)
    quotes_failed_without_reason: list[str] = field(default_factory=list)
    quotes_completed_twice: list[str] = field(default_factory=list)
    webhook_conflicts: list[str] = field(default_factory=list)  # one id, different results
    webhook_repeats: int = 0                                    # same result delivered again (at least once)
    mes_orders_in_run: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    """``orders`` and, once the database kit split it, ``orders_archive``."""
    rows = conn.execute("SELECT relname FROM pg_class WHERE relname IN ('orders', 'orders_archive') "
                        "AND relkind IN ('r', 'p')").fetchall()
    return sorted(str(r[0]) for r in rows)


def _mes_crm_counts(conn: psycopg.Connection[Any], ids: Sequence[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for table in _tables(conn):
        rows = conn.execute(f"SELECT external_ref, count(*) FROM {table} "  # noqa: S608 (two fixed names)
                            "WHERE source = 'crm' AND external_ref = ANY(%s) GROUP BY external_ref",
                            (list(ids),)).fetchall()
        for ref, n in rows:
            counts[str(ref)] += int(n)
    return counts


def _mes_order_ids(conn: psycopg.Connection[Any], ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    wanted = [int(i) for i in ids if i.isdigit()]
    for table in _tables(conn):
        rows = conn.execute(f"SELECT id FROM {table} WHERE id = ANY(%s)", (wanted,)).fetchall()  # noqa: S608
        found |= {str(r[0]) for r in rows}
    return found


def _copies(conn: psycopg.Connection[Any], since: float) -> tuple[list[tuple[str, int, float]], int]:
    """Model names of this run on more than one order (and how many orders the run created)."""
    copies: list[tuple[str, int, float]] = []
    total = 0
    for table in _tables(conn):
        rows = conn.execute(
            f"SELECT model_name, count(*), extract(epoch FROM min(created_at)) FROM {table} "  # noqa: S608
            "WHERE created_at >= to_timestamp(%s) AND (model_name LIKE 'part-%%' OR model_name LIKE 'crm-%%' "
            "OR model_name LIKE 'burst-%%') GROUP BY model_name", (since,)).fetchall()
        for name, n, created in rows:
            total += int(n)
            if int(n) > 1:
                copies.append((str(name), int(n), float(created)))
    return copies, total


def _dead_crm_ids(client: redis.Redis) -> set[str]:
    """CRM order ids in the relay's dead-letter stream."""
    out: set[str] = set()
    try:
        for _entry, fields in client.xrange(CRM_DEAD, count=100_000) or []:
            for key, value in (fields or {}).items():
                if _text(key) in ("crm_order_id", "id") or _text(value).startswith("CRM-"):
                    out.add(_text(value))
    except redis.RedisError:
        pass
    return out


def drain(accepted: Accepted, *, dsn: str, crm_redis: str, pricing_redis: str, timeout: float) -> float:
    """Wait until every accepted CRM order is in the MES and every quote job has ended; seconds waited."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                in_mes = _mes_crm_counts(conn, list(accepted.crm))
            crm_left = [i for i in accepted.crm if not in_mes.get(i)]
            pricing = redis.Redis.from_url(pricing_redis, socket_timeout=5)
            try:
                statuses = _job_statuses(pricing, list(accepted.quotes))
            finally:
                pricing.close()
            jobs_left = [j for j, st in statuses.items() if st in ("queued", "running")]
            if not crm_left and not jobs_left:
                break
        except (psycopg.Error, redis.RedisError, OSError):
            pass
        time.sleep(1.0)
    return round(time.monotonic() - started, 1)


def _job_statuses(client: redis.Redis, ids: Sequence[str]) -> dict[str, str]:
    pipe = client.pipeline(transaction=False)
    for job in ids:
        pipe.hget(f"pricing:job:{job}", "status")
    return {job: _text(st) for job, st in zip(ids, pipe.execute(), strict=True)}


def reconcile(accepted: Accepted, *, dsn: str, crm_redis: str, pricing_redis: str, webhooks: Path,
              since: float) -> Findings:
    """The findings after the drain (see the module docstring)."""
    f = Findings()
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        in_mes = _mes_crm_counts(conn, list(accepted.crm))
        found = _mes_order_ids(conn, list(accepted.orders))
        f.order_copies, f.mes_orders_in_run = _copies(conn, since)
    crm = redis.Redis.from_url(crm_redis, socket_timeout=10)
    try:
        dead = _dead_crm_ids(crm)
        pipe = crm.pipeline(transaction=False)
        for crm_id in accepted.crm:
            pipe.hget(CRM_RECORD + crm_id, "status")
        recorded = {i: _text(st) for i, st in zip(accepted.crm, pipe.execute(), strict=True)}
    finally:
        crm.close()
    for crm_id in accepted.crm:
        n = in_mes.get(crm_id, 0)
        if n > 1:
            f.crm_duplicates.append(crm_id)
        elif n == 0:
            (f.crm_dead_lettered if crm_id in dead else f.crm_lost).append(crm_id)
        if not recorded.get(crm_id):
            f.crm_unrecorded.append(crm_id)
        elif recorded[crm_id] != "DELIVERED":
            f.crm_status_not_delivered.append(crm_id)
    f.orders_lost = sorted(set(accepted.orders) - found)
    _reconcile_quotes(f, accepted, pricing_redis)
    _reconcile_webhooks(f, webhooks)
    return f


def _reconcile_quotes(f: Findings, accepted: Accepted, pricing_redis: str) -> None:
    client = redis.Redis.from_url(pricing_redis, socket_timeout=10)
    try:
        ids = list(accepted.quotes)
        pipe = client.pipeline(transaction=False)
        for job in ids:
            pipe.hmget(f"pricing:job:{job}", "status", "completions", "error")
            pipe.zscore("pricing:dead", job)
        replies = pipe.execute()
    finally:
        client.close()
    for i, job in enumerate(ids):
        (status, completions, error), dead = replies[2 * i], replies[2 * i + 1]
        st = _text(status)
        if not st:
            f.quotes_lost.append(job)
        elif st in ("queued", "running"):
            f.quotes_unfinished.append(job)
        elif st == "failed":
            (f.quotes_dead_lettered if dead is not None and _text(error) else
             f.quotes_failed_without_reason).append(job)
        elif st == "done" and int(_text(completions) or "0") > 1:
            f.quotes_completed_twice.append(job)


def _reconcile_webhooks(f: Findings, webhooks: Path) -> None:
    results: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
    if webhooks.exists():
        for line in webhooks.read_text().splitlines():
            d = json.loads(line)
            results[str(d["id"])].append((str(d.get("status")), str(d.get("price"))))
    for job, outcomes in results.items():
        if len(set(outcomes)) > 1:
            f.webhook_conflicts.append(job)
        f.webhook_repeats += len(outcomes) - len(set(outcomes))


def attribute(times: dict[str, float], ids: Iterable[str],
              segments: Sequence[tuple[str, float, float]]) -> Counter[str]:
    """How many of ``ids`` were accepted in each named segment ``(name, start, end)``."""
    out: Counter[str] = Counter()
    for i in ids:
        t = times.get(i)
        for name, start, end in segments:
            if t is not None and start <= t < end:
                out[name] += 1
                break
        else:
            out["(outside the windows)"] += 1
    return out
