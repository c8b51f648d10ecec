"""The one way every deployable validates its configuration (YAML sections and command lines).

* :class:`ConfigError` — the one exception for a bad setting, whatever the package; its message
  names the full path of the setting first: ``listeners.external.port: expected an integer,
  got 8080.7`` (a command-line option is its path: ``--relay-timeout: must be > 0, got 0``).
* :class:`Section` — a YAML mapping read key by key into typed values: unknown keys are refused
  with the allowed ones listed, numbers are strict (no ``8080.7`` → 8080, no ``true`` → 1, no
  ``"80"`` → 80), and every error names ``path.key``.
* the value checks (:func:`integer`, :func:`number`, …) that :class:`Section` uses, for values
  outside a mapping (list items, ``__post_init__`` checks of frozen dataclasses) — their errors
  name the field, and :func:`within` prefixes the path of the section around it.

Why a small shared helper rather than msgspec or pydantic: ``bench/config_startup.py`` and
``docs/configuration.md`` (Validation) give the measured start-up cost and the reasons.
Imports only the standard library (the ground layer of docs/architecture.md): every package may
stand on it — gateway, sidecar, legacy_adapters, telemetry.
"""

from configkit.errors import ConfigError, join_path, within
from configkit.section import Section, field_names
from configkit.values import (
    check,
    choice,
    flag,
    integer,
    mapping,
    number,
    shown,
    string_list,
    text,
)

__all__ = [
    "ConfigError",
    "Section",
    "check",
    "choice",
    "field_names",
    "flag",
    "integer",
    "join_path",
    "mapping",
    "number",
    "shown",
    "string_list",
    "text",
    "within",
]
