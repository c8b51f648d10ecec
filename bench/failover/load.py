"""Open-loop traffic at fixed rates through the two gateways (and into the CRM), every answer kept.

Each stream sends at its rate whatever the answers (a slow answer does not slow the sender: the
failover window gets the same offered load as the steady state); at most ``MAX_OPEN`` requests of
a stream are open at once, beyond that a tick is skipped and counted (``skipped``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from bench.failover.stack import Stack
from legacy_sim.pricing.samples import box_stl_binary

MAX_OPEN = 256
TIMEOUT = aiohttp.ClientTimeout(total=30)


@dataclass(frozen=True, slots=True)
class Answer:
    """One request: when it was sent (wall clock), how long it took, status (0 = no HTTP answer)."""

    sent: float
    took: float
    status: int
    ref: str = ""  # quote job id / CRM order id when accepted


@dataclass
class Stream:
    """The answers of one kind of request."""

    name: str
    answers: list[Answer] = field(default_factory=list)
    skipped: int = 0

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for a in self.answers:
            counts[a.status] = counts.get(a.status, 0) + 1
        return dict(sorted(counts.items()))


Send = Callable[[aiohttp.ClientSession, int], Awaitable[tuple[int, str]]]


async def paced(stream: Stream, rate: float, send: Send, stop: asyncio.Event) -> None:
    """Call ``send`` ``rate`` times a second until ``stop`` is set (then wait for the open ones)."""
    open_requests: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        sent, started = time.time(), time.monotonic()
        try:
            status, ref = await send(session, n)
        except (aiohttp.ClientError, TimeoutError):
            status, ref = 0, ""
        stream.answers.append(Answer(sent, time.monotonic() - started, status, ref))

    async with aiohttp.ClientSession(timeout=TIMEOUT,
                                     connector=aiohttp.TCPConnector(limit=MAX_OPEN)) as session:
        start = time.monotonic()
        for n in itertools.count():
            if stop.is_set():
                break
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(open_requests) >= MAX_OPEN:
                stream.skipped += 1
                continue
            task = asyncio.create_task(one(session, n))
            open_requests.add(task)
            task.add_done_callback(open_requests.discard)
        if open_requests:
            await asyncio.wait(open_requests)


def partner_get(stack: Stack, role: str) -> Send:
    """``GET /partner/v1/orders`` with ``role``'s key, alternating between the gateways."""
    async def send(session: aiohttp.ClientSession, n: int) -> tuple[int, str]:
        gw = stack.gateways[n % len(stack.gateways)]
        headers = {"X-API-Key": stack.keys[role]}
        async with session.get(f"{gw.external}/partner/v1/orders", headers=headers) as r:
            body = await r.read()
            return r.status, _detail(r.status, body)
    return send


def _detail(status: int, body: bytes) -> str:
    """A 5xx's problem detail (what the report lists), else nothing."""
    return body[:300].decode(errors="replace") if status >= 500 else ""


def model(n: int) -> bytes:
    """A distinct box per ``n`` (so every job costs one legacy calculation of its own)."""
    return box_stl_binary(10 + n % 40, 100 + (n // 40) % 40, 200 + n // 1600)  # no two alike, none rotated


def quote_post(stack: Stack, offset: int) -> Send:
    """``POST /partner/v1/quotes`` of a model no other request of the run sends; ref = job id."""
    async def send(session: aiohttp.ClientSession, n: int) -> tuple[int, str]:
        gw = stack.gateways[n % len(stack.gateways)]
        headers = {"X-API-Key": stack.keys["quotes"], "Content-Type": "model/stl"}
        async with session.post(f"{gw.external}/partner/v1/quotes?material=PLA", data=model(offset + n),
                                headers=headers) as r:
            if r.status >= 500:
                return r.status, _detail(r.status, await r.read())
            body = await r.json(content_type=None) if r.status in (200, 202) else {}  # 200: already priced
            return r.status, str(body.get("id", ""))
    return send


def crm_post(stack: Stack) -> Send:
    """``POST /orders`` on the CRM stand-in; ref = the CRM order id of a 202."""
    async def send(session: aiohttp.ClientSession, n: int) -> tuple[int, str]:
        body = {"customer": f"failover-{n}", "material": "PLA", "quantity": 1, "model_name": f"m{n}.stl"}
        async with session.post(f"{stack.crm}/orders", json=body) as r:
            answer = await r.json(content_type=None) if r.status == 202 else {}
            return r.status, str(answer.get("crm_order_id", ""))
    return send


async def saturate(send: Send, seconds: float, concurrency: int = 32) -> float:
    """Closed-loop ``concurrency`` senders for ``seconds``: successful answers per second."""
    done = 0
    deadline = time.monotonic() + seconds
    counter = itertools.count()

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            status, _ = await send(session, next(counter))
            done += status < 400
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))
    return done / seconds
