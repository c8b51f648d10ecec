"""Legacy pricing over HTTP: ``POST {base}/price?material=…`` with the STL body (the legacy MES API)."""

from __future__ import annotations

import json

import aiohttp

from legacy_adapters.backend import (
    BackendUnavailableError,
    PermanentPricingError,
    PriceResult,
    TransientPricingError,
)

#: Statuses after which the same request may succeed later.
_TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})
#: The sidecar's problem+json member ``reason`` when it could not connect to its legacy instance.
_NOT_REACHED = "connect_error"


def _not_reached(status: int, text: str) -> bool:
    """A sidecar's 502 saying it never reached the legacy (``reason: connect_error``)."""
    if status != 502:
        return False
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("reason") == _NOT_REACHED


class HttpBackend:
    """One pooled ``ClientSession`` to a legacy MES (or a sidecar in front of one)."""

    def __init__(self, base_url: str, *, timeout: float = 1800.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=5.0)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def price(self, model: bytes, *, material: str) -> PriceResult:
        """Call the legacy synchronous calculation (minutes) and translate its answer."""
        try:
            async with self._client().post(f"{self.base_url}/price", params={"material": material},
                                           data=model, headers={"Content-Type": "model/stl"}) as resp:
                text = await resp.text()
                if resp.status == 200:
                    return PriceResult.from_json(await resp.json(content_type=None))
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
            raise BackendUnavailableError(f"legacy pricing unreachable: {type(exc).__name__}: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientPricingError(f"legacy pricing unreachable: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # not JSON
            raise TransientPricingError(f"legacy pricing answered garbage: {exc}") from exc
        detail = text[:300].replace("\n", " ")
        if _not_reached(resp.status, text):
            raise BackendUnavailableError(f"legacy pricing unreachable behind its sidecar: {detail}")
        if resp.status == 503:  # the legacy itself cannot serve now (its database is down …)
            raise BackendUnavailableError(f"legacy pricing unavailable (503): {detail}")
        if resp.status in _TRANSIENT:
            raise TransientPricingError(f"legacy pricing answered {resp.status}: {detail}")
        raise PermanentPricingError(f"legacy pricing refused the model ({resp.status}): {detail}")

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
