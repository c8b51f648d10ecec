"""A logging filter that keeps secrets (API keys, tokens, passwords) out of every log line."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[REDACTED]"
# field names (any case, any separator) whose values are secrets
_SECRET_KEY = re.compile(
    r"(authorization|api[-_.]?key|password|passwd|secret|token|cookie|dsn|pepper|credential|private[-_.]?key)",
    re.I)
# secrets inside free text: "Authorization: Token xyz", "Bearer xyz", "access_token=xyz",
# '"password": "xyz"' (JSON), URLs with user:pass@ (also an empty user: redis://:pw@host)
_QUOTE_SEP = r"[\"']?\s*[=:]\s*[\"']?"
_SECRET_TEXT = (
    (re.compile(r"(?i)\b((?:proxy-)?authorization|(?:set-)?cookie)(" + _QUOTE_SEP + r")[^\r\n\"']+"),
     r"\1\2" + REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"(?i)\b((?:[a-z0-9]+[-_.])*(?:api[-_]?key|password|passwd|secret|token))(" + _QUOTE_SEP
                + r")[^\s,;&\"']+"),
     r"\1\2" + REDACTED),
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/\s@]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
)
_STD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message"}


def redact_text(text: str) -> str:
    """Mask secrets that appear inside free text."""
    for pattern, repl in _SECRET_TEXT:
        text = pattern.sub(repl, text)
    return text


def redact_value(key: str, value: Any) -> Any:
    """Mask ``value`` if ``key`` names a secret; recurse into mappings and lists (items keep ``key``)."""
    if _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(key, v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFilter(logging.Filter):
    """Rewrites the record in place: secret-named extra fields and secrets in the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        for key, value in list(vars(record).items()):
            if key not in _STD_ATTRS:
                setattr(record, key, redact_value(key, value))
        return True
