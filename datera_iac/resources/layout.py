"""Where a volume lives on the DSP: the Cinder layout, its ids and its URLs.

A volume is one app_instance holding storage instance ``storage-1`` with volume
``volume-1`` (the Cinder driver's layout). Every kind that reaches a volume (Volume,
Snapshot, NodeAttachment, ConsistencyGroup, the queries, manage) names it, splits its id
and builds its URLs with the helpers here, so no kind reaches into another's privates.

Ids are tenant-qualified: ``<tenant path>/<app_instance id>`` (``/root/3f2a...``), because
every DSP request is scoped by a tenant header; a bare app_instance id or name means the
provider's tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from datera_iac.errors import InputError
from datera_iac.resources._util import ROOT, check_tenant, normalize_tenant, split_id
from datera_iac.validators import AI_NAME_RE

if TYPE_CHECKING:
    from datera_iac.resources.base import Context

__all__ = [
    "AI_NAME_RE",
    "SI_NAME",
    "VOL_NAME",
    "ai_url",
    "cinder_reference_parts",
    "default_tenant",
    "first_si_vol",
    "logged_in",
    "parse_volume_id",
    "same_volume",
    "si_path",
    "volume_id_parts",
    "volume_ref_parts",
]

KIND = "Volume"
SI_NAME = "storage-1"
VOL_NAME = "volume-1"


def default_tenant(ctx: Context) -> str:
    """The provider's tenant (``datera_tenant_id``; ``/root`` in ``Map`` mode)."""
    t = getattr(ctx.client, "default_tenant", None)
    return normalize_tenant(t) or ROOT if t else ROOT


def parse_volume_id(ctx: Context, value: str, *, kind: str = KIND,
                    field: str = "id") -> tuple[str, str]:
    """(tenant path, app_instance id or name) of a volume id.

    ``/root/x/<ai>`` names its tenant; a bare ``<ai>`` (id or name) is in the provider's
    tenant. Raises InputError for an empty id, or a tenant outside the configured one
    (naming ``kind``/``field``: another kind's reference to a volume)."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{value!r} is not a volume id", kind=kind, field=field,
                         fix="use a volume's id output, e.g. /root/<app_instance id>")
    tenant, leaf = split_id(value, None)
    return check_tenant(ctx, tenant or default_tenant(ctx), kind=kind, field=field), leaf


def volume_id_parts(value: str, *, default_tenant: str = ROOT, kind: str = KIND,
                    field: str = "id") -> dict[str, str]:
    """The parts of a volume id, without a DSP: ``{"tenant", "app_instance"}``.

    ``/root/x/<ai>`` names its tenant, ``x:<ai>`` too (Cinder's ``tenant:`` prefix), a bare
    ``<ai>`` (an app_instance id or name) is in ``default_tenant``. Raises InputError."""
    if not isinstance(value, str) or not value.strip() or value.strip().endswith("/"):
        raise InputError(f"{value!r} is not a volume id", kind=kind, field=field,
                         fix="use a volume's id output, e.g. /root/<app_instance id>")
    tenant, leaf = split_id(value, None)
    return {"tenant": normalize_tenant(tenant, kind=kind, field=field) if tenant
            else default_tenant, "app_instance": leaf}


def cinder_reference_parts(ref: str, *, default_tenant: str = ROOT, kind: str = KIND,
                           field: str = "id") -> dict[str, str]:
    """The parts of a Cinder volume reference ``[tenant:]ai_name:si_name:vol_name`` (the
    driver's ``source-name``; no tenant, ``root:`` or an empty one means ``default_tenant``),
    without a DSP: ``{"tenant", "app_instance", "storage_instance", "volume"}``. Raises InputError."""
    parts = ref.strip().split(":") if isinstance(ref, str) else []
    if len(parts) == 4:
        t = parts.pop(0)
        tenant = (normalize_tenant(t, kind=kind, field=field) or ROOT if t not in ("", "root")
                  else default_tenant)
    else:
        tenant = default_tenant
    if len(parts) != 3 or not all(parts):
        raise InputError(f"{ref!r} is not a Cinder volume reference", kind=kind, field=field,
                         fix="use [tenant:]ai_name:si_name:vol_name")
    return {"tenant": tenant, "app_instance": parts[0], "storage_instance": parts[1],
            "volume": parts[2]}


def volume_ref_parts(ctx: Context, ref: str, *, kind: str = KIND, field: str = "id"
                     ) -> tuple[str, str, tuple[str, str] | None]:
    """(tenant, app_instance id or name, (si, vol) of a Cinder reference or None) of an
    id, a name or a ``[tenant:]ai:si:vol`` reference - confined to the configured tenant
    (InputError) before anything is read."""
    text = (ref or "").strip()
    if text.count(":") >= 2 and not text.startswith("/"):
        p = cinder_reference_parts(text, default_tenant=default_tenant(ctx), kind=kind,
                                   field=field)
        return (check_tenant(ctx, p["tenant"], kind=kind, field=field), p["app_instance"],
                (p["storage_instance"], p["volume"]))
    tenant, leaf = parse_volume_id(ctx, text, kind=kind, field=field)
    return tenant, leaf, None


def ai_url(leaf: str, *, kind: str = KIND, field: str = "id") -> str:
    """The app_instance URL for an id or name, one path segment whatever it holds: '.',
    '..' and '' are refused (an HTTP stack would resolve them to another resource) and
    everything else is percent-encoded ('/', '?', '#', '%' cannot leave the segment)."""
    text = str(leaf)
    if text.strip() in ("", ".", ".."):
        raise InputError(f"{leaf!r} is not a volume id or name", kind=kind, field=field,
                         fix="use the volume's id (<tenant>/<app_instance id>) or its name")
    return "/app_instances/" + quote(text, safe="")


def si_path(ai_path: str, name: str = SI_NAME) -> str:
    """The path of a storage instance (``storage-1`` unless named) of an app_instance path."""
    return f"{ai_path}/storage_instances/{name}"


def same_volume(a: str | None, b: str | None) -> bool:
    """Two volume ids name the same volume (a bare id matches any tenant's)."""
    if a == b:
        return True
    if a is None or b is None:
        return False
    ta, la = split_id(a, None)
    tb, lb = split_id(b, None)
    return la == lb and (ta is None or tb is None or ta == tb)


def first_si_vol(ai: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The storage instance named SI_NAME (else the first) and its volume named VOL_NAME
    (else the first), as copies. Runs twice per create (readiness, then the read-back):
    one pass over each list, no intermediate lists."""
    si = _named(ai.get("storage_instances"), SI_NAME)
    if si is None:
        return None, None
    vol = _named(si.get("volumes"), VOL_NAME)
    return dict(si), (dict(vol) if vol is not None else None)


def logged_in(si: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The initiators logged in to a storage instance (their names: the last segment of
    each ``active_initiators`` path)."""
    return tuple(str(i.get("path", i)).rpartition("/")[2] if isinstance(i, Mapping) else str(i)
                 for i in (si or {}).get("active_initiators") or [])


def _named(items: Any, name: str) -> Mapping[str, Any] | None:
    """The mapping in ``items`` whose ``name`` is ``name``, else the first mapping, else
    None (entries that are not mappings are ignored, as the DSP never sends them)."""
    first = None
    for item in items or ():
        if type(item) is dict or isinstance(item, Mapping):
            if item.get("name") == name:
                return item
            if first is None:
                first = item
    return first
