"""``python -m legacy_adapters.worker``: one pricing worker process (start as many as you like).

    python -m legacy_adapters.worker --redis-url redis://127.0.0.1:6379/2 \
        --backend http://127.0.0.1:9111 --concurrency 1 --metrics-port 9301

SIGTERM/SIGINT: stop taking jobs, let running ones finish for ``--grace-period`` seconds, hand
the rest back to the queue at once, exit 0. Bad settings exit 2 naming the option.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import sys

from configkit import ConfigError, check, integer, number
from contracts.webhook_secrets import STORE_ENV, WebhookSecretStore
from legacy_adapters import metrics
from legacy_adapters.backend_spec import backend_from_spec
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.redis_keys import MAX_SHARDS
from legacy_adapters.shards import ShardedQueue
from legacy_adapters.webhooks import WebhookNotifier
from legacy_adapters.worker_health import WorkerHealth
from sharedstate.errors import REDIS_ERRORS
from sharedstate.redis_spec import parse_redis_spec
from sharedstate.usage_counts import DEFAULT_PREFIX, UsageCounts
from telemetry import setup_logging, setup_tracing, start_metrics_server

log = logging.getLogger("legacy_adapters.worker")
DEV_ENV = "MES_EDGE_DEV"
#: The global webhook secret ``make run`` used to set; refused unless ``--dev``/``MES_EDGE_DEV=1``.
DEV_WEBHOOK_SECRET = ("PRICING_WEBHOOK_SECRET", "dev-webhook-secret")
#: The removed global webhook secret: ignored (with a warning); secrets are per partner now.
LEGACY_SECRET_ENV = DEV_WEBHOOK_SECRET[0]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; every one also has an environment default."""
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m legacy_adapters.worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", default=env("PRICING_REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--prefix", default=env("PRICING_PREFIX", "pricing"), help="Redis key prefix")
    p.add_argument("--shards", type=int, default=int(env("PRICING_SHARDS", "1")),
                   help="queue shards to serve (>= the gateways' quotes.shards; docs/redis.md)")
    p.add_argument("--backend", default=env("PRICING_BACKEND"),
                   help="http(s)://legacy-mes (POST /price) or package.module:function")
    p.add_argument("--backend-timeout", type=float, default=1800.0, help="s per legacy call (HTTP)")
    p.add_argument("--concurrency", type=int, default=int(env("PRICING_CONCURRENCY", "1")))
    p.add_argument("--name", default=env("PRICING_WORKER_NAME", f"{socket.gethostname()}-{os.getpid()}"))
    p.add_argument("--visibility-timeout", type=float, default=30.0,
                   help="s without a lease renewal before another worker reclaims a job")
    p.add_argument("--max-attempts", type=int, default=5)
    p.add_argument("--retry-base", type=float, default=1.0, help="s, first retry back-off (doubles)")
    p.add_argument("--retry-max", type=float, default=60.0, help="s, back-off cap")
    p.add_argument("--grace-period", type=float, default=30.0, help="s to finish running jobs on SIGTERM")
    p.add_argument("--cache-ttl", type=int, default=30 * 86400, help="s a computed price is reused")
    p.add_argument("--usage-redis-url", default=env("GATEWAY_USAGE_REDIS_URL"),
                   help="count priced models per partner per day here: the gateway's usage.redis_url "
                        "(docs/partner-api.md#usage); unset: not counted")
    p.add_argument("--usage-prefix", default=env("GATEWAY_USAGE_PREFIX", DEFAULT_PREFIX),
                   help="the gateway's usage.key_prefix")
    p.add_argument("--usage-retention-days", type=int, default=400, help="the gateway's usage.retention_days")
    p.add_argument("--metrics-port", type=int, default=None, help="serve /metrics on this port")
    p.add_argument("--metrics-host", default="127.0.0.1")
    p.add_argument("--log-level", default=env("LOG_LEVEL", "INFO"))
    p.add_argument("--allow-private-callbacks", action="store_true",
                   default=env("PRICING_ALLOW_PRIVATE_CALLBACKS", "") in ("1", "true", "yes"),
                   help="deliver webhooks to private/loopback addresses too (default: public only)")
    p.add_argument("--webhook-secrets", default=env(STORE_ENV),
                   help="per-partner webhook secrets file, written by `python -m gateway.api_keys` "
                        "(no file: this worker delivers no webhooks)")
    p.add_argument("--webhook-timeout", type=float, default=10.0, help="s per webhook attempt")
    p.add_argument("--webhook-concurrency", type=int, default=32, help="webhook deliveries at once")
    p.add_argument("--webhook-per-partner", type=int, default=2,
                   help="deliveries of one partner at once (a hanging endpoint holds only these)")
    p.add_argument("--wait-objectives", default=env("PRICING_WAIT_OBJECTIVES", ""),
                   help="tier=seconds,… : each tier's queue-wait objective (p95), its series at 0 from "
                        "start-up; other tiers are labelled 'other' (docs/pricing.md)")
    p.add_argument("--dev", action="store_true", default=env(DEV_ENV) == "1",
                   help=f"accept the known dev webhook secret (also {DEV_ENV}=1; make run sets it)")
    args = p.parse_args(argv)
    name, dev_value = DEV_WEBHOOK_SECRET
    if not args.dev and os.environ.get(name) == dev_value:
        print(f"pricing worker: refusing to start with a known default secret: {name} is the "
              f"`make run` dev value; set your own (e.g. `openssl rand -hex 32`). For local development "
              f"only, pass --dev or set {DEV_ENV}=1.", file=sys.stderr)
        raise SystemExit(2)
    try:
        check_settings(args)
    except ConfigError as exc:
        p.error(str(exc))
    return args


def check_settings(args: argparse.Namespace) -> None:
    """Bad settings fail here, naming their option (``--concurrency: must be >= 1, got 0``)."""
    check(bool(args.backend), "--backend", "is required (or $PRICING_BACKEND)")
    integer(args.shards, "--shards", minimum=1, maximum=MAX_SHARDS)
    for name in ("concurrency", "max_attempts", "webhook_concurrency", "webhook_per_partner"):
        integer(getattr(args, name), f"--{name.replace('_', '-')}", minimum=1)
    check(args.webhook_per_partner <= args.webhook_concurrency, "--webhook-per-partner",
          f"must be <= --webhook-concurrency ({args.webhook_concurrency}), got {args.webhook_per_partner}")
    number(args.visibility_timeout, "--visibility-timeout", above=0)
    number(args.webhook_timeout, "--webhook-timeout", above=0)
    args.wait_objectives = parse_objectives(args.wait_objectives)


def parse_objectives(text: str | dict[str, float]) -> dict[str, float]:
    """``gold=60,bronze=600`` → {tier: seconds}; a bad item names ``--wait-objectives``."""
    if isinstance(text, dict):
        return text
    objectives: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        tier, _, seconds = item.partition("=")
        check(bool(re.fullmatch(r"[a-z0-9_-]{1,32}", tier.strip())), "--wait-objectives",
              f"a tier is 1-32 of a-z 0-9 _ -, got {tier!r}")
        try:
            objectives[tier.strip()] = number(float(seconds), "--wait-objectives", above=0)
        except ValueError:
            check(False, "--wait-objectives", f"tier=seconds, got {item!r}")
    return objectives


async def run(args: argparse.Namespace, health: WorkerHealth | None = None) -> None:
    """Start the worker loop, the heartbeat and the webhook notifier; stop on SIGTERM/SIGINT."""
    health = health if health is not None else WorkerHealth()
    backend = backend_from_spec(args.backend, timeout=args.backend_timeout)
    queue = ShardedQueue.from_url(args.redis_url, prefix=args.prefix, shards=args.shards,
                                  setting="--redis-url")
    settings = WorkerSettings(name=args.name, concurrency=args.concurrency,
                              visibility_timeout=args.visibility_timeout, max_attempts=args.max_attempts,
                              retry_base=args.retry_base, retry_max=args.retry_max,
                              grace_period=args.grace_period, cache_ttl=args.cache_ttl,
                              tiers=metrics.watch_tiers(args.wait_objectives))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    usage = None  # priced models per partner per day, in the gateway's usage store
    if args.usage_redis_url:
        client = parse_redis_spec(args.usage_redis_url, "--usage-redis-url").client(socket_timeout=2.0,
                                                                                    socket_connect_timeout=2.0)
        usage = UsageCounts(client, prefix=args.usage_prefix, retention_days=args.usage_retention_days)
    tasks = [asyncio.create_task(QuoteWorker(queue, backend, settings, usage=usage).run(stop)),
             asyncio.create_task(_heartbeat(queue, args.name, stop, health)),
             asyncio.create_task(health.watch_loop(stop))]
    if os.environ.get(LEGACY_SECRET_ENV):
        log.warning("%s is ignored: webhooks are signed with per-partner secrets (--webhook-secrets)",
                    LEGACY_SECRET_ENV)
    if args.webhook_secrets:
        # a stat() per delivery: a rotation applies to the very next webhook
        secrets = WebhookSecretStore(args.webhook_secrets, check_interval=0.0)
        notifier = WebhookNotifier(queue, secrets,
                                   allow_private=args.allow_private_callbacks, timeout=args.webhook_timeout,
                                   max_in_flight=args.webhook_concurrency,
                                   per_partner=min(args.webhook_per_partner, args.webhook_concurrency))
        tasks.append(asyncio.create_task(notifier.run(stop)))
    else:
        log.warning("no --webhook-secrets (%s): this worker delivers no webhooks", STORE_ENV)
    log.info("pricing worker %s started", args.name, extra={
        "event.action": "service-start", "pricing.concurrency": args.concurrency})
    try:
        await asyncio.gather(*tasks)
    finally:
        with contextlib.suppress(*REDIS_ERRORS):  # Redis down at exit: the heartbeat expires by itself
            await queue.leave(args.name)
        await backend.aclose()
        await queue.aclose()
        if usage is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await usage.client.aclose()
        log.info("pricing worker %s stopped", args.name, extra={"event.action": "service-stop"})


async def _heartbeat(queue: ShardedQueue, name: str, stop: asyncio.Event, health: WorkerHealth) -> None:
    while not stop.is_set():
        try:
            await queue.heartbeat(name)
            health.heartbeat_succeeded()
        except Exception as exc:  # Redis down: the loop logs it too; keep beating
            log.warning("heartbeat failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5.0)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    setup_logging("pricing-worker", level=args.log_level)
    provider = setup_tracing("pricing-worker")
    health = WorkerHealth()
    if args.metrics_port is not None:  # /metrics, and /healthz + /readyz for the probes
        start_metrics_server(args.metrics_port, addr=args.metrics_host, health=health.checks())
    try:
        import uvloop
        uvloop.run(run(args, health))
    finally:
        if provider is not None:
            provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
