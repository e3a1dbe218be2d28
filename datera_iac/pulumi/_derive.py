"""Pulumi property tables derived from the resource core.

Every Pulumi-facing fact about a property (its camelCase name, schema type, description,
whether it is required, secret, an output, or forces replacement) is read here from the
attrs fields and metadata of a kind's ``Spec``/``Outputs`` or of ``DateraConfig``. The
schema, the provider server and the SDK generator all use these tables, so nothing about a
field is written twice.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from datera_iac.fields import ALIASES, COMPUTED, DEPRECATED, DOC, REFERENCE, REPLACE, SENSITIVE
from datera_iac.names import camel, snake
from datera_iac.resources.base import Kind

__all__ = ["Prop", "KindProps", "props_of", "kind_props", "config_props", "column_prop",
           "RESERVED"]

#: Names the Pulumi SDK and engine use on every resource; a core field with one of these
#: names is published under ``<kind><Name>`` (e.g. a Volume output ``id`` -> ``volumeId``).
RESERVED = frozenset({"id", "urn", "provider", "opts", "version"})


@attrs.frozen
class Prop:
    """One Pulumi property derived from one attrs field."""

    #: The core's snake_case field name.
    field: str
    #: The Pulumi property name (camelCase).
    name: str
    #: The Python name in the SDK: the core's field name unless it had to be renamed.
    py: str
    #: The JSON-schema type: {"type": "string"}, {"type": "array", "items": ...}...
    schema_type: Mapping[str, Any]
    #: The Python annotation for the SDK ("str", "int", "Sequence[str]"...).
    py_type: str
    doc: str
    required: bool = False
    optional: bool = True
    secret: bool = False
    replace: bool = False
    output: bool = False
    reference: str | None = None
    default: Any = None
    has_default: bool = False
    deprecated: str | None = None
    #: Environment variables read when the value is not set (provider configuration).
    env: tuple[str, ...] = ()


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    """(inner type, was Optional) for ``X | None`` / ``Optional[X]``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        raise TypeError(f"union {tp!r} is not a flat field type")
    return tp, False


_SCALARS: dict[Any, tuple[dict[str, Any], str]] = {
    Any: ({"$ref": "pulumi.json#/Any"}, "Any"),
    str: ({"type": "string"}, "str"),
    int: ({"type": "integer"}, "int"),
    float: ({"type": "number"}, "float"),
    bool: ({"type": "boolean"}, "bool"),
}


def _types_for(tp: Any, where: str) -> tuple[dict[str, Any], str, bool]:
    """(schema type, python annotation, optional) of a flat field type (see base.py)."""
    inner, optional = _strip_optional(tp)
    if inner in _SCALARS:
        schema, py = _SCALARS[inner]
        return dict(schema), py, optional
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if origin in (list, tuple, typing.Sequence, Iterable) or origin is not None and (
        getattr(origin, "__name__", "") in ("Sequence", "list", "tuple")
    ):
        item = args[0] if args else str
        if item in _SCALARS:
            s, p = _SCALARS[item]
            return {"type": "array", "items": dict(s)}, f"Sequence[{p}]", optional
    if origin in (dict, Mapping) or getattr(origin, "__name__", "") == "Mapping":
        val = args[1] if len(args) == 2 else str
        if val in _SCALARS:
            s, p = _SCALARS[val]
            return (
                {"type": "object", "additionalProperties": dict(s)},
                f"Mapping[str, {p}]",
                optional,
            )
    raise TypeError(
        f"{where}: type {tp!r} cannot be expressed in the Pulumi schema "
        "(base.py allows str, int, float, bool, list[str], dict[str, str] and X | None)"
    )


def _is_sensitive(f: attrs.Attribute) -> bool:
    # repr=False is how attrs classes outside the kinds (DateraConfig) hide a secret.
    return bool(f.metadata.get(SENSITIVE)) or f.repr is False


def _doc(f: attrs.Attribute, owner: str) -> str:
    for key in (DOC, "doc", "help"):
        if f.metadata.get(key):
            return str(f.metadata[key])
    return f"{owner} {f.name}"


def props_of(cls: type, *, output: bool = False, prefix: str = "") -> tuple[Prop, ...]:
    """The properties of an attrs class, in field order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in attrs.fields(cls):
        schema, py_type, optional = _types_for(hints.get(f.name, f.type), f"{cls.__qualname__}.{f.name}")
        has_default = f.default is not attrs.NOTHING
        default = None
        if has_default and not isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
            default = f.default
        elif has_default:
            default = f.default.factory()  # type: ignore[union-attr]
        name, py = camel(f.name), f.name
        if name in RESERVED:
            py = f"{prefix and snake(prefix) or 'value'}_{f.name}"
            name = camel(py)
        out.append(
            Prop(
                field=f.name,
                name=name,
                py=py,
                schema_type=schema,
                py_type=py_type,
                doc=_doc(f, cls.__qualname__),
                required=not output and not has_default,
                optional=optional or output or has_default,
                secret=_is_sensitive(f),
                replace=bool(f.metadata.get(REPLACE)),
                output=output or bool(f.metadata.get(COMPUTED)),
                reference=f.metadata.get(REFERENCE),
                default=default,
                has_default=has_default,
                deprecated=f.metadata.get(DEPRECATED),
            )
        )
        if not output:  # a former name: an input of its own, deprecated, never required
            for alias in f.metadata.get(ALIASES, ()):
                out.append(attrs.evolve(
                    out[-1], field=alias, name=camel(alias), py=alias, required=False,
                    optional=True, has_default=True, default=None,
                    doc=f"Deprecated: the former name of {name}.",
                    deprecated=f"renamed to {name}"))
    return tuple(out)


@attrs.frozen
class KindProps:
    """The inputs and outputs of one kind as Pulumi properties."""

    kind: Kind[Any, Any]
    inputs: tuple[Prop, ...]
    outputs: tuple[Prop, ...]

    @property
    def token(self) -> str:
        return self.kind.token

    @property
    def all(self) -> tuple[Prop, ...]:
        """Inputs, then outputs whose name is not also an input."""
        names = {p.name for p in self.inputs}
        return self.inputs + tuple(p for p in self.outputs if p.name not in names)

    def input(self, name: str) -> Prop | None:
        return next((p for p in self.inputs if p.name == name), None)

    def by_field(self, field: str) -> Prop | None:
        return next((p for p in self.inputs if p.field == field), None)

    @property
    def former(self) -> dict[str, str]:
        """``{former property name: the property it stands for}`` (deprecated inputs)."""
        out = {}
        for f in attrs.fields(self.kind.Spec):
            prop = self.by_field(f.name)
            for alias in f.metadata.get(ALIASES, ()):
                if prop is not None:
                    out[camel(alias)] = prop.name
        return out


@functools.cache
def kind_props(kind: Kind[Any, Any]) -> KindProps:
    """The (cached) property table of one kind."""
    prefix = kind.name[:1].lower() + kind.name[1:]
    inputs = props_of(kind.Spec, prefix=prefix)
    outputs = props_of(kind.Outputs, output=True, prefix=prefix)
    clash = {p.name for p in inputs} & {p.name for p in outputs}
    for name in clash:
        i = next(p for p in inputs if p.name == name)
        o = next(p for p in outputs if p.name == name)
        if i.schema_type != o.schema_type:
            raise TypeError(
                f"{kind.name}: input and output {name!r} have different types; "
                "rename one of them in the kind"
            )
    return KindProps(kind=kind, inputs=inputs, outputs=outputs)


def config_props() -> tuple[Prop, ...]:
    """The provider configuration: the fields of ``DateraConfig``."""
    from datera_iac.config import DateraConfig, env_name

    return tuple(attrs.evolve(p, env=(env_name(p.field),)) for p in props_of(DateraConfig))


def column_prop(column: Any, *, output: bool = False) -> Prop:
    """The property of a listing's argument or row field (a ``queries.Column``: name,
    type, doc). Arguments are optional; row fields are outputs."""
    schema, py_type, optional = _types_for(column.type, f"column {column.name}")
    return Prop(field=column.name, name=camel(column.name), py=column.name,
                schema_type=schema, py_type=py_type, doc=column.doc,
                required=output and not optional, optional=optional or not output,
                output=output)
