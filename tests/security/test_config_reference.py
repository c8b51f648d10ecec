"""docs/configuration.md documents every key the gateway accepts, with its default (issue 12, point 9).

The accepted keys are read from the parsers themselves, not from a list kept here: each section of
a minimal valid config gets an unknown key, and the parser's own error names the allowed keys
(``unknown key 'zz_probe' (allowed: …)``, the one format of ``configkit``). A key whose value is a
mapping with its own allowed keys is walked the same way, so new sections are found without
touching this test.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from gateway.errors import ConfigError

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"
PROBE = "zz_probe"
BASE: dict[str, Any] = {
    "listeners": {"external": {"port": 1}, "internal": {"port": 2}},
    "clusters": {"mes": {"endpoints": ["http://127.0.0.1:1"]}},
    "routes": [{"name": "r", "listener": "internal", "prefix": "/r", "cluster": "mes"}],
}
#: Sections whose entries are named by the user: walked through one example entry.
NAMED = {("listeners",): ("external", "internal"), ("clusters",): ("mes",), ("routes",): (0,)}
_ALLOWED = re.compile(r"unknown key '" + PROBE + r"' \(allowed: ([^)]*)\)")
_ROW = re.compile(r"^\| `([A-Za-z0-9_.<>\[\]]+)` \| ([^|]*) \|", re.M)

Path_ = tuple[str | int, ...]


def _parse_error(path: Path_) -> str:
    """The parser's error for BASE with ``{zz_probe: 1}`` merged in at ``path`` ('' if accepted)."""
    cfg = copy.deepcopy(BASE)
    if not path:
        cfg[PROBE] = 1
    else:
        node: Any = cfg
        for token in path[:-1]:
            node = node.setdefault(token, {}) if isinstance(token, str) else node[token]
        existing = node.get(path[-1]) if isinstance(node, dict) else node[path[-1]]
        node[path[-1]] = {**existing, PROBE: 1} if isinstance(existing, dict) else {PROBE: 1}
    try:
        parse_config(cfg)
    except ConfigError as exc:
        return str(exc)
    return ""


def _section_keys(path: Path_) -> set[str] | None:
    """The keys accepted at ``path``; None when the value there is not a mapping of known keys."""
    if found := _ALLOWED.search(_parse_error(path)):
        return {k.strip() for k in found.group(1).split(",")}
    return None


def _dotted(path: Path_) -> str:
    out = ""
    for i, token in enumerate(path):
        if isinstance(token, int):
            out += "[]"
        elif i == 1 and path[0] in ("clusters", "listeners"):
            out += ".<name>"
        else:
            out += ("." if out else "") + token
    return out


def accepted_keys() -> set[str]:
    """Every leaf key the parsers accept, as documented paths (``clusters.<name>.retry.attempts``)."""
    found: set[str] = set()

    def walk(path: Path_) -> None:
        for key in sorted(_section_keys(path) or ()):
            sub = (*path, key)
            if sub in NAMED:
                for entry in NAMED[sub]:
                    walk((*sub, entry))
            elif _section_keys(sub) is not None:
                walk(sub)
            else:
                found.add(_dotted(sub))

    walk(())
    return found


def documented_keys() -> dict[str, str]:
    """First cell → default cell of every table row in docs/configuration.md."""
    return {key: default.strip() for key, default in _ROW.findall(DOC.read_text(encoding="utf-8"))}


def test_config_reference_documents_every_accepted_key() -> None:
    missing = sorted(accepted_keys() - set(documented_keys()))
    assert not missing, f"docs/configuration.md lacks: {', '.join(missing)}"


def test_config_reference_documents_no_key_the_gateway_refuses() -> None:
    accepted = accepted_keys()
    sections = {key.rsplit(".", i)[0] for key in accepted for i in range(1, key.count(".") + 1)}
    stale = sorted(set(documented_keys()) - accepted - sections)
    assert not stale, f"docs/configuration.md documents keys the gateway refuses: {', '.join(stale)}"


def test_config_reference_states_a_default_for_every_key() -> None:
    documented = documented_keys()
    assert all(documented.values())
    # the keys the review found visible only in /config, with the defaults the code applies
    assert documented["clusters.<name>.retry.backoff_base"] == "`0.025`"
    assert documented["clusters.<name>.retry.backoff_max"] == "`0.25`"
    assert documented["clusters.<name>.health_check.expected_statuses"] == "`[200, 399]`"
    assert documented["clusters.<name>.health_check.jitter"] == "`0.1`"
    assert documented["clusters.<name>.outlier.consecutive_gateway_failures"] == "off"
    assert documented["listeners.<name>.keepalive_timeout"] == "`75`"
    assert documented["listeners.<name>.max_header_bytes"] == "`8190`"
