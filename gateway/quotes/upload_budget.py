"""How many quote-upload bytes one gateway process holds at once, in total and per partner.

A model is held in memory from its first byte until it is checked and queued. Without a bound,
one partner trickling many large uploads (one byte every few seconds, each just inside the
idle ``body_timeout``) holds as much memory as it likes and starves every other partner. So each
upload reserves its size before the body is read — its ``Content-Length``, or the route's
``max_body_bytes`` when the length is unknown (chunked, multipart without length) — and gives
it back when its answer is sent:

* above ``quotes.upload_partner_bytes`` for one partner: 429 ``uploads-in-progress`` (that
  partner's own concurrency; ``Retry-After``); operators have no share of their own;
* above ``quotes.upload_bytes`` for the process: 503 ``uploads-busy`` with ``Retry-After``;
* a body still arriving after ``quotes.upload_deadline`` seconds in all: 408.

Refusals are counted in ``gateway_upload_refusals_total{reason}``; the bytes reserved are
``gateway_upload_bytes_in_flight`` (both present from start-up).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gateway import metrics
from gateway.errors import GatewayError, RequestError


class UploadsBusy(GatewayError):
    """This gateway process already holds its budget of upload bytes (503)."""

    status = 503
    title = "Too many uploads in progress"
    type_slug = "uploads-busy"


class PartnerUploadsBusy(RequestError):
    """The caller already has its share of upload bytes in progress (429)."""

    status = 429
    title = "Too many uploads in progress"
    type_slug = "uploads-in-progress"


class UploadBudget:
    """Reservations of upload bytes of one process (the event loop's: no locking needed)."""

    def __init__(self, *, total: int, per_owner: int, retry_after: float = 5.0) -> None:
        self.total = total
        self.per_owner = per_owner
        self.retry_after = retry_after
        self.used = 0
        self._by_owner: dict[str, int] = {}
        self._refused = {r: metrics.UPLOAD_REFUSALS.labels(reason=r)
                         for r in ("process_budget", "partner_budget", "deadline")}
        self._gauge = metrics.UPLOAD_BYTES_IN_FLIGHT

    def deadline_passed(self) -> None:
        """Count an upload whose body did not arrive within the deadline."""
        self._refused["deadline"].inc()

    @contextmanager
    def reserve(self, owner: str | None, size: int) -> Iterator[None]:
        """Hold ``size`` bytes for ``owner`` (a partner; ``None``: operators, who have no share of
        their own) while the block runs; refuse when over a budget."""
        key = owner or ""
        held = self._by_owner.get(key, 0)
        if owner is not None and held + size > self.per_owner and held > 0:  # one alone always fits
            self._refused["partner_budget"].inc()
            raise PartnerUploadsBusy(f"{held} bytes of uploads of yours are still in progress; send the "
                                     "next one when one of them is answered", retry_after=self.retry_after)
        if self.used + size > self.total and self.used > 0:
            self._refused["process_budget"].inc()
            raise UploadsBusy("the gateway is receiving as many uploads as it takes; try again shortly",
                              retry_after=self.retry_after)
        self.used += size
        self._by_owner[key] = held + size
        self._gauge.inc(size)
        try:
            yield
        finally:
            self.used -= size
            self._gauge.dec(size)
            left = self._by_owner[key] - size
            if left:
                self._by_owner[key] = left
            else:
                del self._by_owner[key]
