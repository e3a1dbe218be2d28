"""The VolumeType kind: a Cinder volume type for the Datera backend, declared once.

A volume type is first of all a *Cinder* object: a name plus ``extra_specs`` (the ``DF:``
keys of :mod:`datera_iac.cinder`). Its outputs are the forms other tools need: the Cinder
``extra_specs`` map, the ``openstack volume type create`` line and the
terraform-provider-openstack HCL block. Volumes take their policy from a type through its
``extra_specs`` output (the Volume kind resolves them with :func:`datera_iac.cinder.resolve_policy`).

By default a type has **no DSP object**: create/update/delete make no API call, and
:meth:`VolumeType.read_known` returns the declaration itself. With ``materialize=True``
the type is also an app_template of the same name on the DSP (``/app_templates/<name>``,
one storage template ``storage-1`` with one volume template ``volume-1``: the layout Cinder
uses) holding what a template can hold: replica_count, placement_mode, ip_pool and the
size-independent performance_policy. A template cannot hold placement_policy (the template
schema has none), round_robin (an attach-time choice), iops_per_gb / bandwidth_per_gb (they
need the volume's size), several ip pools, or the Cinder-side fields (backend_name,
description, is_public).

The id is the type name when not materialized and the template's path
(``/app_templates/<name>``) when materialized, so ``delete`` knows from the id alone
whether there is anything to delete; that is also why ``materialize`` forces replacement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import attrs

from datera_iac import cinder
from datera_iac.cinder import PREFIX, PROPERTIES, VolumePolicy
from datera_iac.errors import Conflict, InputError, NotFound
from datera_iac.validators import parse_bool
from datera_iac.resources._util import (
    path_tail,
    split_owner_mark,
    strict_spec,
    with_owner_mark,
)
from datera_iac.resources.layout import SI_NAME, VOL_NAME
from datera_iac.resources.base import (
    create_token,
    Context,
    Kind,
    Observed,
    out_field,
    register,
    spec_field,
)

__all__ = ["VolumeTypeSpec", "VolumeTypeOutputs", "VolumeType", "TEMPLATE_ROOT", "observe_type",
           "type_outputs"]

KIND = "VolumeType"
TEMPLATE_ROOT = "/app_templates/"
#: Volume templates need a size; volumes made from a template get theirs from
#: ``template_override`` (as the driver sends it), so the smallest one is used.
TEMPLATE_SIZE = 1
#: The DF: properties an app template can hold.
TEMPLATE_FIELDS = ("replica_count", "placement_mode", "ip_pool", *cinder.QOS_MAX_KEYS)


def _df(name: str) -> Any:
    """A typed, optional input for one DF: property: None means the driver default."""
    prop = PROPERTIES[name]

    def convert(value: Any) -> Any:
        if value is None:
            return None
        text = cinder.normalize_value(name, value, kind=KIND, field=name)
        return cinder.typed_value(name, text)

    default = cinder.normalize_value(name, prop.default) or "''"
    return spec_field(
        doc=f"{prop.key}: {prop.help} Unset = driver default ({default}, or cinder.conf "
            "datera_volume_type_defaults).",
        default=None,
        converter=convert,
    )


def _type_name(_inst: Any, _attr: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 255 or value != value.strip():
        raise InputError(f"{value!r} is not a volume type name", kind=KIND, field="name",
                         fix="use 1-255 characters without leading or trailing spaces")


def _backend(_inst: Any, _attr: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{value!r} is not a backend name", kind=KIND, field="backend_name",
                         fix="use the volume_backend_name of the Datera backend in cinder.conf")


def _opt_text(field: str) -> Any:
    def check(_inst: Any, _attr: attrs.Attribute, value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise InputError(f"expected text, got {value!r}", kind=KIND, field=field,
                             fix="write it as a string")
    return check


def _bool(field: str) -> Any:
    def convert(value: Any) -> bool:
        try:
            return parse_bool(value)
        except ValueError:
            raise InputError(f"expected true or false, got {value!r}", kind=KIND, field=field,
                             fix="write true or false") from None
    return convert


@strict_spec
@attrs.frozen(kw_only=True)
class VolumeTypeSpec:
    """Inputs of a VolumeType: the Cinder type, one typed field per DF: property."""

    name: str = spec_field(doc="Cinder volume type name (and app_template name if materialized).",
                           replace=True, validator=_type_name)
    backend_name: str = spec_field(
        doc="volume_backend_name of the Datera backend in cinder.conf.",
        default=cinder.DEFAULT_BACKEND, validator=_backend)
    description: str | None = spec_field(doc="Cinder volume type description.", default=None,
                                         validator=_opt_text("description"))
    is_public: bool = spec_field(doc="Visible to every project (false: --private).",
                                 default=True, converter=_bool("is_public"))
    materialize: bool = spec_field(
        doc="Also create an app_template of this name on the DSP (replica_count, placement, "
            "ip_pool, performance_policy).",
        default=False, replace=True, converter=_bool("materialize"))
    replica_count: int | None = _df("replica_count")
    placement_mode: str | None = _df("placement_mode")
    placement_policy: str | None = _df("placement_policy")
    ip_pool: str | None = _df("ip_pool")
    template: str | None = _df("template")
    round_robin: bool | None = _df("round_robin")
    read_iops_max: int | None = _df("read_iops_max")
    write_iops_max: int | None = _df("write_iops_max")
    total_iops_max: int | None = _df("total_iops_max")
    read_bandwidth_max: int | None = _df("read_bandwidth_max")
    write_bandwidth_max: int | None = _df("write_bandwidth_max")
    total_bandwidth_max: int | None = _df("total_bandwidth_max")
    iops_per_gb: int | None = _df("iops_per_gb")
    bandwidth_per_gb: int | None = _df("bandwidth_per_gb")

    def df_specs(self) -> dict[str, str]:
        """The declared DF: properties (unset ones left out) as canonical strings."""
        return cinder.normalize_extra_specs(
            {PREFIX + n: getattr(self, n) for n in PROPERTIES if getattr(self, n) is not None},
            kind=KIND, resource=self.name,
        )

    def extra_specs(self) -> dict[str, str]:
        """The Cinder extra_specs map (volume_backend_name first)."""
        return cinder.extra_specs_map(self.df_specs(), backend_name=self.backend_name,
                                      resource=self.name)

    def policy(self, config: Any = None) -> VolumePolicy:
        """What a volume of this type gets, resolved like the driver."""
        return cinder.resolve_policy(self.df_specs(), config=config, kind=KIND,
                                     resource=self.name)


@attrs.frozen(kw_only=True)
class VolumeTypeOutputs:
    """Derived forms of the type."""

    id: str | None = out_field(doc="The type name, or /app_templates/<name> when materialized.")
    extra_specs: dict[str, str] | None = out_field(
        doc="Cinder extra_specs map, incl. volume_backend_name (feed it to a Volume).")
    openstack_command: str | None = out_field(doc="The `openstack volume type create` line.")
    terraform_hcl: str | None = out_field(
        doc="The terraform-provider-openstack openstack_blockstorage_volume_type_v3 block.")
    app_template_path: str | None = out_field(doc="The DSP app_template path, if materialized.")


def template_path(name: str) -> str:
    """The app_template URL of a type name: one percent-encoded path segment; '', '.' and
    '..' are refused (an HTTP stack would resolve them to another resource)."""
    text = str(name)
    if text.strip() in ("", ".", ".."):
        raise InputError(f"{name!r} is not a volume type name", kind="VolumeType", field="name",
                         fix="use the type's name or its id /app_templates/<name>")
    return TEMPLATE_ROOT + quote(text, safe="")


def type_outputs(spec: VolumeTypeSpec, id: str) -> VolumeTypeOutputs:
    return VolumeTypeOutputs(
        id=id,
        extra_specs=spec.extra_specs(),
        openstack_command=cinder.openstack_command(
            spec.name, spec.df_specs(), backend_name=spec.backend_name,
            description=spec.description, is_public=spec.is_public),
        terraform_hcl=cinder.terraform_hcl(
            spec.name, spec.df_specs(), backend_name=spec.backend_name,
            description=spec.description, is_public=spec.is_public),
        app_template_path=template_path(spec.name) if spec.materialize else None,
    )


def observe_type(spec: VolumeTypeSpec) -> Observed[VolumeTypeSpec, VolumeTypeOutputs]:
    id = template_path(spec.name) if spec.materialize else spec.name
    return Observed(id=id, spec=spec, outputs=type_outputs(spec, id))


def _pool_ref(ctx: Context, pool: str) -> Any:
    """The storage template's ip_pool: a path string (the v2.1 schema's form)."""
    return f"/access_network_ip_pools/{pool}"


def _template_body(ctx: Context, spec: VolumeTypeSpec) -> dict[str, Any]:
    policy = spec.policy(ctx.config)
    vol: dict[str, Any] = {"name": VOL_NAME, "size": TEMPLATE_SIZE,
                           "replica_count": policy.replica_count}
    vol.update(_placement(ctx, policy))
    qos = policy.template_performance_policy()
    if qos:
        vol["performance_policy"] = qos
    return {
        "name": spec.name,
        "storage_templates": [{
            "name": SI_NAME,
            "ip_pool": _pool_ref(ctx, policy.ip_pool_for(spec.name)),
            "volume_templates": [vol],
        }],
    }


def _template_values(ctx: Context, spec: VolumeTypeSpec) -> dict[str, Any]:
    """What the template should hold, in :class:`_Template` terms."""
    policy = spec.policy(ctx.config)
    out: dict[str, Any] = {f: getattr(policy, f) for f in TEMPLATE_FIELDS}
    out["ip_pool"] = policy.ip_pool_for(spec.name)
    return out


def _placement(ctx: Context, policy: VolumePolicy) -> dict[str, Any]:
    """Volume templates hold placement_mode only: the template schema has no
    placement_policy (volumes and app_instances gained it in v2.2, templates did not)."""
    return {"placement_mode": policy.placement_mode}


def _first(items: Any, name: str) -> dict[str, Any] | None:
    """The named item of a DSP collection rendered as a list or a dict, else the first."""
    if isinstance(items, dict):
        items = list(items.values())
    if not isinstance(items, list) or not items:
        return None
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return items[0] if isinstance(items[0], dict) else None


def _ref_tail(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("path")
    return path_tail(value) if isinstance(value, str) and value else None


class _Template:
    """What an app_template on the DSP says about the type (DF: names -> typed values)."""

    def __init__(self, data: dict[str, Any]) -> None:
        st = _first(data.get("storage_templates"), SI_NAME) or {}
        vt = _first(st.get("volume_templates"), VOL_NAME) or {}
        self.values: dict[str, Any] = {}
        if vt.get("replica_count") is not None:
            self.values["replica_count"] = int(vt["replica_count"])
        if vt.get("placement_mode"):
            self.values["placement_mode"] = vt["placement_mode"]
        if _ref_tail(st.get("ip_pool")):
            self.values["ip_pool"] = _ref_tail(st.get("ip_pool"))
        pp = vt.get("performance_policy") or {}
        for key in cinder.QOS_MAX_KEYS:
            self.values[key] = int(pp.get(key) or 0)


@register
class VolumeType(Kind[VolumeTypeSpec, VolumeTypeOutputs]):
    """A Cinder volume type for the Datera backend (optionally also a DSP app_template).

    Import id: an app_template name or path (the type is imported as materialized)."""

    name = "VolumeType"
    token = "datera:index:VolumeType"
    tf_type = "datera_volume_type"
    Spec = VolumeTypeSpec
    Outputs = VolumeTypeOutputs
    import_id_doc = "<app template name or /app_templates/<name>>"

    # ---- pure -----------------------------------------------------------------------

    def validate(self, spec: VolumeTypeSpec) -> None:
        """A materialized type must also be a valid DSP template: a DSP name, one ip_pool,
        and no DF:template of its own (a template cannot point at another)."""
        spec.df_specs()
        if not spec.materialize:
            return
        if not cinder.NAME_RE.match(spec.name):
            raise InputError(f"{spec.name!r} cannot name a DSP app_template", kind=KIND,
                             field="name",
                             fix="use 3-64 letters, digits, '_', '-' or '.', starting with a "
                                 "letter or '_', or set materialize: false")
        if spec.ip_pool and "," in spec.ip_pool:
            raise InputError("an app_template holds one ip_pool, not a list", kind=KIND,
                             field="ip_pool",
                             fix="name one pool, or set materialize: false")
        if spec.template:
            raise InputError("a materialized type is itself a template", kind=KIND,
                             field="template",
                             fix="drop template, or set materialize: false")

    # ---- DSP ------------------------------------------------------------------------

    def read(self, ctx: Context, id: str) -> Observed[VolumeTypeSpec, VolumeTypeOutputs] | None:
        """Without the recorded spec only a materialized type can be read (from its
        app_template); a bare type name has no DSP object and reads as gone. Adapters
        holding state call :meth:`read_known` instead."""
        if not id.startswith(TEMPLATE_ROOT):
            return None
        return self._read_template(ctx, path_tail(id) or "", None)

    def read_many(
        self, ctx: Context, ids: Iterable[str]
    ) -> dict[str, Observed[VolumeTypeSpec, VolumeTypeOutputs] | None]:
        """Reports nothing (every id maps to None) and makes no call.

        A type cannot be observed without its declaration: its Cinder-side fields
        (description, backend_name, round_robin, iops_per_gb...) live nowhere on the DSP,
        so an id-only read would show them as drift. Callers holding state follow a None
        with :meth:`read_known` (the engine's refresh does), which reads the template of a
        materialized type once and answers a plain type from its declaration."""
        return {i: None for i in ids}

    def read_known(
        self, ctx: Context, id: str, known: VolumeTypeSpec | None
    ) -> Observed[VolumeTypeSpec, VolumeTypeOutputs] | None:
        """A type that is not materialized is its declaration (no API call); a
        materialized one is its declaration updated with what the app_template holds."""
        if known is None:
            return self.read(ctx, id)
        if not known.materialize:
            return observe_type(known)
        return self._read_template(ctx, known.name, known)

    def create(self, ctx: Context, spec: VolumeTypeSpec) -> Observed[VolumeTypeSpec, VolumeTypeOutputs]:
        self.validate(spec)
        if not spec.materialize:
            return observe_type(spec)

        # the token this create writes (the template's descr): after a lost response or a
        # 409 only a template carrying it is ours, never a same-named one of someone else
        token = create_token()
        body = {**_template_body(ctx, spec), "descr": with_owner_mark(None, token)}

        def find() -> Any:
            try:
                data = ctx.client.get(template_path(spec.name))
            except NotFound:
                return None
            return data if split_owner_mark(data.get("descr"))[1] == token else None

        try:
            data = ctx.client.create("/app_templates", body, find=find)
        except Conflict as e:
            raise Conflict(
                f"an app_template {spec.name!r} already exists and this create did not make it; "
                f"import it (`datera-iac import VolumeType <name> {spec.name}`) or choose "
                "another name", method=e.method, path=e.path, name=e.name) from None
        return self._from_answer(ctx, spec, data)

    def update(
        self, ctx: Context, id: str, old: VolumeTypeSpec, new: VolumeTypeSpec
    ) -> Observed[VolumeTypeSpec, VolumeTypeOutputs]:
        """Cinder-side fields need no write. A materialized template is read once
        and PUT (the whole layout, one call) only when it differs from the resolved policy."""
        self.validate(new)
        if not new.materialize:
            return observe_type(new)
        # Compare with the template as it is (not with ``old``): a template changed out of
        # band is put right even when the caller's old spec is its stale state.
        try:
            live = ctx.client.get(template_path(new.name))
        except NotFound:
            raise NotFound(f"app_template {new.name!r} is gone; refresh to re-create it",
                           path=template_path(new.name)) from None
        want = _template_values(ctx, new)
        if {k: _Template(live).values.get(k) for k in want} != want:
            body = _template_body(ctx, new)
            live = ctx.client.put(template_path(new.name),
                                  {"storage_templates": body["storage_templates"]})
        return self._from_answer(ctx, new, live)

    def delete(self, ctx: Context, id: str) -> None:
        """A bare type name: nothing on the DSP, no call. A template path: DELETE it."""
        if not id.startswith(TEMPLATE_ROOT):
            return
        try:
            ctx.client.delete(template_path(path_tail(id) or ""))
        except NotFound:
            return

    def planned_outputs(self, observed: Observed[VolumeTypeSpec, VolumeTypeOutputs],
                        new: VolumeTypeSpec) -> VolumeTypeOutputs:
        """Every output follows from the declaration: what an update to ``new`` leaves."""
        return type_outputs(new, observed.id)

    def find(self, ctx: Context, spec: VolumeTypeSpec) -> Observed[VolumeTypeSpec, VolumeTypeOutputs] | None:
        """The template a datera-iac create made (it carries a create token); a same-named
        template made by anyone else is never found (adopted)."""
        if not spec.materialize:
            return None  # nothing on the DSP; creating again is free
        try:
            data = ctx.client.get(template_path(spec.name))
        except NotFound:
            return None
        if split_owner_mark(data.get("descr"))[1] is None:
            return None
        return observe_type(self._merge(ctx, spec.name, spec, _Template(data)))

    def find_own(self, ctx: Context, spec: VolumeTypeSpec, token: str | None
                 ) -> Observed[VolumeTypeSpec, VolumeTypeOutputs] | None:
        """A type that is not materialized has nothing on the DSP to adopt (None: creating
        it again is free); a template only when its descr carries exactly ``token``."""
        if not spec.materialize or not token:
            return None
        try:
            data = ctx.client.get(template_path(spec.name))
        except NotFound:
            return None
        if split_owner_mark(data.get("descr"))[1] != token:
            return None
        return observe_type(self._merge(ctx, spec.name, spec, _Template(data)))

    def adopt(self, ctx: Context, ref: str) -> Observed[VolumeTypeSpec, VolumeTypeOutputs]:
        name = path_tail(ref) if ref.startswith(TEMPLATE_ROOT) else ref.strip()
        found = self._read_template(ctx, name or "", None)
        if found is None:
            raise NotFound(f"no app_template {name!r} to import as a VolumeType",
                           path=template_path(name or ""))
        return found

    def from_template(self, ctx: Context, data: dict[str, Any]
                      ) -> Observed[VolumeTypeSpec, VolumeTypeOutputs]:
        """The type an app_template entity shows (an item of a ``GET /app_templates``
        list), as :meth:`adopt` would read it: no further request."""
        name = str(data.get("name") or path_tail(data.get("path")) or "")
        return observe_type(self._merge(ctx, name, None, _Template(data)))

    # ---- helpers --------------------------------------------------------------------

    def _read_template(
        self, ctx: Context, name: str, known: VolumeTypeSpec | None
    ) -> Observed[VolumeTypeSpec, VolumeTypeOutputs] | None:
        try:
            data = ctx.client.get(template_path(name))
        except NotFound:
            return None
        # The DSP renders the volume template's performance_policy inline (a nested
        # object of the template read); no separate GET per read.
        tpl = _Template(data)
        return observe_type(self._merge(ctx, name, known, tpl))

    def _merge(
        self, ctx: Context, name: str, known: VolumeTypeSpec | None, tpl: _Template
    ) -> VolumeTypeSpec:
        """The spec the template shows. A field the declaration left unset stays unset
        while the template holds its resolved default (no false drift); an observed value
        that differs is reported. Fields a template cannot hold come from the declaration."""
        base = known or VolumeTypeSpec(name=name, materialize=True)
        resolved = base.policy(ctx.config)
        changes: dict[str, Any] = {}
        for field in TEMPLATE_FIELDS:
            if field not in tpl.values:
                continue
            seen = tpl.values[field]
            declared = getattr(base, field)
            if declared is None and seen == getattr(resolved, field):
                continue
            if known is None and field in cinder.QOS_MAX_KEYS and seen == 0:
                continue
            changes[field] = seen
        return attrs.evolve(base, **changes) if changes else base

    def _from_answer(
        self, ctx: Context, spec: VolumeTypeSpec, data: Any
    ) -> Observed[VolumeTypeSpec, VolumeTypeOutputs]:
        """The observation from a POST/PUT answer (the DSP returns the template), else
        from one GET."""
        if isinstance(data, dict) and data.get("storage_templates"):
            return observe_type(self._merge(ctx, spec.name, spec, _Template(data)))
        return self._must_read(ctx, spec)

    def _must_read(self, ctx: Context, spec: VolumeTypeSpec) -> Observed[VolumeTypeSpec, VolumeTypeOutputs]:
        found = self._read_template(ctx, spec.name, spec)
        if found is None:
            raise NotFound(f"app_template {spec.name!r} vanished right after it was written",
                           path=template_path(spec.name))
        return found
