"""Secrets: how they are recognized and masked, in one place.

A leaf (imports nothing of ours). Why one module: a secret masked in one place and
forgotten in another is still leaked, and a mask spelled differently in each layer makes
a leak hard to grep for.

* :data:`MASK` replaces a secret in logs, error text, debug dumps and command lines.
* :data:`SHOWN` stands for a secret value in plans, diffs and diagnostics a user reads.
* :data:`CONF_MASK` stands for a password in an emitted cinder.conf (a placeholder the
  operator replaces; it must not parse as the real value).

Why three strings and not one: each is what users see in its place and tests pin it -
``***`` in logs, error text and ``Secret(***)`` (tests/dsp/test_redact.py,
tests/pulumi/test_codec.py), ``(sensitive)`` in plans and diagnostics, as Terraform and
Pulumi print secrets (tests/test_base.py, tests/engine/test_show_calls.py), ``********``
in cinder.conf, as Cinder's own sample config shows a password (tests/cinder/). No other
mask string exists; tests/test_masks.py fails on a mask literal outside this module.
:data:`DSP_HIDDEN` is not ours: it is what the DSP returns for a password.
* :func:`redact` masks values under secret-looking keys (passwords, CHAP ``*_pswd``, API
  keys, ``Auth-Token`` headers, the login response ``key``) at any depth, and the clear text
  of known secrets wherever it appears inside strings, mapping keys included.
* :func:`mask_text` replaces the clear text of known secrets in one string.
* :func:`redact_url` masks the password of a ``scheme://user:password@host`` URL.
* :func:`new_chap_secret` makes a CHAP secret the DSP and initiators accept (12-16
  characters), from the operating system's random source.
"""

from __future__ import annotations

import re
import secrets as _random
import string
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["CHAP_SECRET_LENGTHS", "CONF_MASK", "DSP_HIDDEN", "MASK", "SHOWN", "is_secret_key",
           "mask_text", "new_chap_secret", "redact", "redact_url"]

MASK: Final = "***"
SHOWN: Final = "(sensitive)"
CONF_MASK: Final = "********"
#: What the DSP returns in place of a password (``target_pswd``, ``initiator_pswd``).
DSP_HIDDEN: Final = "(hidden)"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?$|passw|pswd|secret|token|^key$|api[_-]?key|access[_-]?key|credential)",
    re.IGNORECASE,
)


#: The lengths a CHAP secret may have (the DSP's and most initiators' rule).
CHAP_SECRET_LENGTHS: Final = range(12, 17)
_CHAP_ALPHABET: Final = string.ascii_letters + string.digits


def new_chap_secret(length: int = 16) -> str:
    """A random CHAP secret of ``length`` letters and digits (``secrets.choice``: the
    operating system's random source). Raises ValueError outside 12-16."""
    if length not in CHAP_SECRET_LENGTHS:
        raise ValueError(f"a CHAP secret has 12 to 16 characters, not {length}")
    return "".join(_random.choice(_CHAP_ALPHABET) for _ in range(length))


def is_secret_key(key: str) -> bool:
    """Whether a mapping key (body field or header name) holds a secret."""
    return bool(_SECRET_KEY.search(key))


def _known(secrets: Iterable[str | None], min_len: int = 1) -> list[str]:
    """The secrets worth replacing, longest first (so a secret containing another is
    replaced whole)."""
    return sorted({s for s in secrets if s and len(s) >= min_len}, key=len, reverse=True)


def mask_text(text: str, secrets: Iterable[str | None], *, mask: str = MASK,
              min_len: int = 1) -> str:
    """``text`` with every occurrence of each secret (at least ``min_len`` long) masked."""
    return _mask(text, _known(secrets, min_len), mask)


def _mask(text: str, known: list[str], mask: str) -> str:
    for secret in known:
        if secret in text:
            text = text.replace(secret, mask)
    return text


def redact(value: Any, secrets: Iterable[str | None] = (), *, mask: str = MASK) -> Any:
    """A copy of ``value`` safe to log: secret keys masked, known secrets removed from text.

    ``value`` may be a mapping, list, tuple, string or scalar; ``secrets`` are clear-text
    values (the password, the session key) to strip from any string; ``mask`` replaces
    them (a plan shows :data:`SHOWN`). Never raises.
    """
    return _redact(value, _known(secrets), mask)


def _redact(value: Any, known: list[str], mask: str = MASK) -> Any:
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = _redact(k, known, mask) if isinstance(k, str) else k
            if isinstance(k, str) and is_secret_key(k) and v not in (None, "", DSP_HIDDEN):
                out[key] = mask
            else:
                out[key] = _redact(v, known, mask)
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v, known, mask) for v in value)
    if isinstance(value, str):
        return _mask(value, known, mask)
    return value


def redact_url(url: str) -> str:
    """The URL with any password replaced by :data:`MASK` (for messages and logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", lambda m: f"{m.group(1)}:{MASK}@", url)
