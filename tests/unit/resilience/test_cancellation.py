"""A loop whose cancellation is swallowed on the way (as CPython 3.11's ``asyncio.wait_for`` does when
the inner task finishes in the same iteration: redis-py's writes) still ends, and stopping is bounded."""

from __future__ import annotations

import asyncio

from resilience.cancellation import cancel_and_wait, stop_requested


async def _swallowing_call(entered: asyncio.Event) -> None:
    """A library call that returns normally although it was cancelled."""
    entered.set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        return


async def test_a_loop_checking_stop_requested_ends_although_the_cancellation_was_swallowed() -> None:
    entered, passes = asyncio.Event(), []

    async def loop() -> None:
        while not stop_requested():
            passes.append(1)
            await _swallowing_call(entered)

    task = asyncio.create_task(loop())
    await entered.wait()
    assert await cancel_and_wait(task, within=5)
    assert passes == [1]
    assert not task.cancelled()


async def test_cancel_and_wait_gives_up_on_a_task_that_ignores_its_cancellation() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():  # ignores stop_requested(): what the old loops did
            await _swallowing_call(entered)

    task = asyncio.create_task(stubborn())
    await entered.wait()
    assert not await cancel_and_wait(task, within=0.05)
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.done()


async def test_cancel_and_wait_of_no_task_or_a_failed_one_is_done() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    assert await cancel_and_wait(None, within=1)
    assert await cancel_and_wait(task, within=1)  # its exception retrieved, not raised
