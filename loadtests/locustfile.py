"""The locustfile: the three users of the traffic mix, one load shape, the threshold hooks.

    LOADTEST_SHAPE=peak LOADTEST_TARGET=platform LOADTEST_PARTNER_KEYS_FILE=keys.json \\
        .venv/bin/locust -f loadtests/locustfile.py --headless

``python -m loadtests`` sets all of that up (keys, reports) — use it rather than this file.
Locust takes the first ``LoadTestShape`` it finds here, so exactly one is exposed: the one
named by ``$LOADTEST_SHAPE`` (normal, peak, spike, smoke).
"""

from __future__ import annotations

import os

from loadtests import hooks  # noqa: F401  (registers the event listeners)
from loadtests.scenarios import CrmIntakeUser, OperatorUser, PartnerUser
from loadtests.settings import SettingsError, settings
from loadtests.shapes import SHAPES

_shape = os.environ.get("LOADTEST_SHAPE", "normal")
if _shape not in SHAPES:
    raise SettingsError(f"LOADTEST_SHAPE must be one of {', '.join(SHAPES)}, got {_shape!r}")
_cfg = settings()
if _cfg.targets.mode == "platform" and _cfg.users["partner"].weight > 0:
    missing = [f"lt-partner-{n}" for n in range(1, _cfg.partners + 1)
               if f"lt-partner-{n}" not in _cfg.targets.partner_keys]
    if missing:
        raise SettingsError(f"no API key for {', '.join(missing)}: set LOADTEST_PARTNER_KEYS_FILE "
                            "(python -m loadtests creates the keys)")

Shape = SHAPES[_shape]

__all__ = ["CrmIntakeUser", "OperatorUser", "PartnerUser", "Shape"]
