"""Load-test settings: the traffic mix (``mix.yaml`` + env overrides) and the target URLs.

Read once per process (``settings()``); no Locust import, so the runner, the capacity report
and pytest can use it too. Every target must be a loopback address: load is never sent
anywhere else.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MIX = PACKAGE_DIR / "mix.yaml"
SCENARIOS = ("partner", "operator", "crm")
TARGETS = ("platform", "legacy")
SHAPE_NAMES = ("normal", "peak", "spike", "smoke")


class SettingsError(ValueError):
    """A bad mix file, environment variable or target; the message names it."""


@dataclass(frozen=True, kw_only=True)
class UserMix:
    """One scenario's Locust weight, think time range (s) and task weights."""

    weight: int
    think: tuple[float, float]
    tasks: Mapping[str, int]


@dataclass(frozen=True, kw_only=True)
class QuoteMix:
    """How partners quote: catalogue re-use, polling, turnaround bound."""

    repeat_share: float
    catalogue_size: int
    poll_interval: float
    timeout: float
    material: str


@dataclass(frozen=True, kw_only=True)
class ShapeSettings:
    """Levels and durations of the load shapes (s)."""

    users: int
    duration: float
    ramp: float
    spike_factor: float
    spike_at: float
    spike_length: float
    smoke_users: int
    smoke_duration: float

    def duration_of(self, shape: str) -> float:
        """How long the shape named ``shape`` runs (s)."""
        return self.smoke_duration if shape == "smoke" else self.duration

    def peak_users(self, shape: str) -> int:
        """The most users the shape named ``shape`` runs at once."""
        factor = {"peak": 2.0, "spike": max(self.spike_factor, 1.0)}.get(shape, 1.0)
        return self.smoke_users if shape == "smoke" else max(1, round(self.users * factor))


@dataclass(frozen=True, kw_only=True)
class Targets:
    """Where each scenario sends its requests.

    ``platform``: partners → external listener, operators and CRM intake → internal listener.
    ``legacy``: today's world — partners and operators call the MES directly (synchronous
    ``POST /price``), CRM intake calls the CRM.
    """

    mode: str
    external_url: str
    internal_url: str
    mes_urls: tuple[str, ...]
    crm_url: str
    partner_keys: Mapping[str, str]
    #: ``$LOADTEST_CALLBACK_URL``: quotes ask for a webhook there (the chaos harness's receiver)
    callback_url: str = ""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a load-test process needs to know."""

    users: Mapping[str, UserMix]
    think_scale: float
    partners: int
    operator_statuses: Mapping[str, int]
    cancel_share: float
    quotes: QuoteMix
    shapes: ShapeSettings
    targets: Targets
    max_requests: int


def _pairs(text: str, name: str) -> dict[str, str]:
    """``a=1,b=2`` → ``{"a": "1", "b": "2"}`` (scenario names checked)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in SCENARIOS:
            raise SettingsError(f"{name}: expected scenario=value pairs ({', '.join(SCENARIOS)}), "
                                f"got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _think(value: Any, where: str) -> tuple[float, float]:
    if isinstance(value, str):
        value = value.replace("-", ",").split(",")
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise SettingsError(f"{where}: think time must be [min, max] seconds, got {value!r}") from None
    if not 0 <= low <= high:
        raise SettingsError(f"{where}: think time needs 0 <= min <= max, got {low}, {high}")
    return low, high


def _user_mixes(raw: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, UserMix]:
    weights = _pairs(env.get("LOADTEST_WEIGHTS", ""), "LOADTEST_WEIGHTS")
    thinks = _pairs(env.get("LOADTEST_THINK", ""), "LOADTEST_THINK")
    mixes = {}
    for scenario in SCENARIOS:
        user = raw["users"][scenario]
        weight = int(weights.get(scenario, user["weight"]))
        if weight < 0:
            raise SettingsError(f"users.{scenario}.weight must be >= 0")
        think = _think(thinks.get(scenario, user["think"]), f"users.{scenario}.think")
        tasks = {str(k): int(v) for k, v in raw["tasks"][scenario].items()}
        mixes[scenario] = UserMix(weight=weight, think=think, tasks=tasks)
    return mixes


def check_loopback(url: str, name: str) -> str:
    """Return ``url`` without a trailing slash; refuse anything but a loopback http URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback:
        raise SettingsError(f"{name}: load tests target loopback http URLs only, got {url!r}")
    return url.rstrip("/")


def _partner_keys(env: Mapping[str, str]) -> dict[str, str]:
    path = env.get("LOADTEST_PARTNER_KEYS_FILE")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"LOADTEST_PARTNER_KEYS_FILE: cannot read {path}: {exc}") from None
    return {str(k): str(v) for k, v in data.items()}


def targets_from_env(env: Mapping[str, str]) -> Targets:
    """The targets named by ``LOADTEST_*`` variables (defaults: the ``make run`` ports)."""
    mode = env.get("LOADTEST_TARGET", "platform")
    if mode not in TARGETS:
        raise SettingsError(f"LOADTEST_TARGET must be one of {', '.join(TARGETS)}, got {mode!r}")
    mes = env.get("LOADTEST_MES_URLS", "http://127.0.0.1:9101")
    return Targets(
        mode=mode,
        external_url=check_loopback(env.get("LOADTEST_EXTERNAL_URL", "http://127.0.0.1:8080"),
                                    "LOADTEST_EXTERNAL_URL"),
        internal_url=check_loopback(env.get("LOADTEST_INTERNAL_URL", "http://127.0.0.1:8081"),
                                    "LOADTEST_INTERNAL_URL"),
        mes_urls=tuple(check_loopback(u, "LOADTEST_MES_URLS") for u in mes.split(",") if u.strip()),
        crm_url=check_loopback(env.get("LOADTEST_CRM_URL", "http://127.0.0.1:9201"), "LOADTEST_CRM_URL"),
        partner_keys=_partner_keys(env),
        callback_url=env.get("LOADTEST_CALLBACK_URL", ""),
    )


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Parse the mix file named by ``$LOADTEST_MIX_FILE`` (default ``mix.yaml``) with env overrides."""
    env = os.environ if env is None else env
    path = Path(env.get("LOADTEST_MIX_FILE") or DEFAULT_MIX)
    raw = yaml.safe_load(path.read_text())
    try:
        q, s = raw["quotes"], raw["shapes"]
        shapes = ShapeSettings(
            users=int(env.get("LOADTEST_USERS", s["users"])),
            duration=float(env.get("LOADTEST_DURATION", s["duration"])),
            ramp=float(env.get("LOADTEST_RAMP", s["ramp"])),
            spike_factor=float(s["spike_factor"]), spike_at=float(s["spike_at"]),
            spike_length=float(s["spike_length"]), smoke_users=int(s["smoke_users"]),
            smoke_duration=float(env.get("LOADTEST_SMOKE_DURATION", s["smoke_duration"])))
        result = Settings(
            users=_user_mixes(raw, env),
            think_scale=float(env.get("LOADTEST_THINK_SCALE", raw.get("think_scale", 1.0))),
            partners=int(env.get("LOADTEST_PARTNERS", raw["partners"])),
            operator_statuses={str(k): int(v) for k, v in raw["operator_statuses"].items()},
            cancel_share=float(raw["cancel_share"]),
            quotes=QuoteMix(repeat_share=float(q["repeat_share"]), catalogue_size=int(q["catalogue_size"]),
                            poll_interval=float(q["poll_interval"]), timeout=float(q["timeout"]),
                            material=str(q["material"])),
            shapes=shapes,
            targets=targets_from_env(env),
            max_requests=int(env.get("LOADTEST_MAX_REQUESTS", "200000")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SettingsError(f"{path}: {exc.__class__.__name__}: {exc}") from None
    if result.partners < 1 or shapes.users < 1 or shapes.duration <= 0 or result.max_requests < 1:
        raise SettingsError(f"{path}: partners, users, duration and LOADTEST_MAX_REQUESTS must be positive")
    return result


@functools.cache
def settings() -> Settings:
    """The settings of this process (parsed once)."""
    return load()
