"""Python annotations of the core's attrs classes -> Terraform (cty) types.

The kinds keep their field types flat (``resources/base.py``): ``str``, ``int``, ``float``,
``bool``, ``list[str]``, ``dict[str, str]`` and ``X | None``. Literals and enums become the
type of their values. Anything else is a schema bug in the core, so it raises instead of
being guessed: the schema snapshot test then fails and names the field.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections import abc
from typing import Any

import attrs
from tf import types as tft

__all__ = [
    "Object",
    "UnsupportedType",
    "resolved_fields",
    "tf_type_for",
]


class UnsupportedType(TypeError):
    """A field type with no Terraform equivalent (a core change the adapter must learn)."""


_SCALARS: dict[type, type[tft.TfType]] = {
    str: tft.String,
    int: tft.Number,
    float: tft.Number,
    bool: tft.Bool,
}


def resolved_fields(cls: type) -> tuple[attrs.Attribute, ...]:
    """``attrs.fields`` with string annotations (``from __future__ import annotations``)
    resolved to real types."""
    try:
        attrs.resolve_types(cls)
    except NameError:  # pragma: no cover - a forward ref only the core module can resolve
        pass
    return attrs.fields(cls)


def _strip_none(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], nullable
        if set(args) <= {int, float}:  # a DSP number that may be fractional
            return float, nullable
        raise UnsupportedType(f"union of several types {tp!r}")
    return tp, False


def tf_type_for(tp: Any, *, where: str = "field", any_as: tft.TfType | None = None) -> tft.TfType:
    """The Terraform type for one annotation. Raises :class:`UnsupportedType`.

    ``any_as``: the type used for ``typing.Any`` (the provider block passes String, since
    :meth:`DateraConfig.from_mapping` parses strings); kinds must be explicit."""
    tp, _ = _strip_none(tp)
    if tp is Any and any_as is not None:
        return any_as
    if tp in _SCALARS:
        return _SCALARS[tp]()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = {type(m.value) for m in tp}
        if len(values) == 1 and values.pop() in _SCALARS:
            return tf_type_for(type(next(iter(tp)).value), where=where)
        raise UnsupportedType(f"{where}: enum {tp.__name__} with mixed value types")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        if len(kinds) == 1:
            return tf_type_for(kinds.pop(), where=where)
        raise UnsupportedType(f"{where}: Literal of mixed types {tp!r}")
    if origin in (list, tuple, set, frozenset, abc.Sequence, abc.Set):
        elem = args[0] if args else str
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            elem = args[0]
        return tft.List(tf_type_for(elem, where=where, any_as=any_as))
    if origin in (dict, abc.Mapping):
        key, val = args if args else (str, str)
        if key is not str:
            raise UnsupportedType(f"{where}: map keys must be str, not {key!r}")
        return tft.Map(tf_type_for(val, where=where, any_as=any_as))
    raise UnsupportedType(f"{where}: no Terraform type for {tp!r}")


class Object(tft.TfType):
    """A cty object type (``tf`` 1.2.0 has none): a fixed set of typed attributes, used
    for the elements of list-valued data sources (``datera_volumes.volumes``)."""

    def __init__(self, attributes: dict[str, tft.TfType]) -> None:
        self.attributes = dict(attributes)

    def encode(self, value: Any) -> Any:
        if value is None or value is tft.Unknown:
            return value
        return {k: (t.encode(value.get(k)) if value.get(k) is not None else None)
                for k, t in self.attributes.items()}

    def decode(self, value: Any) -> Any:
        if value is None or value is tft.Unknown:
            return value
        return {k: (t.decode(value.get(k)) if value.get(k) is not None else None)
                for k, t in self.attributes.items()}

    def tf_type(self) -> bytes:
        inner = ",".join(f"{json.dumps(k)}:{t.tf_type().decode()}"
                         for k, t in self.attributes.items())
        return f'["object",{{{inner}}}]'.encode()
