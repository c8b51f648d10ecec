"""An endpoint that reads each request head, then closes the connection without an answer.

    async with drops_after_reading() as (url, heads):   # heads: every request head it read
        ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

__all__ = ["drops_after_reading"]


@asynccontextmanager
async def drops_after_reading() -> AsyncIterator[tuple[str, list[bytes]]]:
    """Listen on an ephemeral loopback port; yields (base URL, request heads read so far)."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError, asyncio.IncompleteReadError):
            heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", heads
    finally:
        server.close()
        await server.wait_closed()
