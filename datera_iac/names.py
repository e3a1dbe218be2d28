"""One mapping between the core's snake_case names and the camelCase names users write.

Every option and property has one name in the core (``san_ip``, ``datera_503_interval``,
``size``): the cinder.conf option name or the kind's field name, which the Terraform schema
uses as is. The Pulumi schema, Pulumi YAML stacks, Python programs' ``datera:`` config and
``-c datera:<option>`` spell it in camelCase (``sanIp``, ``datera503Interval``). This module
is the only place that converts between the two; it imports nothing of ours, so every layer
may use it.

A digit run is a word of its own where the snake name says so: ``datera_503_interval`` <->
``datera503Interval``, while ``sha256`` stays ``sha256``. ``tests/test_names.py`` checks
``snake(camel(n)) == n`` for every option and every field of every kind.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = ["camel", "did_you_mean", "resolve", "snake"]

_CAMEL_RE = re.compile(r"_([a-z0-9])")
# a word boundary before each capital, and before a digit run that a capital follows
# (datera503Interval -> datera_503_interval; sha256 and v2 stay whole)
_SNAKE_RE = re.compile(r"(?<!^)(?=[A-Z])|(?<=[a-z])(?=[0-9]+[A-Z])")


def camel(name: str) -> str:
    """snake_case -> camelCase: ``datera_503_interval`` -> ``datera503Interval``."""
    return _CAMEL_RE.sub(lambda m: m.group(1).upper(), name)


def snake(name: str) -> str:
    """camelCase (or snake_case) -> snake_case: ``datera503Interval`` -> ``datera_503_interval``."""
    return _SNAKE_RE.sub("_", name).lower()


def resolve(name: str, known: Iterable[str]) -> str | None:
    """The known snake_case name ``name`` spells (snake or camel), or None."""
    names = set(known)
    if name in names:
        return name
    s = snake(name)
    return s if s in names else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest known name, else `` (known: a, b, ...)``."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if not names:
        return " (none is declared)"
    return f" (known: {', '.join(names)})"
