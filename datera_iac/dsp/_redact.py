"""The one masking function: every log line, error body and debug dump goes through it.

Why one function: a secret masked in one place and forgotten in another is still leaked.
:func:`redact` masks values under secret-looking keys (passwords, CHAP ``*_pswd``, API keys,
``Auth-Token`` headers, the login response ``key``) at any depth, and replaces the clear
text of known secrets wherever it appears inside strings, mapping keys included (an error
message that echoes a password, a URL that carries a token).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "is_secret_key", "redact"]

MASK = "***"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?$|passw|pswd|secret|token|^key$|api[_-]?key|access[_-]?key|credential)",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key (body field or header name) holds a secret."""
    return bool(_SECRET_KEY.search(key))


def redact(value: Any, secrets: Iterable[str | None] = ()) -> Any:
    """A copy of ``value`` safe to log: secret keys masked, known secrets removed from text.

    ``value`` may be a mapping, list, tuple, string or scalar; ``secrets`` are clear-text
    values (the password, the session key) to strip from any string. Never raises.
    """
    known = sorted({s for s in secrets if s}, key=len, reverse=True)
    return _redact(value, known)


def _redact(value: Any, known: list[str]) -> Any:
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = _redact(k, known) if isinstance(k, str) else k
            if isinstance(k, str) and is_secret_key(k) and v not in (None, "", "(hidden)"):
                out[key] = MASK
            else:
                out[key] = _redact(v, known)
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v, known) for v in value)
    if isinstance(value, str):
        for secret in known:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    return value
