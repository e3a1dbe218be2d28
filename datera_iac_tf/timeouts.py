"""``timeouts = { create = "10m" }`` -> :class:`datera_iac.resources.base.Timeouts`.

Durations use Terraform's (Go's) syntax: a sequence of ``<number><unit>`` with units
``ms``, ``s``, ``m``, ``h`` (``90s``, ``10m``, ``1h30m``, ``1.5h``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from datera_iac.errors import InputError
from datera_iac.resources.base import Timeouts

__all__ = ["parse_duration", "timeouts_from"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_KEYS = tuple(f.name for f in attrs.fields(Timeouts))


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration. Raises ValueError with the accepted forms."""
    s = text.strip()
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(f"{text!r} is not a duration (write e.g. 30s, 10m, 1h30m)")
    if total <= 0:
        raise ValueError(f"{text!r}: a timeout must be longer than 0s")
    return total


def timeouts_from(value: Mapping[str, str] | None, *, kind: str | None = None) -> Timeouts:
    """Build Timeouts from the resource's ``timeouts`` map (None: the defaults).

    Raises :class:`InputError` naming ``timeouts.<key>``."""
    if not value:
        return Timeouts()
    out = {}
    for key, raw in value.items():
        if key not in _KEYS:
            raise InputError(
                f"unknown timeout {key!r}", kind=kind, field=f"timeouts.{key}",
                fix=f"use one of {', '.join(_KEYS)}",
            )
        try:
            out[key] = parse_duration(str(raw))
        except ValueError as e:
            raise InputError(str(e), kind=kind, field=f"timeouts.{key}",
                             fix="write a duration such as 30s, 10m or 1h30m") from None
    return Timeouts(**out)
