"""What each CLI sub-command does once its arguments are parsed."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

import redis.asyncio as aioredis

from legacy_sim.events import log_event
from legacy_sim.serve import run_async, serve_until_signal

logger = logging.getLogger("legacy_sim.commands")


async def _mes(args: argparse.Namespace) -> None:
    from legacy_sim.mes import MesConfig, build_mes_app

    config = MesConfig(dsn=args.dsn, instance_id=args.instance_id, pool_min_size=args.pool_min,
                       pool_max_size=args.pool_max, statement_timeout_s=args.statement_timeout,
                       price_delay_s=args.price_delay, price_delay_per_ktri_s=args.price_delay_per_ktri,
                       price_slots=args.price_slots, max_model_bytes=int(args.max_model_mb * 1024 * 1024),
                       request_delay_s=args.request_delay)
    app = build_mes_app(config, crm_redis_url=args.redis_url if args.consume_crm else None)
    await serve_until_signal(app, args.host, args.port, name=f"legacy MES {args.instance_id}")


async def _crm(args: argparse.Namespace) -> None:
    from legacy_sim.crm import CrmConfig, build_crm_app

    await serve_until_signal(build_crm_app(CrmConfig(redis_url=args.redis_url)), args.host, args.port,
                             name="legacy CRM")


async def _crm_consumer(args: argparse.Namespace) -> None:
    import signal

    from legacy_sim.mes import MesConfig
    from legacy_sim.mes.crm_consumer import ConsumerConfig, CrmConsumer
    from legacy_sim.mes.db import open_pool

    if args.metrics_port is not None:
        from telemetry import start_metrics_server

        server, _ = start_metrics_server(args.metrics_port)
        log_event(logger, f"metrics on 127.0.0.1:{server.server_port}/metrics", action="service-start",
                  fields={"server.port": server.server_port})
    pool = await open_pool(MesConfig(dsn=args.dsn, instance_id=args.instance_id))
    client = aioredis.Redis.from_url(args.redis_url)
    consumer = CrmConsumer(client, pool, ConsumerConfig(consumer=args.instance_id,
                                                        reclaim_idle_ms=int(args.reclaim_idle * 1000)))
    task = asyncio.create_task(consumer.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await client.aclose()
        await pool.close()


async def _orders_in_table(dsn: str) -> int:
    """How many orders the MES database holds already (0 before the MES created its schema)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT to_regclass('orders')") is None:
            return 0
        return int(await conn.fetchval("SELECT count(*) FROM orders"))
    finally:
        await conn.close()


async def _seed(args: argparse.Namespace) -> None:
    """Fill the table up to ``--orders`` (orders already there count), or add that many (``--append``).

    So the README's order works (a few orders created with curl, then the seed) and running the
    seed twice does not double the data.
    """
    from legacy_sim.seed import seed

    existing = 0 if args.append else await _orders_in_table(args.dsn)
    orders = args.orders - existing
    if orders <= 0:
        print(f"legacy_sim seed: the orders table holds {existing:,} orders already (--orders "
              f"{args.orders:,}): nothing to add (--append adds --orders more)", file=sys.stderr)
        return
    if existing:
        print(f"legacy_sim seed: the orders table holds {existing:,} orders; adding {orders:,} to reach "
              f"--orders {args.orders:,}", file=sys.stderr)
    active = min(args.active, orders, round(args.active * orders / args.orders))  # the same share
    report = await seed(args.dsn, orders=orders, active=active, seed_value=args.seed,
                        append=args.append or existing > 0)
    print(json.dumps({"counts": report.counts, "history_rows": report.history_rows,
                      "seconds": {"orders": round(report.seconds_orders, 2),
                                  "history": round(report.seconds_history, 2),
                                  "analyze": round(report.seconds_analyze, 2)}}, indent=2))


_COMMANDS = {"mes": _mes, "crm": _crm, "crm-consumer": _crm_consumer, "seed": _seed}


def run(args: argparse.Namespace) -> int:
    """Run the sub-command named by ``args.command`` to completion."""
    run_async(lambda: _COMMANDS[args.command](args))
    return 0
