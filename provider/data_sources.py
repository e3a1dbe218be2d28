"""Data sources, derived like the resources from the core's classes.

* ``datera_volume``, ``datera_snapshot``: look one object up (by ``id``, or a volume by
  ``name`` and ``tenant``) through ``kind.adopt``; every attribute of the kind is computed.
* ``datera_volumes``: the volumes of a tenant, optionally filtered by a name regex
  (:func:`datera_iac.resources.queries.list_volumes`); each element is an object of the
  Volume's non-secret attributes.
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
from provider._types import Object, resolved_fields, tf_type_for
from provider.adapter import KindAdapter
from provider.diagnostics import report
from provider.schema import ID, TIMEOUTS, FieldInfo

if TYPE_CHECKING:  # pragma: no cover
    from provider.provider import DateraProvider

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
        obs = self.adapter.kind.adopt(self.provider.context(), self.ref(config))
        state = self.adapter.state_from(obs, None)
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


class VolumeList(BaseDataSource):
    ds_name = "volumes"
    description = "The volumes of a tenant, optionally filtered by a name regex."
    volume: ClassVar[KindAdapter]

    @classmethod
    def element(cls) -> Object:
        s = cls.volume.schema
        return Object({f.name: f.type for f in (s.id_field, *s.inputs, *s.outputs)
                       if not f.sensitive})

    @classmethod
    def fields(cls) -> tuple[FieldInfo, ...]:
        return (
            FieldInfo(ID, tft.String(), "The tenant that was listed.", "id", computed=True),
            FieldInfo("tenant", tft.String(), "Tenant to list ('x' or '/root/x'); default: "
                      "the provider's tenant.", "lookup", optional=True),
            FieldInfo("name_regex", tft.String(), "Keep volumes whose name matches this "
                      "regular expression (Python `re.search`).", "lookup", optional=True),
            FieldInfo("ids", tft.List(tft.String()), "Ids of the volumes found, by name.",
                      "output", computed=True),
            FieldInfo("volumes", tft.List(cls.element()), "The volumes found, by name: every "
                      "non-secret attribute of `datera_volume`.", "output", computed=True),
        )

    def lookup(self, config: dict) -> dict[str, Any]:
        from datera_iac.resources.queries import list_volumes

        ctx = self.provider.context()
        found = list_volumes(ctx, tenant=config.get("tenant"), name_regex=config.get("name_regex"))
        items = []
        for obs in found:
            st = self.volume.state_from(obs, None)
            items.append({k: st.get(k) for k in self.element().attributes})
        return {
            ID: config.get("tenant") or "default",
            "tenant": config.get("tenant"),
            "name_regex": config.get("name_regex"),
            "ids": [o.id for o in found],
            "volumes": items,
        }


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
    """The data sources whose kinds exist in ``provider``."""
    ad = provider.adapters
    out: list[type[DataSource]] = []
    if "datera_volume" in ad:
        out.append(_subclass(VolumeLookup, "VolumeDataSource", ds_name="volume",
                             adapter=ad["datera_volume"]))
        out.append(_subclass(VolumeList, "VolumesDataSource", volume=ad["datera_volume"]))
    if "datera_snapshot" in ad:
        out.append(_subclass(SnapshotLookup, "SnapshotDataSource", ds_name="snapshot",
                             adapter=ad["datera_snapshot"]))
    out.append(SystemData)
    if "datera_volume_type" in ad:
        out.append(_subclass(CinderVolumeType, "CinderVolumeTypeDataSource",
                             adapter=ad["datera_volume_type"]))
    return out

