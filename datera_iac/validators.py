"""The input rules every kind and the configuration share: name patterns, CHAP credentials,
the words read as booleans.

A leaf (imports only :mod:`datera_iac.errors`). Why one module: a rule written twice drifts
(a CHAP secret was valid on a Volume and refused on a NodeAttachment), and a front end or
the configuration must reach the same rule without importing a resource kind.

Each validator factory returns an attrs validator ``(instance, attribute, value)`` that
raises :class:`~datera_iac.errors.InputError` naming the kind, the field and the fix,
and never echoes a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from datera_iac.errors import InputError

__all__ = [
    "AI_NAME_RE",
    "CHAP_SECRET_RULE",
    "CHAP_USER_RE",
    "NAME_FIX",
    "NAME_RE",
    "NotText",
    "SNAP_TS_RE",
    "chap_secret",
    "chap_user",
    "check",
    "parse_bool",
    "pattern",
    "structure_text",
]

#: Names of storage instances, volumes, templates, pools, snapshot policies, tenants and
#: CHAP users (v2.1 schema ``^[a-zA-Z_][a-zA-Z0-9_\-\.]{2,63}$``).
NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{2,63}$")
#: App-instance names: a DSP name or a UUID (the app_instance PUT schema).
AI_NAME_RE: Final = re.compile(
    r"^(?:[A-Za-z_][A-Za-z0-9_.\-]{2,63}|[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})$"
)
#: A snapshot key: seconds.fraction, as the DSP returns it (Cinder's manage-snapshot rule).
SNAP_TS_RE: Final = re.compile(r"^\d{10,}\.\d+$")
#: CHAP user names (the DSP's auth object: ``target_user_name``, ``initiator_user_name``).
CHAP_USER_RE: Final = NAME_RE
NAME_FIX: Final = ("use 3-64 letters, digits, '_', '-' or '.', starting with a letter or '_' "
                   "(the DSP's name rule)")
#: What a CHAP secret may be: 12-16 printable ASCII characters, no space. The DSP and most
#: initiators take 12-16 characters; iscsiadm and iscsid.conf take no blank.
CHAP_SECRET_RULE: Final = "12-16 printable ASCII characters, no spaces"
_SECRET_LENGTHS = range(12, 17)

Validator = Callable[[Any, Any, Any], None]


def check(kind: str, field: str, ok: bool, message: str, fix: str) -> None:
    """Raise an InputError unless ``ok``."""
    if not ok:
        raise InputError(message, kind=kind, field=field, fix=fix)


def pattern(kind: str, field: str, regex: re.Pattern[str], fix: str, *,
            optional: bool = False) -> Validator:
    """An attrs validator: the value is a string matching ``regex`` (None too when
    ``optional``)."""

    def validate(_inst: Any, _attr: Any, value: Any) -> None:
        if value is None and optional:
            return
        # fullmatch: with match, '$' also matches before a trailing newline
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise InputError(f"{value!r} is not allowed", kind=kind, field=field, fix=fix)

    return validate


def chap_user(kind: str, *, off: bool = False) -> Validator:
    """An attrs validator for a CHAP user name (None: unset). ``off``: ``""`` is allowed
    too (it turns CHAP off)."""

    def validate(_inst: Any, attr: Any, value: Any) -> None:
        if value is None or (off and value == ""):
            return
        pattern(kind, attr.name, CHAP_USER_RE, NAME_FIX)(_inst, attr, value)

    return validate


def chap_secret(kind: str) -> Validator:
    """An attrs validator for a CHAP secret (None: unset): see :data:`CHAP_SECRET_RULE`.
    The message never holds the value."""

    def validate(_inst: Any, attr: Any, value: Any) -> None:
        if value is None:
            return
        ok = (isinstance(value, str) and len(value) in _SECRET_LENGTHS
              and all("!" <= c <= "~" for c in value))
        check(kind, attr.name, ok, f"a CHAP secret must be {CHAP_SECRET_RULE}",
              "choose 12-16 letters, digits or punctuation (the DSP's and most initiators' "
              "limit)")

    return validate


_TRUE: Final = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE: Final = frozenset({"0", "false", "no", "off", "n", "f"})


def parse_bool(value: Any) -> bool:
    """A boolean written as a bool or as text (``true/false``, ``yes/no``, ``on/off``,
    ``1/0``, ``y/n``, ``t/f``, any case): the configuration, stack-file config values,
    program config and the kinds' boolean inputs all read it this way. Raises ValueError
    ("expected true or false") for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    raise ValueError("expected true or false")


class NotText(ValueError):
    """A list or mapping where text was expected (its message is the one to show)."""


def structure_text(value: Any, _type: Any = str) -> str:
    """The cattrs hook for ``str``: text, or a number or boolean written unquoted (``10``,
    ``yes`` in YAML, a DSP's numeric version) as its text. cattrs alone takes anything as
    ``str(value)``: a list or mapping given by mistake became its printed form
    (``"['a', 'b']"``), stored and sent as such. Raises :class:`NotText` for those."""
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        what = "a mapping" if isinstance(value, Mapping) else "a list"
        raise NotText(f"expected a string, got {what}")
    return value if isinstance(value, str) else str(value)
