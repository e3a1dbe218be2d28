"""The Pulumi wire format for property values: ``google.protobuf.Struct`` with two markers.

The engine sends and expects plain JSON-like structs in which

* a *secret* is ``{SIG: SECRET_SIG, "value": <v>}`` (only once the provider has said
  ``acceptSecrets`` in Configure), and
* an *unknown* (a value only known after another resource is created, seen in preview) is
  the string :data:`UNKNOWN`.

This module turns those structs into Python values with :class:`Secret` wrappers and the
:data:`UNKNOWN` marker and back, and reads a resource's URN (:func:`urn_type`,
:func:`urn_name`). It does not use
``PropertyValue.computed()`` from ``pulumi.provider.experimental``, which cannot be
marshalled in pulumi 3.272; the unknown sentinel string is what the engine itself sends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
from google.protobuf import struct_pb2

from datera_iac.resources.plan import holds_unknown
from datera_iac.secrets import MASK

__all__ = [
    "SIG",
    "SECRET_SIG",
    "UNKNOWN",
    "Secret",
    "decode",
    "encode",
    "has_unknown",
    "is_secret",
    "reveal",
    "urn_name",
    "urn_type",
]

#: The key that marks a special object in a struct.
SIG = "4dabf18193072939515e22adb298388d"
#: The value of :data:`SIG` for a secret.
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
#: The string that stands for a value not known yet (preview).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@attrs.frozen(repr=False)
class Secret:
    """A value the engine must keep encrypted and mask. ``repr`` never shows it."""

    value: Any

    def __repr__(self) -> str:
        return f"Secret({MASK})"


def _from_value(v: struct_pb2.Value) -> Any:
    which = v.WhichOneof("kind")
    if which is None or which == "null_value":
        return None
    if which == "bool_value":
        return v.bool_value
    if which == "number_value":
        n = v.number_value
        # Struct has only doubles; give integral numbers back as int so an int field
        # written 10 does not arrive as 10.0.
        return int(n) if math.isfinite(n) and n == int(n) else n
    if which == "string_value":
        return v.string_value
    if which == "list_value":
        return [_from_value(x) for x in v.list_value.values]
    fields = v.struct_value.fields
    if SIG in fields:
        sig = fields[SIG].string_value
        if sig == SECRET_SIG:
            return Secret(_from_value(fields["value"]) if "value" in fields else None)
        raise ValueError(
            f"unsupported special value (signature {sig}): datera resources take only "
            "plain values, secrets and unknowns"
        )
    return {k: _from_value(x) for k, x in fields.items()}


def decode(struct: struct_pb2.Struct | None) -> dict[str, Any]:
    """A Struct from the engine as a dict; secrets become :class:`Secret`, unknowns
    stay the :data:`UNKNOWN` string."""
    if struct is None:
        return {}
    return {k: _from_value(v) for k, v in struct.fields.items()}


def _to_value(x: Any, out: struct_pb2.Value) -> None:
    if isinstance(x, Secret):
        inner = out.struct_value.fields
        inner[SIG].string_value = SECRET_SIG
        _to_value(x.value, inner["value"])
    elif x is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(x, bool):
        out.bool_value = x
    elif isinstance(x, (int, float)):
        out.number_value = float(x)
    elif isinstance(x, str):
        out.string_value = x
    elif isinstance(x, Mapping):
        out.struct_value.Clear()
        for k, v in x.items():
            _to_value(v, out.struct_value.fields[str(k)])
    elif isinstance(x, (list, tuple)):
        out.list_value.Clear()
        for v in x:
            _to_value(v, out.list_value.values.add())
    else:
        raise TypeError(f"cannot send a {type(x).__name__} to the Pulumi engine")


def encode(props: Mapping[str, Any]) -> struct_pb2.Struct:
    """A dict (with :class:`Secret` and :data:`UNKNOWN`) as a Struct for the engine."""
    s = struct_pb2.Struct()
    for k, v in props.items():
        _to_value(v, s.fields[k])
    return s


def is_secret(x: Any) -> bool:
    """True when ``x`` is or contains a secret."""
    if isinstance(x, Secret):
        return True
    if isinstance(x, Mapping):
        return any(is_secret(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return any(is_secret(v) for v in x)
    return False


def has_unknown(x: Any) -> bool:
    """True when ``x`` is or contains an unknown (also inside a :class:`Secret`)."""
    return holds_unknown(x, lambda v: has_unknown(v.value) if isinstance(v, Secret)
                         else isinstance(v, str) and v == UNKNOWN)


def reveal(x: Any) -> Any:
    """``x`` with every :class:`Secret` wrapper removed (for handing to the core)."""
    if isinstance(x, Secret):
        return reveal(x.value)
    if isinstance(x, Mapping):
        return {k: reveal(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [reveal(v) for v in x]
    return x


def urn_type(urn: str) -> str:
    """The type token of a URN ``urn:pulumi:stack::project::[parent$]type::name``."""
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""


def urn_name(urn: str) -> str:
    """The resource's logical name from its URN."""
    parts = urn.split("::")
    return "::".join(parts[3:]) if len(parts) >= 4 else urn
