"""Terraform schemas derived from the core's attrs classes — never declared by hand.

A resource's attributes are, in order: ``id`` (the DSP id, computed), every field of
``kind.Spec`` (the inputs), every field of ``kind.Outputs`` (computed), and ``timeouts``.

* A Spec field without a default is ``required``; one with a default is ``optional`` and
  ``computed``: the plan shows the default the core fills in, and a value the DSP assigns
  (which the kind's ``diff`` says is equal to "unset") stays in state without a perpetual diff.
* Metadata ``REPLACE`` -> ``requires_replace``, ``SENSITIVE`` -> ``sensitive``, ``DOC`` ->
  the description. Output fields are computed (``COMPUTED``).
* Every ``SENSITIVE`` input ``x`` also gets the write-only pair of current Terraform
  providers: ``x_wo`` (write-only: Terraform >= 1.11 passes it to the provider and never
  stores it in plan or state) and ``x_wo_version`` (an ordinary optional number: Terraform
  cannot diff a value it never stores, so changing the version is what applies a new
  secret). ``x`` itself stays, deprecated: Terraform stores it in the state in clear. The
  adapter feeds ``x_wo`` to the core as ``x`` (:mod:`datera_iac_tf.adapter`); the core knows
  nothing of it.
* ``timeouts`` is a map attribute (``timeouts = { create = "10m" }``): the ``tf`` package
  has no single nested block, and the map keeps the familiar syntax. It feeds
  :class:`datera_iac.resources.base.Timeouts`.

The provider's own configuration block is derived the same way from
:class:`datera_iac.config.DateraConfig`.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs
from tf import types as tft
from tf.schema import Attribute, Schema

from datera_iac.fields import ALIASES
from datera_iac.resources.base import (
    COMPUTED,
    DOC,
    REPLACE,
    SENSITIVE,
    Kind,
    Timeouts,
    snake,
)
from datera_iac_tf._protocol import mark_write_only
from datera_iac_tf._types import resolved_fields, tf_type_for

__all__ = [
    "ID",
    "SCHEMA_VERSION",
    "TIMEOUTS",
    "TIMEOUT_KEYS",
    "WO_SUFFIX",
    "WO_VERSION_SUFFIX",
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
#: ``chap_secret`` -> ``chap_secret_wo`` (write-only) and ``chap_secret_wo_version``.
WO_SUFFIX = "_wo"
WO_VERSION_SUFFIX = "_wo_version"

#: Words that make a config field sensitive when its class does not say so itself.
_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey")


@attrs.frozen
class FieldInfo:
    """One derived attribute and where it came from."""

    name: str
    type: tft.TfType = attrs.field(eq=False)
    doc: str
    role: str  # "id" | "input" | "output" | "timeouts" | "lookup" | "write_only" | "wo_version"
    #          | "alias"
    required: bool = False
    optional: bool = False
    computed: bool = False
    replace: bool = False
    sensitive: bool = False
    default: Any = None
    has_default: bool = False
    deprecated: bool = False
    write_only: bool = False
    #: for ``x_wo`` and ``x_wo_version``: ``x``, the kind's field they stand for
    secret_of: str | None = None
    #: for a deprecated former name (and its ``_wo``/``_wo_version``): the attribute it
    #: stands for
    alias_of: str | None = None

    def attribute(self) -> Attribute:
        cls = _WriteOnlyAttribute if self.write_only else Attribute
        return cls(
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


class _WriteOnlyAttribute(Attribute):
    """A ``tf`` Attribute whose protocol form carries ``write_only`` (``tf`` 1.2.0 has no
    such flag; :mod:`datera_iac_tf._protocol` adds the field)."""

    write_only = True

    def to_pb(self) -> Any:
        return mark_write_only(super().to_pb())


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
    #: ``x_wo`` and ``x_wo_version`` for every sensitive input ``x`` (resources only)
    write_only: tuple[FieldInfo, ...] = ()
    #: deprecated former names of inputs (``spec_field(aliases=...)``), each with its own
    #: ``_wo`` pair when the input has one; resources only. :mod:`datera_iac_tf.resources`
    #: reads them as the inputs they stand for; the adapter never sees them.
    aliases: tuple[FieldInfo, ...] = ()

    @property
    def alias_map(self) -> dict[str, str]:
        """``{former attribute: the attribute it stands for}``, ``_wo`` pairs included."""
        return {f.name: f.alias_of for f in self.aliases if f.alias_of}

    @functools.cached_property  # asked for every request (attrs keeps it in a slot)
    def input_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs)

    @property
    def secret_pairs(self) -> tuple[tuple[str, str, str], ...]:
        """``(x, x_wo, x_wo_version)`` for every sensitive input ``x`` (and its former
        names)."""
        return tuple((f.secret_of, f.name, f.name + "_version")
                     for f in (*self.write_only, *self.aliases) if f.write_only and f.secret_of)

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
        return self._fields

    @functools.cached_property
    def _fields(self) -> tuple[FieldInfo, ...]:
        pairs: dict[str, list[FieldInfo]] = {}
        for w in (*self.write_only, *(a for a in self.aliases if a.role != "alias")):
            pairs.setdefault(w.secret_of or "", []).append(w)
        former: dict[str, list[FieldInfo]] = {}
        for a in self.aliases:
            if a.role == "alias":
                former.setdefault(a.alias_of or "", []).append(a)
        inputs = [g for f in self.inputs for h in (f, *former.get(f.name, ()))
                  for g in (h, *pairs.get(h.name, ()))]
        return (self.id_field, *inputs, *self.outputs, self.timeouts_field)

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
                                        optional=True, computed=True, replace=False,
                                        deprecated=False))
            else:
                out.append(attrs.evolve(f, doc=_undeprecated_doc(f), required=False,
                                        optional=False, computed=True, replace=False,
                                        deprecated=False))
        return tuple(out)


def _dur(seconds: float) -> str:
    s = int(seconds)
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


_DEPRECATED_IN_STATE = (" Deprecated: Terraform stores this argument in terraform.tfstate in "
                        "clear; use `{wo}` with `{wo}_version` (Terraform 1.11+), which are "
                        "never stored.")


def _undeprecated_doc(f: FieldInfo) -> str:
    if not f.deprecated or not f.sensitive:
        return f.doc
    return f.doc.replace(_DEPRECATED_IN_STATE.format(wo=f.name + WO_SUFFIX), "")


def _write_only_pair(kind: Kind, f: FieldInfo) -> tuple[FieldInfo, FieldInfo]:
    """``x_wo`` and ``x_wo_version`` for the sensitive input ``f``."""
    wo, version = f.name + WO_SUFFIX, f.name + WO_VERSION_SUFFIX
    label = f.doc.rstrip(".") or f.name
    what = snake(kind.name).replace("_", " ")
    change = f"replaces the {what}" if f.replace else f"updates the {what} in place"
    return (
        FieldInfo(
            wo, f.type,
            f"{label}. Write-only: sent to the DSP, never stored in the plan or state "
            f"(Terraform 1.11+); use it instead of `{f.name}`. Terraform cannot see a change "
            f"of this value: change `{version}` to apply a new one.",
            "write_only", optional=True, sensitive=True, write_only=True, secret_of=f.name,
        ),
        FieldInfo(
            version, tft.Number(),
            f"Any number, stored in state; changing it applies the current `{wo}` (a "
            f"secret rotation), which {change}.",
            "wo_version", optional=True, replace=f.replace, secret_of=f.name,
        ),
    )


def kind_schema(kind: Kind) -> KindSchema:
    """Derive the schema of one kind from ``kind.Spec`` and ``kind.Outputs``."""
    inputs = []
    write_only: list[FieldInfo] = []
    aliases: list[FieldInfo] = []
    for f in resolved_fields(kind.Spec):
        where = f"{kind.name}.{f.name}"
        has_default, default = _default_of(f)
        sensitive = bool(f.metadata.get(SENSITIVE))
        info = FieldInfo(
            f.name,
            tf_type_for(f.type, where=where),
            _doc(f),
            "input",
            required=not has_default,
            optional=has_default,
            computed=has_default,
            replace=bool(f.metadata.get(REPLACE)),
            sensitive=sensitive,
            default=default,
            has_default=has_default,
        )
        pair = _write_only_pair(kind, info) if sensitive and has_default else ()
        if pair:  # an optional secret: offer the write-only form
            write_only += pair
            info = attrs.evolve(info, deprecated=True, doc=info.doc + _DEPRECATED_IN_STATE.format(
                wo=f.name + WO_SUFFIX))
        inputs.append(info)
        for alias in f.metadata.get(ALIASES, ()):
            aliases += _alias_of(kind, info, pair, alias)
    taken = {ID, TIMEOUTS, *(i.name for i in inputs)}
    clash = taken & {w.name for w in write_only}
    if clash:  # pragma: no cover - a kind field named like a derived one
        raise ValueError(f"{kind.name}: fields {sorted(clash)} collide with derived "
                         "write-only attributes")
    taken |= {w.name for w in write_only}
    clash = taken & {a.name for a in aliases}
    if clash:  # pragma: no cover - a former name that is a field's name again
        raise ValueError(f"{kind.name}: former names {sorted(clash)} are attributes again")
    taken |= {a.name for a in aliases}
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
    return KindSchema(kind=kind, inputs=tuple(inputs), outputs=tuple(outputs),
                      write_only=tuple(write_only), aliases=tuple(aliases))


def _alias_of(kind: Kind, info: FieldInfo, pair: tuple[FieldInfo, ...],
              alias: str) -> list[FieldInfo]:
    """The deprecated former name ``alias`` of the input ``info`` (optional, never
    computed: its planned value is what the configuration says), and the former names of
    ``info``'s write-only pair."""
    doc = f"Deprecated: the former name of `{info.name}`; write `{info.name}`."
    out = [attrs.evolve(info, name=alias, doc=doc, role="alias", required=False,
                        optional=True, computed=False, default=None, has_default=False,
                        deprecated=True, alias_of=info.name)]
    for p in pair:  # x_wo -> alias_wo, x_wo_version -> alias_wo_version
        suffix = p.name[len(info.name):]
        out.append(attrs.evolve(p, name=alias + suffix, secret_of=alias, alias_of=p.name,
                                deprecated=True,
                                doc=f"Deprecated: the former name of `{p.name}`; write "
                                    f"`{p.name}`."))
    return out


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
