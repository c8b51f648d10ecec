"""``Section``: one YAML mapping at a known path, read key by key into typed values."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar, cast

from configkit import values
from configkit.errors import ConfigError, join_path

_T = TypeVar("_T")
_MISSING: Any = object()


@functools.cache
def _init_fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if f.init)


def field_names(cls: type, *, without: Iterable[str] = ()) -> frozenset[str]:
    """The keyword arguments of a dataclass (the keys its section accepts), minus ``without``."""
    return _init_fields(cls) - frozenset(without) if without else _init_fields(cls)


class Section:
    """A mapping at ``path`` (absent/null → empty) with only ``allowed`` keys; typed getters.

    A getter returns ``default`` for an absent key (the default is not checked: it is the code's);
    a present key is checked strictly and its error names ``path.key``. ``null`` means absent only
    where the default is None (``access_log:``); elsewhere it is a wrong type (``port:``).
    """

    def __init__(self, data: object, path: str, allowed: Iterable[str]) -> None:
        self.path = path
        self.data: Mapping[str, Any] = {} if data is None else values.mapping(data, path, allowed)

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def at(self, key: str) -> str:
        """The full path of ``key``."""
        return join_path(self.path, key)

    def error(self, key: str, problem: str) -> ConfigError:
        """A ``ConfigError`` naming ``key`` (``""``: the section itself)."""
        return ConfigError(self.at(key), problem)

    def get(self, key: str, default: Any = None) -> Any:
        """The raw value (for values with their own parser, which is given ``at(key)``)."""
        return self.data.get(key, default)

    def check(self, condition: bool, key: str, problem: str) -> None:
        """Raise ``ConfigError(path.key, problem)`` unless ``condition`` holds (a rule across keys)."""
        if not condition:
            raise self.error(key, problem)

    def require(self, *keys: str) -> None:
        """Each of ``keys`` must be present."""
        for key in keys:
            if key not in self.data:
                raise self.error(key, "is required")

    def section(self, key: str, allowed: Iterable[str]) -> Section:
        """The nested mapping at ``key``."""
        return Section(self.data.get(key), self.at(key), allowed)

    def _value(self, key: str, default: object) -> Any:
        value = self.data.get(key, _MISSING)
        return _MISSING if value is None and default is None else value

    def _checked(self, check: Callable[..., Any], value: object, key: str, **options: Any) -> Any:
        # the path is joined only for an error: a config of hundreds of routes reads thousands of keys
        try:
            return check(value, key, **options)
        except ConfigError as exc:
            raise exc.under(self.path) from None

    def integer(self, key: str, default: _T, *, minimum: int | None = None,
                maximum: int | None = None) -> int | _T:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        return cast(int, self._checked(values.integer, value, key, minimum=minimum, maximum=maximum))

    def number(self, key: str, default: _T, *, minimum: float | None = None, maximum: float | None = None,
               above: float | None = None, below: float | None = None) -> float | _T:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        return cast(float, self._checked(values.number, value, key, minimum=minimum, maximum=maximum,
                                         above=above, below=below))

    def flag(self, key: str, default: _T) -> bool | _T:
        value = self._value(key, default)
        return default if value is _MISSING else cast(bool, self._checked(values.flag, value, key))

    def text(self, key: str, default: _T, *, non_empty: bool = False, numbers: bool = False) -> str | _T:
        value = self._value(key, default)
        if value is _MISSING or (type(value) is str and not non_empty):  # the common case, first
            return default if value is _MISSING else value
        return cast(str, self._checked(values.text, value, key, non_empty=non_empty, numbers=numbers))

    def choice(self, key: str, default: _T, choices: Collection[str]) -> str | _T:
        value = self._value(key, default)
        return default if value is _MISSING else cast(str, self._checked(values.choice, value, key,
                                                                           choices=choices))

    def optional_text(self, key: str, default: str | None = None) -> str | None:
        """A string, or None when absent, ``null`` or empty (``${VAR:-}`` left unset)."""
        value = self.data.get(key, default)
        if value is None or value == "":
            return None
        return cast(str, self._checked(values.text, value, key))

