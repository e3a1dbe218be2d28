"""Terraform schemas derived from the core's attrs classes — never declared by hand.

A resource's attributes are, in order: ``id`` (the DSP id, computed), every field of
``kind.Spec`` (the inputs), every field of ``kind.Outputs`` (computed), and ``timeouts``.

* A Spec field without a default is ``required``; one with a default is ``optional`` and
  ``computed``: the plan shows the default the core fills in, and a value the DSP assigns
  (which the kind's ``diff`` says is equal to "unset") stays in state without a perpetual diff.
* Metadata ``REPLACE`` -> ``requires_replace``, ``SENSITIVE`` -> ``sensitive``, ``DOC`` ->
  the description. Output fields are computed (``COMPUTED``).
* ``timeouts`` is a map attribute (``timeouts = { create = "10m" }``): the ``tf`` package
  has no single nested block, and the map keeps the familiar syntax. It feeds
  :class:`datera_iac.resources.base.Timeouts`.

The provider's own configuration block is derived the same way from
:class:`datera_iac.config.DateraConfig`.
"""

from __future__ import annotations

from typing import Any

import attrs
from tf import types as tft
from tf.schema import Attribute, Schema

from datera_iac.resources.base import (
    COMPUTED,
    DOC,
    REPLACE,
    SENSITIVE,
    Kind,
    Timeouts,
    snake,
)
from provider._types import resolved_fields, tf_type_for

__all__ = [
    "ID",
    "SCHEMA_VERSION",
    "TIMEOUTS",
    "TIMEOUT_KEYS",
    "FieldInfo",
    "KindSchema",
    "config_fields",
    "kind_schema",
    "provider_schema",
]

#: Bumped when a state written by an older provider needs an upgrade.
SCHEMA_VERSION = 0
ID = "id"
TIMEOUTS = "timeouts"
TIMEOUT_KEYS = tuple(f.name for f in attrs.fields(Timeouts))

#: Words that make a config field sensitive when its class does not say so itself.
_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey")


@attrs.frozen
class FieldInfo:
    """One derived attribute and where it came from."""

    name: str
    type: tft.TfType = attrs.field(eq=False)
    doc: str
    role: str  # "id" | "input" | "output" | "timeouts" | "lookup"
    required: bool = False
    optional: bool = False
    computed: bool = False
    replace: bool = False
    sensitive: bool = False
    default: Any = None
    has_default: bool = False
    deprecated: bool = False

    def attribute(self) -> Attribute:
        return Attribute(
            self.name,
            self.type,
            description=self.doc,
            required=self.required,
            optional=self.optional,
            computed=self.computed,
            sensitive=self.sensitive,
            requires_replace=self.replace or None,
            deprecated=self.deprecated or None,
        )


def _default_of(f: attrs.Attribute) -> tuple[bool, Any]:
    d = f.default
    if d is attrs.NOTHING:
        return False, None
    if isinstance(d, attrs.Factory):  # type: ignore[arg-type]
        factory: Any = d
        if factory.takes_self:  # pragma: no cover - not used by kinds
            return True, None
        return True, factory.factory()
    return True, d


def _doc(f: attrs.Attribute) -> str:
    doc = f.metadata.get(DOC) or f.metadata.get("doc") or ""
    return str(doc).strip()


@attrs.frozen
class KindSchema:
    """The derived schema of one kind, shared by its resource and data source."""

    kind: Kind = attrs.field(eq=False)
    inputs: tuple[FieldInfo, ...]
    outputs: tuple[FieldInfo, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.outputs)

    @property
    def id_field(self) -> FieldInfo:
        return FieldInfo(
            ID,
            tft.String(),
            f"The DSP id of the {snake(self.kind.name).replace('_', ' ')}; also its import id "
            f"(`{self.kind.import_id_doc}`).",
            "id",
            computed=True,
        )

    @property
    def timeouts_field(self) -> FieldInfo:
        defaults = Timeouts()
        listed = ", ".join(f'{k} = "{_dur(getattr(defaults, k))}"' for k in TIMEOUT_KEYS)
        return FieldInfo(
            TIMEOUTS,
            tft.Map(tft.String()),
            "Per-operation time limits as durations (`30s`, `10m`, `1h30m`); keys "
            f"{', '.join(f'`{k}`' for k in TIMEOUT_KEYS)}. Defaults: `{{ {listed} }}`.",
            "timeouts",
            optional=True,
        )

    def fields(self) -> tuple[FieldInfo, ...]:
        """Every attribute of the resource, in schema order."""
        return (self.id_field, *self.inputs, *self.outputs, self.timeouts_field)

    def resource_schema(self) -> Schema:
        doc = (type(self.kind).__doc__ or self.kind.name).strip().split("\n\n")[0]
        return Schema(
            version=SCHEMA_VERSION,
            attributes=[f.attribute() for f in self.fields()],
            description=" ".join(doc.split()),
        )

    def data_source_fields(self, lookup: dict[str, str]) -> tuple[FieldInfo, ...]:
        """All attributes computed, except the ``lookup`` arguments (name -> doc), which are
        optional inputs (and computed, so the found object's value fills them)."""
        out = [
            FieldInfo(
                ID, tft.String(), lookup.get(ID, self.id_field.doc), "lookup" if ID in lookup else "id",
                optional=ID in lookup, computed=True,
            )
        ]
        for f in (*self.inputs, *self.outputs):
            if f.name in lookup:
                out.append(attrs.evolve(f, doc=lookup[f.name], role="lookup", required=False,
                                        optional=True, computed=True, replace=False))
            else:
                out.append(attrs.evolve(f, required=False, optional=False, computed=True,
                                        replace=False))
        return tuple(out)


def _dur(seconds: float) -> str:
    s = int(seconds)
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def kind_schema(kind: Kind) -> KindSchema:
    """Derive the schema of one kind from ``kind.Spec`` and ``kind.Outputs``."""
    inputs = []
    for f in resolved_fields(kind.Spec):
        where = f"{kind.name}.{f.name}"
        has_default, default = _default_of(f)
        inputs.append(
            FieldInfo(
                f.name,
                tf_type_for(f.type, where=where),
                _doc(f),
                "input",
                required=not has_default,
                optional=has_default,
                computed=has_default,
                replace=bool(f.metadata.get(REPLACE)),
                sensitive=bool(f.metadata.get(SENSITIVE)),
                default=default,
                has_default=has_default,
            )
        )
    taken = {ID, TIMEOUTS, *(i.name for i in inputs)}
    outputs = []
    for f in resolved_fields(kind.Outputs):
        if f.name in taken:  # e.g. Outputs.id is the resource id; an echoed input stays an input
            continue
        outputs.append(
            FieldInfo(
                f.name,
                tf_type_for(f.type, where=f"{kind.name}.{f.name}"),
                _doc(f),
                "output",
                computed=bool(f.metadata.get(COMPUTED, True)),
                sensitive=bool(f.metadata.get(SENSITIVE)),
            )
        )
    return KindSchema(kind=kind, inputs=tuple(inputs), outputs=tuple(outputs))


def config_fields(config_cls: type, env_name: Any = None) -> tuple[FieldInfo, ...]:
    """The provider block: every field of the configuration class, all optional (each has
    an environment-variable fallback, named by ``env_name(field)``, or a default)."""
    out = []
    for f in resolved_fields(config_cls):
        if f.name.startswith("_") or not f.init:
            continue
        has_default, default = _default_of(f)
        sensitive = bool(f.metadata.get(SENSITIVE) or any(w in f.name for w in _SECRET_WORDS))
        doc = _doc(f)
        if env_name is not None:
            doc = f"{doc} Environment variable: `{env_name(f.name)}`.".strip()
        deprecated = _deprecation(f)
        if deprecated:
            doc = f"{doc} Deprecated: {deprecated}."
        out.append(
            FieldInfo(
                f.name,
                tf_type_for(f.type, where=f"provider.{f.name}", any_as=tft.String()),
                doc,
                "config",
                optional=True,
                sensitive=sensitive,
                default=default,
                has_default=has_default,
                deprecated=bool(deprecated),
            )
        )
    return tuple(out)


def _deprecation(f: attrs.Attribute) -> str | None:
    for key, value in f.metadata.items():
        if isinstance(key, str) and key.endswith(".deprecated") and value:
            return str(value)
    return None


def provider_schema(config_cls: type, env_name: Any = None) -> Schema:
    return Schema(
        version=SCHEMA_VERSION,
        attributes=[f.attribute() for f in config_fields(config_cls, env_name)],
        description="Connection to a Datera DSP; the options of the Cinder Datera driver "
        "under their cinder.conf names.",
    )
