"""Data sources, derived like the resources from the core's classes.

* ``datera_volume``, ``datera_snapshot``, ``datera_tenant``, ``datera_volume_type``: look
  one object up (by ``id``, or a volume by ``name`` and ``tenant``) through ``kind.adopt``;
  every attribute of the kind is computed.
* ``datera_volumes``, ``datera_snapshots``, ``datera_volume_types``, ``datera_tenants``,
  ``datera_manageable_volumes``, ``datera_manageable_snapshots`` (and the singular
  ``datera_manageable_volume`` / ``_snapshot``): the listings of
  :data:`datera_iac.resources.queries.LISTINGS`, translated (arguments, row fields and
  docs all come from there).
* ``datera_system``: the ``/system`` entity (:class:`datera_iac.dsp.System`: version,
  capacities) and the API version.
* ``datera_cinder_volume_type``: the Cinder definition (``extra_specs``, ``openstack``
  command, terraform-provider-openstack HCL) a VolumeType declaration emits; no DSP call
  unless ``materialize = true`` (then it reads the app_template).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from tf import types as tft
from tf.iface import DataSource, ReadDataContext
from tf.schema import Schema

from datera_iac.errors import InputError, NotFound
from datera_iac.resources.base import DOC
from datera_iac_tf._types import Object, resolved_fields, tf_type_for
from datera_iac_tf.adapter import KindAdapter
from datera_iac_tf.diagnostics import report
from datera_iac_tf.schema import ID, TIMEOUTS, FieldInfo

if TYPE_CHECKING:  # pragma: no cover
    from datera_iac_tf.provider import DateraProvider

__all__ = ["BaseDataSource", "data_source_classes"]


class BaseDataSource(DataSource):
    """Common plumbing: schema from ``fields()``, errors as diagnostics."""

    ds_name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, provider: DateraProvider) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        return cls.ds_name

    @classmethod
    def fields(cls) -> tuple[FieldInfo, ...]:
        raise NotImplementedError

    @classmethod
    def get_schema(cls) -> Schema:
        return Schema(attributes=[f.attribute() for f in cls.fields()],
                      description=cls.description)

    def read(self, ctx: ReadDataContext, config: dict) -> dict | None:
        try:
            return self.lookup(config)
        except Exception as e:  # noqa: BLE001 - every failure becomes a diagnostic
            report(ctx.diagnostics, e, what=f"data.datera_{self.ds_name}",
                   attributes=[f.name for f in self.fields()],
                   secrets=self.provider.secrets())
            return None

    def lookup(self, config: dict) -> dict[str, Any]:
        raise NotImplementedError


class KindLookup(BaseDataSource):
    """One object of a kind, found by ``kind.adopt``."""

    adapter: ClassVar[KindAdapter]
    #: lookup argument -> its description
    args: ClassVar[dict[str, str]]

    @classmethod
    def fields(cls) -> tuple[FieldInfo, ...]:
        return cls.adapter.schema.data_source_fields(cls.args)

    def ref(self, config: dict) -> str:
        if not config.get(ID):
            raise InputError("set id", kind=self.adapter.kind.name, field=ID,
                             fix=f"give the object's id ({self.adapter.kind.import_id_doc})")
        return str(config[ID])

    def lookup(self, config: dict) -> dict[str, Any]:
        state = self.adapter.import_(self.provider.context, self.ref(config))
        state.pop(TIMEOUTS, None)
        for name in self.args:  # an argument the user set is echoed as written
            if config.get(name) is not None:
                state[name] = config[name]
        return state


class VolumeLookup(KindLookup):
    description = "Look up one volume by id, or by name (and tenant)."
    args: ClassVar[dict[str, str]] = {
        ID: "The volume's id (`/root/<tenant>/<app_instance id>`), its app_instance id or "
            "name, or a Cinder reference `[tenant:]ai:si:vol`. Set `id` or `name`.",
        "name": "The volume's (app_instance's) name; used when `id` is not set.",
        "tenant": "Tenant of `name` ('x' or '/root/x'); default: the provider's tenant.",
    }

    def ref(self, config: dict) -> str:
        if config.get(ID) and config.get("name"):
            raise InputError("set id or name, not both", kind="Volume", field=ID,
                             fix="remove one of them")
        if config.get(ID):
            return str(config[ID])
        if not config.get("name"):
            raise InputError("set id or name", kind="Volume", field="name",
                             fix="give the volume's name (and tenant) or its id")
        if config.get("tenant"):
            from datera_iac.resources._util import join_id, normalize_tenant

            tenant = normalize_tenant(config["tenant"], kind="Volume", field="tenant")
            return join_id(tenant or "/root", str(config["name"]))
        return str(config["name"])


class SnapshotLookup(KindLookup):
    description = "Look up one snapshot by id (`<volume id>/<timestamp>`)."
    args: ClassVar[dict[str, str]] = {ID: "The snapshot's id, `<volume id or name>/<timestamp>`."}


class ListingData(BaseDataSource):
    """One listing of :data:`datera_iac.resources.queries.LISTINGS`, translated: its
    arguments are optional attributes, its rows the elements of one list attribute
    (``datera_volumes.volumes``, ``datera_manageable_snapshots.snapshots``...), their ids
    in ``ids``."""

    listing: ClassVar[Any]
    #: the attribute holding the rows
    items_attr: ClassVar[str]

    @classmethod
    def element(cls) -> Object:
        return Object({c.name: tf_type_for(c.type, where=f"{cls.ds_name}.{c.name}")
                       for c in cls.listing.fields})

    @classmethod
    def fields(cls) -> tuple[FieldInfo, ...]:
        args = tuple(FieldInfo(a.name, tf_type_for(a.type, where=f"{cls.ds_name}.{a.name}"),
                               a.doc, "lookup", optional=True) for a in cls.listing.args)
        return (
            FieldInfo(ID, tft.String(), "What was listed (the tenant, the volume, or "
                      "`default`).", "id", computed=True),
            *args,
            FieldInfo("ids", tft.List(tft.String()), "Ids of the objects found, in order.",
                      "output", computed=True),
            FieldInfo(cls.items_attr, tft.List(cls.element()), cls.listing.doc, "output",
                      computed=True),
        )

    def lookup(self, config: dict) -> dict[str, Any]:
        args = {a.name: config.get(a.name) for a in self.listing.args}
        rows = self.listing.rows(self.provider.context(), **args)
        return {
            ID: str(config.get("volume") or config.get("tenant") or "default"),
            **args,
            "ids": [r["id"] for r in rows],
            self.items_attr: rows,
        }


class ListingLookup(BaseDataSource):
    """One row of a listing, found by its ``id`` (or ``reference``, where rows have one);
    an error when the listing has none."""

    listing: ClassVar[Any]

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(k for k in ("id", "reference") if any(c.name == k
                                                          for c in cls.listing.fields))

    @classmethod
    def fields(cls) -> tuple[FieldInfo, ...]:
        keys = cls.keys()
        out = []
        for a in cls.listing.args:
            out.append(FieldInfo(a.name, tf_type_for(a.type), a.doc, "lookup", optional=True))
        for c in cls.listing.fields:
            t = tf_type_for(c.type, where=f"{cls.ds_name}.{c.name}")
            if c.name in keys:
                out.append(FieldInfo(c.name, t, c.doc + " Set `" + "` or `".join(keys)
                                     + "`.", "lookup", optional=True, computed=True))
            else:
                out.append(FieldInfo(c.name, t, c.doc, "output", computed=True))
        return tuple(out)

    def lookup(self, config: dict) -> dict[str, Any]:
        keys = [k for k in self.keys() if config.get(k)]
        if len(keys) != 1:
            raise InputError(f"set exactly one of {', '.join(self.keys())}",
                             field=self.keys()[0], fix="name the object to look up")
        key = keys[0]
        args = {a.name: config.get(a.name) for a in self.listing.args}
        rows = self.listing.rows(self.provider.context(), **args)
        for r in rows:
            if r.get(key) == config[key]:
                return {**args, **r}
        raise NotFound(f"no {self.ds_name.replace('_', ' ')} with {key} {config[key]!r} "
                       f"({len(rows)} listed)")


class TenantLookup(KindLookup):
    description = "Look up one tenant by its path (`/root/team-a`) or name."
    args: ClassVar[dict[str, str]] = {ID: "The tenant's path or name."}


class VolumeTypeLookup(KindLookup):
    description = ("Look up one volume type materialized on the DSP (an app_template) by "
                   "name or `/app_templates/<name>`.")
    args: ClassVar[dict[str, str]] = {ID: "The type's name or app_template path."}


class SystemData(BaseDataSource):
    ds_name = "system"
    description = "The DSP: software version, REST API version, health and capacities (bytes)."

    @classmethod
    def fields(cls) -> tuple[FieldInfo, ...]:
        from datera_iac.dsp import System

        out = [FieldInfo(ID, tft.String(), "The system's uuid.", "id", computed=True),
               FieldInfo("api_version", tft.String(), "The REST API version in use (2.2 or "
                         "2.1).", "output", computed=True)]
        for f in resolved_fields(System):
            if f.name in (ID, "api_version"):
                continue
            try:
                t = tf_type_for(f.type, where=f"System.{f.name}")
            except Exception:  # noqa: BLE001 - e.g. a free-form ratio: shown as text
                t = tft.String()
            doc = f.metadata.get(DOC) or f"`{f.name}` of the DSP's /system entity."
            out.append(FieldInfo(f.name, t, doc, "output", computed=True))
        return tuple(out)

    def lookup(self, config: dict) -> dict[str, Any]:
        from datera_iac.resources.queries import system_info

        info = system_info(self.provider.context())
        values = attrs.asdict(info.system)  # type: ignore[arg-type]
        state: dict[str, Any] = {}
        for f in self.fields():
            v = values.get(f.name)
            if isinstance(f.type, tft.String) and v is not None and not isinstance(v, str):
                v = str(v)
            state[f.name] = v
        state[ID] = str(values.get("uuid") or values.get("name") or "system")
        state["api_version"] = info.api_version
        return state


class CinderVolumeType(BaseDataSource):
    ds_name = "cinder_volume_type"
    description = ("The Cinder volume type a VolumeType declaration emits: extra_specs, the "
                   "`openstack volume type create` command and terraform-provider-openstack HCL.")
    adapter: ClassVar[KindAdapter]

    @classmethod
    def fields(cls) -> tuple[FieldInfo, ...]:
        s = cls.adapter.schema
        return (attrs.evolve(s.id_field, doc="The type's name (or app_template path when "
                             "materialized)."),
                *(attrs.evolve(f, computed=False, replace=False) for f in s.inputs),
                *s.outputs)

    def lookup(self, config: dict) -> dict[str, Any]:
        kind = self.adapter.kind
        spec = self.adapter.spec_of(config)
        obs = kind.read_known(self.provider.context(), spec.name, spec)
        if obs is None:
            raise NotFound(f"volume type {spec.name!r} is not materialized on the DSP",
                           path=f"/app_templates/{spec.name}")
        state = self.adapter.state_from(obs, config)
        state.pop(TIMEOUTS, None)
        for f in self.adapter.schema.inputs:  # inputs are echoed as the user wrote them
            state[f.name] = config.get(f.name)
        return state


def _subclass(base: type, name: str, **attrs_: Any) -> type:
    return type(name, (base,), attrs_)


def data_source_classes(provider: DateraProvider) -> list[type[DataSource]]:
    """The data sources whose kinds exist in ``provider``: a lookup of one object of each
    kind, and every listing (plural) with its singular form."""
    from datera_iac.resources.queries import LISTINGS

    ad = provider.adapters
    out: list[type[DataSource]] = []
    if "datera_volume" in ad:
        out.append(_subclass(VolumeLookup, "VolumeDataSource", ds_name="volume",
                             adapter=ad["datera_volume"]))
    if "datera_snapshot" in ad:
        out.append(_subclass(SnapshotLookup, "SnapshotDataSource", ds_name="snapshot",
                             adapter=ad["datera_snapshot"]))
    if "datera_tenant" in ad:
        out.append(_subclass(TenantLookup, "TenantDataSource", ds_name="tenant",
                             adapter=ad["datera_tenant"]))
    out.append(SystemData)
    if "datera_volume_type" in ad:
        out.append(_subclass(VolumeTypeLookup, "VolumeTypeDataSource", ds_name="volume_type",
                             adapter=ad["datera_volume_type"]))
        out.append(_subclass(CinderVolumeType, "CinderVolumeTypeDataSource",
                             adapter=ad["datera_volume_type"]))
    kinds = {a.kind.name for a in ad.values()}
    for name, lst in LISTINGS.items():
        if lst.kind is not None and lst.kind not in kinds:
            continue
        camel = "".join(w.title() for w in name.split("_"))
        out.append(_subclass(ListingData, f"{camel}DataSource", ds_name=name, listing=lst,
                             items_attr=name.removeprefix("manageable_"),
                             description=lst.doc))
        if lst.kind is None:  # the kinds' singular forms are the lookups above
            out.append(_subclass(ListingLookup, f"{camel}LookupDataSource",
                                 ds_name=name[:-1], listing=lst,
                                 description=f"One row of `datera_{name}`: " + lst.doc))
    return out
