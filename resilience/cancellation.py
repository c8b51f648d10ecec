"""Stopping background loops when a cancellation can be lost on the way.

On CPython 3.11 ``asyncio.wait_for`` returns its inner result when the cancellation arrives in the
same loop iteration as the inner task finishes (CPython gh-86296, fixed in 3.12 where ``wait_for``
is built on ``asyncio.timeout``). redis-py wraps every socket write in ``wait_for`` when the client
has a ``socket_timeout``, so a task cancelled during a Redis call may just return from it and go
on; redis-py's Cluster client may also turn the cancellation into a ``ConnectionError``, which a
loop that survives Redis outages catches. Either way the cancellation is gone, the loop runs on,
and whoever awaited the task after cancelling it waits forever (a gateway once needed > 30 s to
stop: its usage flusher, every 50 ms a Redis call, had swallowed the cancel).

``task.cancelling()`` still counts the request after it was swallowed, so:

* a loop that runs until cancelled tests :func:`stop_requested` on every pass;
* whoever stops it uses :func:`cancel_and_wait`, which waits a bounded time.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_and_wait", "stop_requested"]


def stop_requested() -> bool:
    """True if the current task was asked to stop, even if the ``CancelledError`` was swallowed."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def cancel_and_wait(task: asyncio.Task[Any] | None, *, within: float) -> bool:
    """Cancel ``task`` and wait for it at most ``within`` seconds; False if it still runs then.

    Its result or exception is retrieved (nothing is logged as "never retrieved")."""
    if task is None:
        return True
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        return False
    if not task.cancelled():
        task.exception()
    return True
