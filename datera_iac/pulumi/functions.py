"""The ``datera`` package's functions (Pulumi invokes), derived like the resources.

* ``list<Listing>`` for each listing of :data:`datera_iac.resources.queries.LISTINGS`
  (``listVolumes``, ``listSnapshots``, ``listVolumeTypes``, ``listTenants``,
  ``listManageableVolumes``, ``listManageableSnapshots``): the listing's arguments as
  inputs and its rows as ``items``, the same rows the engine's ``datera-iac ls`` and the
  Terraform data sources show.
* ``getVolume``, ``getSnapshot``, ``getVolumeType``, ``getTenant``: one object looked up by
  ``kind.adopt`` (the ids ``pulumi import`` takes), with every non-secret property of the
  resource.
* ``cinderVolumeType``: the Cinder definition (extra_specs, ``openstack volume type create``
  line, terraform-provider-openstack HCL) of the volume-type properties given; no DSP call.
* ``cinderConf``: the cinder.conf section of the provider's configuration (the password
  masked unless ``showPassword``, then the result is secret); no DSP call.

Each :class:`Function` carries its schema (inputs, outputs, object types) and its call;
the schema, the provider's ``Invoke`` and the Python SDK all read :data:`FUNCTIONS`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from datera_iac.errors import InputError
from datera_iac.secrets import CONF_MASK
from datera_iac.pulumi._derive import Prop, column_prop, kind_props
from datera_iac.resources.base import Context, camel

__all__ = ["Function", "functions", "PACKAGE_PREFIX"]

PACKAGE_PREFIX = "datera:index:"


@attrs.frozen
class Function:
    """One invoke: its token, description, input and output properties, the object types
    its outputs use (token -> properties) and its call."""

    token: str
    doc: str
    inputs: tuple[Prop, ...]
    outputs: tuple[Prop, ...]
    types: Mapping[str, tuple[Prop, ...]]
    #: (context getter, config getter, snake_case args) -> camelCase outputs
    call: Callable[[Callable[[], Context], Callable[[], Any], dict[str, Any]], dict[str, Any]]

    @property
    def name(self) -> str:
        return self.token.rsplit(":", 1)[-1]

    def args_from(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """camelCase inputs -> the call's snake_case arguments; an unknown one is refused."""
        by_name = {p.name: p for p in self.inputs}
        out = {}
        for key, value in props.items():
            p = by_name.get(key)
            if p is None:
                raise InputError(
                    f"{self.token}: unknown argument {key!r}", field=key,
                    fix="known: " + (", ".join(sorted(by_name)) or "none"))
            out[p.field] = value
        return out


def _row_props(fields: Sequence[Any]) -> tuple[Prop, ...]:
    return tuple(column_prop(c, output=True) for c in fields)


def _listing_function(listing: Any) -> Function:
    item = PACKAGE_PREFIX + "".join(w.title() for w in listing.name.split("_")) + "Item"
    fn_name = "list" + "".join(w.title() for w in listing.name.split("_"))
    rows = _row_props(listing.fields)
    items = Prop(field="items", name="items", py="items",
                 schema_type={"type": "array", "items": {"$ref": f"#/types/{item}"}},
                 py_type="Sequence[Mapping[str, Any]]", doc="The rows found.",
                 output=True, required=True, optional=False)

    def call(ctx: Callable[[], Context], config: Callable[[], Any], args: dict[str, Any]
             ) -> dict[str, Any]:
        found = listing.rows(ctx(), **args)
        return {"items": [{camel(k): v for k, v in row.items()} for row in found]}

    return Function(
        token=PACKAGE_PREFIX + fn_name,
        doc=listing.doc + " The same rows as `datera-iac ls " + listing.name.replace("_", "-")
        + " --json` and the Terraform data source `datera_" + listing.name + "`.",
        inputs=tuple(column_prop(a) for a in listing.args),
        outputs=(items,), types={item: rows}, call=call)


#: kind name -> (lookup doc, extra lookup inputs beyond ``id``)
_LOOKUPS: dict[str, str] = {
    "Volume": "The volume's id (`<tenant>/<app_instance id>`), its app_instance id or name, "
              "or a Cinder reference `[tenant:]ai:si:vol`.",
    "Snapshot": "The snapshot's id, `<volume id or name>/<timestamp>`.",
    "VolumeType": "The type's name or `/app_templates/<name>` (it must be materialized on "
                  "the DSP).",
    "Tenant": "The tenant's path, e.g. `/root/team-a`.",
}


def _get_function(kind_name: str, doc: str) -> Function:
    from datera_iac.pulumi._adapter import ResourceAdapter
    from datera_iac.resources.base import KINDS

    kind = KINDS[kind_name]
    kp = kind_props(kind)
    id_in = Prop(field="id", name="id", py="id", schema_type={"type": "string"},
                 py_type="str", doc=doc, required=True, optional=False)
    id_out = attrs.evolve(id_in, doc=f"The {kind.name}'s id.", output=True)
    outs = (id_out,) + tuple(
        attrs.evolve(p, output=True, required=False, optional=True)
        for p in kp.all if not p.secret and p.name != "id")

    def call(ctx: Callable[[], Context], config: Callable[[], Any], args: dict[str, Any]
             ) -> dict[str, Any]:
        ref = args.get("id")
        if not ref:
            raise InputError(f"{kind.name}: set id", kind=kind.name, field="id", fix=doc)
        obs = kind.adopt(ctx(), str(ref))
        state = ResourceAdapter(kind).state_of(obs)
        out = {"id": obs.id}
        out.update({p.name: state.get(p.name) for p in outs[1:]})
        return out

    return Function(
        token=f"{PACKAGE_PREFIX}get{kind.name}",
        doc=f"Look up one {kind.name} on the DSP by id (the ids `pulumi import` takes); "
            "every non-secret property of the resource.",
        inputs=(id_in,), outputs=outs, types={}, call=call)


def _cinder_volume_type() -> Function:
    from datera_iac.pulumi._adapter import ResourceAdapter
    from datera_iac.resources.base import KINDS

    kind = KINDS["VolumeType"]
    kp = kind_props(kind)
    wanted = ("extra_specs", "openstack_command", "terraform_hcl")
    outs = tuple(attrs.evolve(p, required=False) for p in kp.outputs if p.field in wanted)
    adapter = ResourceAdapter(kind)

    def call(ctx: Callable[[], Context], config: Callable[[], Any], args: dict[str, Any]
             ) -> dict[str, Any]:
        from datera_iac.resources.volume_type import observe_type

        spec = kind.spec_from({k: v for k, v in args.items() if v is not None},
                              resource=args.get("name"))
        state = adapter.state_of(observe_type(spec))
        return {p.name: state.get(p.name) for p in outs}

    return Function(
        token=PACKAGE_PREFIX + "cinderVolumeType",
        doc="The Cinder volume type that these properties define (the same outputs as a "
            "VolumeType resource): extra_specs, the `openstack volume type create` line and "
            "the terraform-provider-openstack block. Nothing is read from or written to the "
            "DSP.",
        inputs=tuple(attrs.evolve(p, replace=False) for p in kp.inputs
                     if p.field != "materialize"),
        outputs=outs, types={}, call=call)


def _cinder_conf() -> Function:
    backend = Prop(field="backend_name", name="backendName", py="backend_name",
                   schema_type={"type": "string"}, py_type="str",
                   doc="The backend section and volume_backend_name (default: the "
                       "configuration's volumeBackendName, else `datera`).")
    show = Prop(field="show_password", name="showPassword", py="show_password",
                schema_type={"type": "boolean"}, py_type="bool",
                doc="Write san_password (and chap_password) in clear; the result is then a "
                    f"secret. Default: masked as `{CONF_MASK}`.")
    conf = Prop(field="conf", name="conf", py="conf", schema_type={"type": "string"},
                py_type="str", doc="The cinder.conf fragment ([DEFAULT] enabled_backends "
                "and the backend's section).", output=True, required=True, optional=False)

    def call(ctx: Callable[[], Context], config: Callable[[], Any], args: dict[str, Any]
             ) -> dict[str, Any]:
        from datera_iac.cinder import render_conf
        from datera_iac.pulumi._codec import Secret

        show = bool(args.get("show_password"))
        text = render_conf(config(), backend_name=args.get("backend_name"), show_password=show)
        return {"conf": Secret(text) if show else text}

    return Function(
        token=PACKAGE_PREFIX + "cinderConf",
        doc="The cinder.conf section of the Cinder Datera driver for this provider's "
            "configuration (`datera-iac cinder conf`). Nothing is read from the DSP.",
        inputs=(backend, show), outputs=(conf,), types={}, call=call)


@functools.cache
def functions() -> dict[str, Function]:
    """Every function by token, in schema order."""
    from datera_iac.resources.queries import LISTINGS

    out = [_listing_function(lst) for lst in LISTINGS.values()]
    out += [_get_function(k, doc) for k, doc in _LOOKUPS.items()]
    out += [_cinder_volume_type(), _cinder_conf()]
    return {f.token: f for f in sorted(out, key=lambda f: f.token)}
