"""The outcome of checking one request against all of its windows."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.ratelimit.policy import Window


@dataclass(frozen=True, slots=True)
class Decision:
    """``allowed`` only if every window allowed; then every window counted the request once."""

    allowed: bool
    windows: tuple[Window, ...]
    remaining: tuple[int, ...]
    reset_in: tuple[float, ...]  # seconds until each window's remaining quota grows again

    @property
    def violated(self) -> tuple[str, ...]:
        return tuple(w.name for w, r in zip(self.windows, self.remaining, strict=True) if r <= 0)
