"""Strict checks of single values; each returns the value typed or raises ``ConfigError(path, …)``.

Numbers are strict: an integer setting takes a YAML integer only (not ``8080.7``, not ``8080.0``,
not ``true``, not ``"8080"``); a number setting takes an integer or a finite float (not a bool,
not a string, not ``.nan``/``.inf``) and is returned as a float.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from configkit.errors import ConfigError, join_path

_SHOWN_CHARS = 40


def shown(value: object) -> str:
    """A value as the message shows it: YAML spelling of scalars, strings quoted and shortened."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 3] + "...")
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple | set | frozenset):
        return "a list"
    return type(value).__name__


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _check_bounds(value: float, path: str, minimum: float | None, maximum: float | None,
                  above: float | None, below: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ConfigError(path, f"must be >= {_bound(minimum)}, got {shown(value)}")
    if above is not None and value <= above:
        raise ConfigError(path, f"must be > {_bound(above)}, got {shown(value)}")
    if maximum is not None and value > maximum:
        raise ConfigError(path, f"must be <= {_bound(maximum)}, got {shown(value)}")
    if below is not None and value >= below:
        raise ConfigError(path, f"must be < {_bound(below)}, got {shown(value)}")


def integer(value: object, path: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A YAML integer within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"expected an integer, got {shown(value)}")
    _check_bounds(value, path, minimum, maximum, None, None)
    return value


def number(value: object, path: str, *, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, below: float | None = None) -> float:
    """A finite YAML integer or float, returned as a float; ``above``/``below`` are exclusive bounds."""
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value))):
        raise ConfigError(path, f"expected a number, got {shown(value)}")
    _check_bounds(value, path, minimum, maximum, above, below)
    return float(value)


def flag(value: object, path: str) -> bool:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        raise ConfigError(path, f"expected true or false, got {shown(value)}")
    return value


def text(value: object, path: str, *, non_empty: bool = False, numbers: bool = False) -> str:
    """A string (``numbers=True``: a YAML number is taken as its text, e.g. ``rules_version: 3``)."""
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ConfigError(path, f"expected a string, got {shown(value)}")
    if non_empty and not value.strip():
        raise ConfigError(path, "must not be empty")
    return value


def choice(value: object, path: str, choices: Collection[str]) -> str:
    """One of ``choices`` (listed in their given order in the message)."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(path, f"must be one of {', '.join(choices)}, got {shown(value)}")
    return value


def string_list(value: object, path: str, *, non_empty: bool = False) -> list[str]:
    """A list of non-empty strings; an item's error names it (``path[2]``)."""
    if not isinstance(value, list):
        raise ConfigError(path, f"expected a list of strings, got {shown(value)}")
    if non_empty and not value:
        raise ConfigError(path, "must not be empty")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():  # the item's path only for an error
            text(item, join_path(path, f"[{i}]"), non_empty=True)
    return value


def mapping(value: object, path: str, allowed: Iterable[str] | None = None) -> Mapping[str, Any]:
    """A mapping whose keys are all ``allowed`` (None: any key)."""
    if not isinstance(value, Mapping):
        raise ConfigError(path or "<root>", f"expected a mapping, got {shown(value)}")
    if allowed is not None:
        allowed = allowed if isinstance(allowed, set | frozenset) else set(allowed)
        for key in value:
            if key not in allowed:
                known = sorted(allowed)
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(path or "<root>",
                                  f"unknown key {str(key)!r} (allowed: {', '.join(known)}){hint}")
    return value


def check(condition: bool, path: str, problem: str) -> None:
    """Raise ``ConfigError(path, problem)`` unless ``condition`` holds (cross-field rules)."""
    if not condition:
        raise ConfigError(path, problem)
