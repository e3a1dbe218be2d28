"""The Tenant kind: a node of the DSP's tenant tree (``/root/<name>``, nested allowed).

The id is the tenant's path (``/root/team-a``), because that is how the DSP addresses a
tenant (``/tenants/root/team-a``) and how every other kind names the tenant it lives in.
Only the description can change in place (the DSP's PUT accepts ``descr`` alone); a new
name or parent makes a new tenant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs

from datera_iac.errors import Conflict, NotFound
from datera_iac.resources._util import (
    NAME_FIX,
    split_owner_mark,
    with_owner_mark,
    ROOT,
    TENANT_SEGMENT_RE,
    NamesResource,
    check_tenant,
    normalize_tenant,
    pattern,
    strict_spec,
    tenant_name,
    tenant_parent,
)
from datera_iac.resources.base import (
    create_token,
    Context,
    Dependent,
    Kind,
    Observed,
    out_field,
    register,
    spec_field,
)

__all__ = ["Tenant", "TenantOutputs", "TenantSpec", "observe_tenant", "tenant_url"]

KIND = "Tenant"
DESCR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-\s.]{2,127}$")


def _parent(value: Any) -> str:
    return normalize_tenant(value if value is not None else ROOT, kind=KIND, field="parent") or ROOT


@strict_spec
@attrs.frozen(kw_only=True)
class TenantSpec:
    """Inputs of a Tenant."""

    name: str = spec_field(
        doc="Tenant name (3-64 letters, digits, '_', '-', '.'; starts with a letter or '_').",
        replace=True,
        validator=pattern(KIND, "name", TENANT_SEGMENT_RE, NAME_FIX),
    )
    description: str | None = spec_field(
        doc="Free text (3-128 letters, digits, spaces, '_', '-', '.').",
        default=None,
        validator=pattern(KIND, "description", DESCR_RE,
                          "use 3-128 letters, digits, spaces, '_', '-' or '.', starting with "
                          "a letter or '_'", optional=True),
    )
    parent: str = spec_field(
        doc="Parent tenant path ('/root' by default; 'x' means '/root/x').",
        default=ROOT,
        replace=True,
        converter=_parent,
        reference="Tenant",
    )

    @property
    def path(self) -> str:
        return f"{self.parent.rstrip('/')}/{self.name}"


@attrs.resolve_types
@attrs.frozen(kw_only=True)
class TenantOutputs:
    """What the DSP reports for a tenant."""

    path: str | None = out_field(doc="Tenant path, e.g. /root/team-a (also the id).")
    name: str | None = out_field(doc="Tenant name.")
    parent_path: str | None = out_field(doc="Parent tenant path.")
    subtenants: list[str] | None = out_field(doc="Paths of child tenants.")


def tenant_url(path: str) -> str:
    """The URL path of a tenant: ``/root/a`` -> ``/tenants/root/a``."""
    return "/tenants/" + path.strip("/")


def observe_tenant(data: dict[str, Any], path: str) -> Observed[TenantSpec, TenantOutputs]:
    parent = data.get("parent_path") or tenant_parent(path)
    name = data.get("name") or tenant_name(path)
    subs = [
        (s.get("path") if isinstance(s, dict) else str(s)) for s in data.get("subtenants") or []
    ]
    spec = TenantSpec(name=name, description=split_owner_mark(data.get("descr"))[0],
                      parent=normalize_tenant(parent) or ROOT)
    return Observed(
        id=spec.path, spec=spec,
        outputs=TenantOutputs(path=spec.path, name=name, parent_path=spec.parent,
                              subtenants=[s for s in subs if s]),
    )


@register
class Tenant(NamesResource, Kind[TenantSpec, TenantOutputs]):
    """A DSP tenant. Import id: the tenant path (``/root/team-a``) or its name."""

    name = "Tenant"
    token = "datera:index:Tenant"
    tf_type = "datera_tenant"
    Spec = TenantSpec
    Outputs = TenantOutputs
    import_id_doc = "<tenant path, e.g. /root/team-a>"

    def confine(self, ctx: Context, spec: TenantSpec) -> None:
        # the tenant itself must be inside the boundary (its parent may be above it: a
        # configuration bound to team-a may create team-a)
        check_tenant(ctx, spec.path, kind=KIND, field="parent")

    def confine_ref(self, ctx: Context, ref: str, *, kind: str, field: str) -> None:
        check_tenant(ctx, normalize_tenant(ref, kind=kind, field=field) or ROOT, kind=kind, field=field)

    def read(self, ctx: Context, id: str) -> Observed[TenantSpec, TenantOutputs] | None:
        path = self._path(ctx, id)
        try:
            data = ctx.client.get(tenant_url(path), tenant=ROOT)
        except NotFound:
            return None
        return observe_tenant(data, path)

    def read_many(
        self, ctx: Context, ids: Iterable[str]
    ) -> dict[str, Observed[TenantSpec, TenantOutputs] | None]:
        """One paged list of the tenants; ids the list does not show (nested tenants
        some DSPs list only under their parent) fall back to a GET each."""
        wanted = list(ids)
        seen: dict[str, Observed[TenantSpec, TenantOutputs]] = {}
        for item in ctx.client.list("/tenants", tenant=ROOT):
            parent = normalize_tenant(item.get("parent_path") or ROOT) or ROOT
            if not item.get("name") or item.get("name") == "root" and parent == ROOT:
                continue
            path = f"{parent.rstrip('/')}/{item['name']}"
            seen[path] = observe_tenant(item, path)
        out: dict[str, Observed[TenantSpec, TenantOutputs] | None] = {}
        for i in wanted:
            key = normalize_tenant(i, kind=KIND, field="id") or ROOT
            out[i] = seen[key] if key in seen else self.read(ctx, key)
        return out

    def create(self, ctx: Context, spec: TenantSpec) -> Observed[TenantSpec, TenantOutputs]:
        check_tenant(ctx, spec.path, kind=KIND, field="parent")
        # the token this create writes (in descr): after a lost response or a 409 only a
        # tenant carrying it is ours; a same-named tenant without it is someone else's
        token = create_token()
        body: dict[str, Any] = {"name": spec.name, "parent_path": spec.parent,
                                "descr": with_owner_mark(spec.description, token)}

        def find() -> Any:
            raw = self._raw(ctx, spec.path)
            if raw is None or split_owner_mark(raw.get("descr"))[1] != token:
                return None
            return {"name": spec.name, "parent_path": spec.parent}

        try:
            ctx.client.create("/tenants", body, tenant=ROOT, find=find)
        except Conflict as e:
            raise Conflict(
                f"a tenant {spec.path!r} already exists and this create did not make it; "
                f"import it (`datera-iac import Tenant <name> {spec.path}`) or choose another "
                "name", method=e.method, path=e.path, name=e.name) from None
        return self._must_read(ctx, spec.path)

    def _raw(self, ctx: Context, path: str) -> dict[str, Any] | None:
        try:
            data = ctx.client.get(tenant_url(path), tenant=ROOT)
        except NotFound:
            return None
        return data if isinstance(data, dict) else None

    def update(
        self, ctx: Context, id: str, old: TenantSpec, new: TenantSpec
    ) -> Observed[TenantSpec, TenantOutputs]:
        path = self._path(ctx, id)
        if old.description != new.description:
            # keep the create's token (the proof of ownership) after the new description
            token = split_owner_mark((self._raw(ctx, path) or {}).get("descr"))[1]
            descr = with_owner_mark(new.description, token) if token else new.description
            ctx.client.put(tenant_url(path), {"descr": descr}, tenant=ROOT)
        return self._must_read(ctx, path)

    def delete(self, ctx: Context, id: str) -> None:
        try:
            ctx.client.delete(tenant_url(self._path(ctx, id)), tenant=ROOT)
        except NotFound:
            return

    #: the DSP refuses to delete a tenant that still holds objects (409)
    dependents_effect = "fails"

    def dependents(self, ctx: Context, id: str) -> list[Dependent]:
        """What keeps the DSP from deleting the tenant: its volumes (app_instances), app
        templates (volume types) and sub-tenants. A tenant already gone holds nothing."""
        path = self._path(ctx, id)
        try:
            out = [Dependent("Volume", f"{path}/{ai.get('id')}", str(ai.get("name")))
                   for ai in ctx.client.list("/app_instances", tenant=path)]
            out += [Dependent("VolumeType", f"/app_templates/{t.get('name')}", str(t.get("name")))
                    for t in ctx.client.list("/app_templates", tenant=path)
                    # the list shows an ancestor's templates too: only this tenant's count
                    if t.get("tenant") and normalize_tenant(str(t["tenant"])) == path]
        except NotFound:
            return []
        for t in ctx.client.list("/tenants", tenant=ROOT):
            parent = normalize_tenant(t.get("parent_path") or ROOT) or ROOT
            if parent == path and t.get("name"):
                sub = f"{path}/{t['name']}"
                out.append(Dependent("Tenant", sub, sub))
        return out

    def find(self, ctx: Context, spec: TenantSpec) -> Observed[TenantSpec, TenantOutputs] | None:
        """The tenant at the spec's path when a datera-iac create made it (it carries a
        create token); a same-named tenant made by anyone else is never found (adopted)."""
        raw = self._raw(ctx, self._path(ctx, spec.path))  # confined before the read
        if raw is None or split_owner_mark(raw.get("descr"))[1] is None:
            return None
        return observe_tenant(raw, spec.path)

    def find_own(self, ctx: Context, spec: TenantSpec, token: str | None
                 ) -> Observed[TenantSpec, TenantOutputs] | None:
        """The tenant only when its description carries exactly ``token``."""
        if not token:
            return None
        raw = self._raw(ctx, self._path(ctx, spec.path))
        if raw is None or split_owner_mark(raw.get("descr"))[1] != token:
            return None
        return observe_tenant(raw, spec.path)

    def adopt(self, ctx: Context, ref: str) -> Observed[TenantSpec, TenantOutputs]:
        found = self.read(ctx, ref)
        if found is None:
            raise NotFound(f"no tenant {normalize_tenant(ref)!r} to import",
                           path=tenant_url(normalize_tenant(ref) or ROOT))
        return found

    @staticmethod
    def _path(ctx: Context, id: str) -> str:
        """The tenant path of an id, inside the configured tenant boundary."""
        path = normalize_tenant(id, kind=KIND, field="id") or ROOT
        return check_tenant(ctx, path, kind=KIND, field="id")

    def _must_read(self, ctx: Context, path: str) -> Observed[TenantSpec, TenantOutputs]:
        found = self.read(ctx, path)
        if found is None:
            raise NotFound(f"tenant {path!r} vanished right after it was written",
                           path=tenant_url(path))
        return found
