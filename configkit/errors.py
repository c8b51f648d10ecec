"""``ConfigError``: one class for every bad setting, its message ``<full path>: <problem>``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def join_path(prefix: str, path: str) -> str:
    """``clusters.mes`` + ``timeouts.connect`` → ``clusters.mes.timeouts.connect``; ``[0]`` joins bare."""
    if not prefix:
        return path
    if not path:
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


class ConfigError(ValueError):
    """A setting is invalid; ``path`` names it in full, ``problem`` says what is wrong with it."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)

    def under(self, prefix: str) -> ConfigError:
        """The same error, one level deeper: its path prefixed with ``prefix``."""
        return ConfigError(join_path(prefix, self.path), self.problem)


@contextmanager
def within(prefix: str) -> Iterator[None]:
    """Errors raised inside name their path under ``prefix`` (for checks that know only the field)."""
    try:
        yield
    except ConfigError as exc:
        raise exc.under(prefix) from None
