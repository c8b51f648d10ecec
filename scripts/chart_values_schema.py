"""values.schema.json of the Helm chart, generated from values.yaml: each key's type from its default,
its description from the comment line above it (a key without one is an error), unknown keys refused
except in free-form maps (defaults `{}`, or keys that are label names). Helm checks values against it
on install, upgrade, lint and template, so a misspelt key fails instead of being ignored.

    python scripts/chart_values_schema.py           # rewrite deploy/helm/mes-edge/values.schema.json
    python scripts/chart_values_schema.py --check   # exit 1 when the file is stale or a key is undocumented
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1] / "deploy" / "helm" / "mes-edge"
_KEY = re.compile(r"^( *)([A-Za-z0-9_.\-/]+):(?: |$)")


def descriptions(text: str) -> dict[str, str]:
    """Dotted key path → the comment line just above it; ValueError naming keys without one."""
    found: dict[str, str] = {}
    missing: list[str] = []
    stack: list[tuple[int, str]] = []
    previous = ""
    item_indent: int | None = None  # inside a list item: its lines are data (a peer, a rule), not keys
    for line in text.splitlines():
        if not line.strip():
            continue
        indent_now = len(line) - len(line.lstrip())
        if item_indent is not None and indent_now > item_indent:
            continue
        item_indent = indent_now if line.lstrip().startswith("- ") else None
        m = _KEY.match(line)
        if m and not line.lstrip().startswith("#"):
            indent, key = len(m.group(1)), m.group(2)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            path = ".".join([k for _, k in stack] + [key])
            comment = previous.strip()
            if comment.startswith("#"):
                found[path] = comment.lstrip("# ").strip()
            else:
                missing.append(path)
            stack.append((indent, key))
        previous = line
    if missing:
        raise ValueError(f"values.yaml keys without a comment line above: {missing}")
    return found


def _schema(value: Any, path: str, docs: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if path in docs:
        out["description"] = docs[path]
    if isinstance(value, bool):
        out["type"] = "boolean"
    elif isinstance(value, int):
        out["type"] = "integer"
    elif isinstance(value, float):
        out["type"] = "number"
    elif isinstance(value, str):
        out["type"] = "string"
    elif isinstance(value, list):
        out["type"] = "array"
    elif isinstance(value, dict):
        out["type"] = "object"
        if not value or any("/" in k for k in value):  # free-form: labels, annotations, env, selectors
            return out
        out["properties"] = {k: _schema(v, f"{path}.{k}" if path else k, docs) for k, v in value.items()}
        out["additionalProperties"] = False
    return out


def generate() -> str:
    text = (CHART / "values.yaml").read_text()
    schema = {"$schema": "https://json-schema.org/draft-07/schema#", "title": "mes-edge chart values",
              **_schema(yaml.safe_load(text), "", descriptions(text))}
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    target = CHART / "values.schema.json"
    try:
        wanted = generate()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.check:
        if not target.exists() or target.read_text() != wanted:
            print(f"{target} is stale: run python scripts/chart_values_schema.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
