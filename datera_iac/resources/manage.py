"""Manage / unmanage support: which existing DSP objects could be imported safely.

Mirrors the Cinder Datera driver's ``get_manageable_volumes`` / ``get_manageable_snapshots``
(cinder 29, ``datera_api22._list_manageable_2_2``), so an operator sees the same verdicts
from us as from ``cinder manageable-list``:

* a volume is **not safe** when its name carries a Cinder volume id (``OS-...<uuid>``):
  Cinder manages it; or when we already manage it (its id is in ``managed``);
* it is safe only with the Cinder layout: exactly one storage instance holding one volume;
* and (our addition, the brief's "offline or no active initiators") not while initiators
  are logged in to an online storage instance (in use), nor while its ACL exports it to
  initiators (attached): importing such a volume is allowed by the DSP but the operator
  should know.

A snapshot is unsafe when already managed (its id in ``managed``) or when its parent is
unsafe for a reason other than belonging to Cinder (the driver's rule).

The listing costs one paged ``GET /app_instances`` per tenant: the list embeds storage
instances, volumes and their snapshots.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from datera_iac.resources._util import ROOT, check_tenant, join_id, normalize_tenant
from datera_iac.resources.base import Context
from datera_iac.resources.layout import default_tenant, first_si_vol

__all__ = [
    "ATTACHED",
    "CINDER_NAME_RE",
    "ManageableSnapshot",
    "ManageableVolume",
    "list_manageable_snapshots",
    "list_manageable_volumes",
]

#: A Cinder-made app_instance name: ``OS-`` ... a UUID (the driver's ``UUID4_RE``).
CINDER_NAME_RE = re.compile(
    r"^OS.*([a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})", re.IGNORECASE
)

ALREADY_CINDER = "app_instance already managed by Cinder (its name is OS-<volume id>)"
ALREADY_OURS = "already managed by this stack"
LAYOUT = "app_instance has more than one storage instance or volume"
IN_USE = "storage instance is online with active initiators (in use)"
ATTACHED = "storage instance is exported to initiators (attached: its ACL lists them)"
PARENT_UNSAFE = "parent volume not safe to manage"


@attrs.frozen(kw_only=True)
class ManageableVolume:
    """One app_instance and the verdict on importing it (Cinder's manageable entry)."""

    reference: str  # "[tenant:]ai_name:si_name:vol_name" (Cinder's source-name)
    id: str  # our volume id, "<tenant>/<ai id>" (what Volume.adopt takes too)
    name: str
    tenant: str
    size: int | None
    safe_to_manage: bool
    reason_not_safe: str
    cinder_id: str | None
    snapshots: tuple[tuple[str, str | None], ...] = ()  # (utc_ts, uuid), as extra_info


@attrs.frozen(kw_only=True)
class ManageableSnapshot:
    """One volume snapshot and the verdict on importing it."""

    reference: str  # the timestamp (Cinder's source-name for a snapshot)
    id: str  # our snapshot id, "<volume id>/<timestamp>"
    source_reference: str  # the parent volume's reference
    size: int | None
    safe_to_manage: bool
    reason_not_safe: str
    cinder_id: str | None
    uuid: str | None


def _verdict(ai: Mapping[str, Any], vid: str, managed: Collection[str]
             ) -> tuple[bool, str, str | None]:
    name = str(ai.get("name") or "")
    m = CINDER_NAME_RE.match(name)
    cinder_id = m.group(1) if m else None
    if cinder_id:
        return False, ALREADY_CINDER, cinder_id
    if vid in managed or str(ai.get("id")) in managed:
        return False, ALREADY_OURS, None
    sis = [s for s in ai.get("storage_instances") or [] if isinstance(s, Mapping)]
    if len(sis) != 1 or len([v for v in sis[0].get("volumes") or []]) != 1:
        return False, LAYOUT, None
    si = sis[0]
    if si.get("admin_state") == "online" and si.get("active_initiators"):
        return False, IN_USE, None
    acl = si.get("acl_policy") or {}
    if isinstance(acl, Mapping) and (acl.get("initiators") or acl.get("initiator_groups")):
        return False, ATTACHED, None
    return True, "", None


def _tenants(ctx: Context, tenant: str | None, tenants: Collection[str] | None) -> list[str]:
    if tenants:
        chosen = [normalize_tenant(t) or ROOT for t in tenants]
    else:
        chosen = [(normalize_tenant(tenant) or ROOT) if tenant else default_tenant(ctx)]
    return [check_tenant(ctx, t, kind="Volume", field="tenant") for t in chosen]


def _scan(ctx: Context, tenant: str, managed: Collection[str]
          ) -> list[tuple[ManageableVolume, Mapping[str, Any] | None]]:
    out: list[tuple[ManageableVolume, Mapping[str, Any] | None]] = []
    for ai in ctx.client.list("/app_instances", tenant=tenant):
        vid = join_id(tenant, str(ai.get("id")))
        safe, reason, cinder_id = _verdict(ai, vid, managed)
        si, vol = first_si_vol(ai)
        snaps = tuple(
            (str(s.get("utc_ts") or s.get("timestamp")), s.get("uuid"))
            for s in (vol or {}).get("snapshots") or [] if isinstance(s, Mapping)
        )
        prefix = "" if tenant == "/root" else tenant[len("/root/"):] + ":"
        ref = f"{prefix}{ai.get('name')}:{(si or {}).get('name')}:{(vol or {}).get('name')}"
        out.append((ManageableVolume(
            reference=ref, id=vid, name=str(ai.get("name")), tenant=tenant,
            size=(vol or {}).get("size"), safe_to_manage=safe, reason_not_safe=reason,
            cinder_id=cinder_id, snapshots=snaps,
        ), vol))
    return out


def list_manageable_volumes(
    ctx: Context, *, tenant: str | None = None, tenants: Collection[str] | None = None,
    managed: Collection[str] = (),
) -> list[ManageableVolume]:
    """Every app_instance of the tenant (the provider's by default) with a verdict.

    ``managed``: volume ids (or app_instance ids) this stack already manages."""
    return [mv for t in _tenants(ctx, tenant, tenants) for mv, _ in _scan(ctx, t, managed)]


def list_manageable_snapshots(
    ctx: Context, *, tenant: str | None = None, tenants: Collection[str] | None = None,
    managed: Collection[str] = (),
) -> list[ManageableSnapshot]:
    """Every volume snapshot of the tenant's app_instances with a verdict.

    ``managed``: snapshot ids (``<volume id>/<timestamp>``), timestamps or uuids already
    managed."""
    out: list[ManageableSnapshot] = []
    for t in _tenants(ctx, tenant, tenants):
        for mv, vol in _scan(ctx, t, ()):
            for s in (vol or {}).get("snapshots") or []:
                if not isinstance(s, Mapping):
                    continue
                ts = str(s.get("timestamp"))
                sid = f"{mv.id}/{ts}"
                uuid = s.get("uuid")
                uuid = None if uuid in (None, "", "00000000-0000-0000-0000-000000000000") \
                    else str(uuid)
                safe, reason = True, ""
                if sid in managed or ts in managed or (uuid and uuid in managed):
                    safe, reason = False, ALREADY_OURS
                elif not mv.safe_to_manage and not mv.cinder_id and \
                        mv.reason_not_safe != ALREADY_OURS:
                    safe, reason = False, PARENT_UNSAFE
                out.append(ManageableSnapshot(
                    reference=ts, id=sid, source_reference=mv.reference, size=mv.size,
                    safe_to_manage=safe, reason_not_safe=reason, cinder_id=None, uuid=uuid,
                ))
    return out
