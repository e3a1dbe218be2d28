"""Consistency groups: several volumes whose snapshots are taken at one instant.

What the DSP supports (its v2.1/v2.2 schema) decides the shape. An app_instance holds
storage instances and their volumes, and ``POST /app_instances/<id>/snapshots`` "takes a
snapshot of all volumes in the app instance immediately"; ``PUT /app_instances/<id>
{restore_point}`` restores every volume from one (offline only), and ``clone_snapshot_src``
accepts such a snapshot to make a new app_instance with the same volumes. The DSP cannot
move a volume between app_instances, so "a group of our Volumes" (each its own
app_instance, the Cinder layout) cannot be snapshotted together: a group is its own
app_instance that holds its member volumes. Hence two kinds:

* ``ConsistencyGroup``: one app_instance, one storage instance (``storage-1``: one iSCSI
  target, each member a LUN) holding the declared volumes (``volumes``: name -> GiB). A
  member grows in place and a new member is added in place; removing one, or shrinking
  it, is a plan error (its data would be lost). ``snapshot_id`` clones the whole group
  from a group snapshot; ``restore_point`` reverts every member in place to one (a
  plan-visible trigger, refused while initiators are logged in unless ``force_restore``).
* ``ConsistencyGroupSnapshot``: one app_instance-level snapshot (id ``<group id>/<timestamp>``).

Deleting a group that still has snapshots the run does not delete first is refused, naming
them (no silent cascade, like a Volume), unless ``cascade``.
"""

from __future__ import annotations

import logging
import re
import uuid as uuid_mod
from collections.abc import Mapping
from typing import Any

import attrs

from datera_iac.errors import Conflict, InputError, NotFound
from datera_iac.resources._util import (
    NAME_FIX,
    NAME_RE,
    SNAP_TS_RE,
    NamesResource,
    check,
    delete_app_instance,
    join_id,
    normalize_tenant,
    pattern,
    restore_timestamp,
    strict_spec,
    uuid_finder,
    wait_for,
)
from datera_iac.resources.base import (
    Context,
    Dependent,
    Diff,
    FieldChange,
    Kind,
    Observed,
    diff_specs,
    out_field,
    register,
    spec_field,
)
from datera_iac.resources.calls import Call, offline_around, send_calls
from datera_iac.resources.layout import (
    AI_NAME_RE,
    SI_NAME,
    ai_url,
    default_tenant,
    logged_in,
    parse_volume_id,
    same_volume,
    si_path,
)
from datera_iac.resources.volume import MAX_SIZE_GIB

__all__ = ["ConsistencyGroup", "ConsistencyGroupSnapshot", "is_group", "observe_group"]

log = logging.getLogger(__name__)
KIND = "ConsistencyGroup"
SNAP_KIND = "ConsistencyGroupSnapshot"
_ZERO_UUID = "00000000-0000-0000-0000-000000000000"


def _tenant(value: Any) -> str | None:
    return normalize_tenant(value, kind=KIND, field="tenant")


def _volumes(value: Any) -> dict[str, int]:
    """``{member name: size GiB}``: names as the DSP allows them, sizes 1..32768."""
    check(KIND, "volumes", isinstance(value, Mapping) and len(value) > 0,
          f"{value!r} is not a map of volume names to sizes",
          "give at least one member, e.g. { data = 10, log = 2 }")
    out = {}
    for name, size in value.items():
        check(KIND, f"volumes.{name}", isinstance(name, str) and bool(NAME_RE.fullmatch(name)),
              f"{name!r} is not a volume name", NAME_FIX)
        try:
            gib = int(size)
        except (TypeError, ValueError):
            gib = -1
        check(KIND, f"volumes.{name}", gib == size or str(gib) == str(size).strip(),
              f"{size!r} is not a size in GiB", "give a whole number of GiB")
        check(KIND, f"volumes.{name}", 1 <= gib <= MAX_SIZE_GIB,
              f"{gib} GiB is out of range", f"give 1..{MAX_SIZE_GIB} GiB")
        out[name] = gib
    return dict(sorted(out.items()))


def _group_point(_inst: Any, _attr: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    check(KIND, "restore_point", isinstance(value, str)
          and bool(SNAP_TS_RE.match(restore_timestamp(value))),
          f"{value!r} is neither a group snapshot timestamp nor its id",
          "use the ConsistencyGroupSnapshot's timestamp or id")


@strict_spec
@attrs.frozen(kw_only=True)
class ConsistencyGroupSpec:
    """Inputs of a ConsistencyGroup."""

    name: str = spec_field(
        doc="app_instance name, unique in its tenant; a change renames in place.",
        validator=pattern(KIND, "name", AI_NAME_RE, NAME_FIX),
    )
    volumes: dict[str, int] = spec_field(
        doc="The member volumes, name -> size in GiB (one LUN each on the group's iSCSI "
        "target). A member grows in place and a new one is added in place; removing or "
        "shrinking one is a plan error.",
        converter=_volumes,
    )
    tenant: str | None = spec_field(
        doc="Tenant ('x' or '/root/x'); unset means the provider's tenant. Changing it "
        "re-creates the group.",
        default=None, replace=True, converter=_tenant, reference="Tenant",
    )
    replica_count: int = spec_field(
        doc="Replicas of each member (1..5); changing it re-creates the group.",
        default=3, replace=True,
        validator=lambda _i, _a, v: check(KIND, "replica_count", isinstance(v, int)
                                          and 1 <= v <= 5, f"{v!r} is out of range",
                                          "use 1..5"),
    )
    snapshot_id: str | None = spec_field(
        doc="Create the group as a clone of a group snapshot (a ConsistencyGroupSnapshot's "
        "id): every member comes from it, at the same instant. The members must be named as "
        "the source's; a larger size grows the clone.",
        default=None, replace=True, reference="ConsistencyGroupSnapshot",
    )
    restore_point: str | None = spec_field(
        doc="Revert every member in place to one group snapshot (its timestamp or id): a "
        "trigger - a new value plans a revert (an update; data written since is lost), the "
        "same value again changes nothing. Refused while initiators are logged in unless "
        "force_restore is set.",
        default=None, validator=_group_point,
    )
    force_restore: bool = spec_field(
        doc="Revert (restore_point) even while initiators are logged in.", default=False,
    )
    cascade: bool | None = spec_field(
        doc="Let a delete or replacement of the group delete its snapshots with it. Without "
        "it, a plan that deletes a group that still has snapshots is refused, naming them. "
        "Recorded, never sent to the DSP.",
        default=None,
    )


@attrs.resolve_types
@attrs.frozen(kw_only=True)
class ConsistencyGroupOutputs:
    """What the DSP reports for a group."""

    ai_id: str | None = out_field(doc="The app_instance id.")
    path: str | None = out_field(doc="The app_instance path.")
    iqn: str | None = out_field(doc="The group's iSCSI target (each member is a LUN).")
    admin_state: str | None = out_field(doc="online or offline.")
    volume_paths: dict[str, str] | None = out_field(doc="Each member's volume path.")
    snapshots: list[str] | None = out_field(doc="The timestamps of the group's snapshots.")


def _si(ai: Mapping[str, Any]) -> Mapping[str, Any] | None:
    sis = ai.get("storage_instances") or []
    if isinstance(sis, Mapping):
        sis = list(sis.values())
    for s in sis:
        if isinstance(s, Mapping) and s.get("name") == SI_NAME:
            return s
    return sis[0] if sis and isinstance(sis[0], Mapping) else None


def _members(ai: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    si = _si(ai) or {}
    vols = si.get("volumes") or []
    if isinstance(vols, Mapping):
        vols = list(vols.values())
    return {str(v.get("name")): v for v in vols if isinstance(v, Mapping)}


def _snap_list(ai: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    snaps = ai.get("snapshots") or []
    if isinstance(snaps, Mapping):
        snaps = list(snaps.values())
    return [s for s in snaps if isinstance(s, Mapping)]


def _observe(tenant: str, ai: Mapping[str, Any], known: ConsistencyGroupSpec | None
             ) -> Observed[ConsistencyGroupSpec, ConsistencyGroupOutputs]:
    members = _members(ai)
    rc = {int(v.get("replica_count") or 3) for v in members.values()}
    point = ai.get("restore_point") or None
    spec = ConsistencyGroupSpec(
        name=str(ai.get("name")), tenant=tenant,
        volumes={n: int(v.get("size") or 1) for n, v in members.items()} or {"volume-1": 1},
        replica_count=rc.pop() if len(rc) == 1 else 3,
        snapshot_id=known.snapshot_id if known else None,
        restore_point=(known.restore_point if known and known.restore_point
                       and restore_timestamp(known.restore_point) == point else point),
        force_restore=known.force_restore if known else False,
        cascade=known.cascade if known else None,
    )
    si = _si(ai) or {}
    access = si.get("access") or {}
    return Observed(
        id=join_id(tenant, str(ai.get("id"))), spec=spec,
        outputs=ConsistencyGroupOutputs(
            ai_id=str(ai.get("id")), path=ai.get("path"), iqn=access.get("iqn"),
            admin_state=ai.get("admin_state"),
            volume_paths={n: str(v.get("path")) for n, v in members.items()},
            snapshots=sorted(str(s.get("timestamp")) for s in _snap_list(ai))),
    )


def is_group(ai: Mapping[str, Any]) -> bool:
    """Whether an app_instance has a group's layout: one storage instance holding several
    volumes (one volume is the Cinder layout, listed as a Volume)."""
    sis = ai.get("storage_instances") or []
    return len(sis) == 1 and len(_members(ai)) >= 2


def observe_group(tenant: str, ai: Mapping[str, Any]
                  ) -> Observed[ConsistencyGroupSpec, ConsistencyGroupOutputs]:
    """A group as listing and import read it (no declaration known)."""
    return _observe(tenant, ai, None)


@register
class ConsistencyGroup(NamesResource, Kind[ConsistencyGroupSpec, ConsistencyGroupOutputs]):
    """Several volumes in one app_instance, snapshotted together. Import id: the group's
    id (``<tenant>/<app_instance id>``) or its app_instance name."""

    name = "ConsistencyGroup"
    token = "datera:index:ConsistencyGroup"
    tf_type = "datera_consistency_group"
    Spec = ConsistencyGroupSpec
    Outputs = ConsistencyGroupOutputs
    import_id_doc = "<tenant>/<app_instance id> | <app_instance name>"
    dependents_effect = "deletes"

    def diff(self, old: ConsistencyGroupSpec, new: ConsistencyGroupSpec) -> Diff:
        """Members grow or are added in place; a removed or shrunk member is refused.
        ``restore_point`` is a trigger; ``force_restore``/``cascade`` never plan alone."""
        gone = sorted(set(old.volumes) - set(new.volumes))
        if gone:
            raise InputError(f"removing member volume(s) {', '.join(gone)} would delete their "
                             "data", kind=KIND, field=f"volumes.{gone[0]}", resource=new.name,
                             fix="keep them in volumes (a group cannot drop a member in "
                             "place), or make a new group")
        for n, size in new.volumes.items():
            if n in old.volumes and size < old.volumes[n]:
                raise InputError(f"cannot shrink member {n} from {old.volumes[n]} to {size} "
                                 "GiB", kind=KIND, field=f"volumes.{n}", resource=new.name,
                                 fix=f"keep volumes.{n} >= {old.volumes[n]}")
        ignore = ["restore_point", "force_restore", "cascade"]
        if old.snapshot_id is None or new.snapshot_id is None:
            ignore.append("snapshot_id")
        if old.tenant is None or new.tenant is None:
            ignore.append("tenant")
        d = diff_specs(old, new, ignore=ignore)
        changes = list(d.changes)
        if new.restore_point and (old.restore_point is None
                                  or restore_timestamp(new.restore_point)
                                  != restore_timestamp(old.restore_point)):
            changes.append(FieldChange(name="restore_point", old=old.restore_point,
                                       new=new.restore_point))
        if old.cascade is not None and new.cascade is not None and old.cascade != new.cascade:
            changes.append(FieldChange(name="cascade", old=old.cascade, new=new.cascade))
        return Diff(changes=tuple(changes))

    # ---- read ------------------------------------------------------------------------

    def _get(self, ctx: Context, id: str) -> tuple[str, Mapping[str, Any]] | None:
        tenant, leaf = parse_volume_id(ctx, id, kind=KIND)
        try:
            return tenant, ctx.client.get(ai_url(leaf, kind=KIND), tenant=tenant)
        except NotFound:
            for ai in ctx.client.list("/app_instances", tenant=tenant, filter=f"name={leaf}"):
                if ai.get("name") == leaf:
                    return tenant, ai
            return None

    def read(self, ctx: Context, id: str) -> Observed[ConsistencyGroupSpec, ConsistencyGroupOutputs] | None:
        return self.read_known(ctx, id, None)

    def read_known(self, ctx: Context, id: str, known: ConsistencyGroupSpec | None
                   ) -> Observed[ConsistencyGroupSpec, ConsistencyGroupOutputs] | None:
        got = self._get(ctx, id)
        return None if got is None else _observe(got[0], got[1], known)

    # ---- create ----------------------------------------------------------------------

    def create(self, ctx: Context, spec: ConsistencyGroupSpec
               ) -> Observed[ConsistencyGroupSpec, ConsistencyGroupOutputs]:
        tenant = spec.tenant or default_tenant(ctx)
        if spec.restore_point:
            raise InputError("a group being created has no snapshot to restore",
                             kind=KIND, field="restore_point", resource=spec.name,
                             fix="create it first, then set restore_point")
        token = str(uuid_mod.uuid4())  # proves which app_instance this create made
        body: dict[str, Any] = {"name": spec.name, "create_mode": "normal", "uuid": token}
        grow: dict[str, int] = {}
        if spec.snapshot_id:
            src_tenant, src_ai, ts = self._snapshot_source(ctx, spec)
            body["clone_snapshot_src"] = {"path": f"{src_ai.get('path')}/snapshots/{ts}"}
            src = {n: int(v.get("size") or 0) for n, v in _members(src_ai).items()}
            if set(src) != set(spec.volumes):
                raise InputError(
                    f"the group snapshot holds volumes {sorted(src)}, not {sorted(spec.volumes)}",
                    kind=KIND, field="volumes", resource=spec.name,
                    fix="name the members as the source group's")
            small = sorted(n for n in src if spec.volumes[n] < src[n])
            if small:
                raise InputError(f"member {small[0]} is smaller than in the snapshot "
                                 f"({src[small[0]]} GiB)", kind=KIND,
                                 field=f"volumes.{small[0]}", resource=spec.name,
                                 fix=f"give volumes.{small[0]} >= {src[small[0]]}")
            grow = {n: s for n, s in spec.volumes.items() if s > src[n]}
            if src_tenant != tenant:
                raise InputError("a group is cloned within its tenant", kind=KIND,
                                 field="snapshot_id", resource=spec.name,
                                 fix=f"clone into tenant {src_tenant}")
        else:
            body["storage_instances"] = [{"name": SI_NAME, "volumes": [
                {"name": n, "size": s, "replica_count": spec.replica_count}
                for n, s in spec.volumes.items()]}]

        def find() -> Any:
            for ai in ctx.client.list("/app_instances", tenant=tenant, filter=f"name={spec.name}"):
                if ai.get("name") == spec.name and ai.get("uuid") == token:
                    return ai
            return None

        try:
            ai = ctx.client.create("/app_instances", body, tenant=tenant, find=find)
        except Conflict:
            raise Conflict(f"an app_instance named {spec.name!r} already exists in tenant "
                           f"{tenant} and this create did not make it; import it or choose "
                           "another name", path="/app_instances") from None
        url = str(ai.get("path") or ai_url(str(ai.get("id"))))
        for n, s in grow.items():
            ctx.client.put(f"{si_path(url)}/volumes/{n}", {"size": s},
                           tenant=tenant)
        ai = self._online(ctx, tenant, url, spec.name, ctx.timeouts.create)
        return _observe(tenant, ai, spec)

    def _snapshot_source(self, ctx: Context, spec: ConsistencyGroupSpec
                         ) -> tuple[str, Mapping[str, Any], str]:
        head, _, ts = str(spec.snapshot_id).strip().rpartition("/")
        if not head or not SNAP_TS_RE.match(ts):
            raise InputError(f"{spec.snapshot_id!r} is not a group snapshot id", kind=KIND,
                             field="snapshot_id", resource=spec.name,
                             fix="use a ConsistencyGroupSnapshot's id (<group id>/<timestamp>)")
        got = self._get(ctx, head)
        if got is None or ts not in {str(s.get("timestamp")) for s in _snap_list(got[1])}:
            raise InputError(f"group snapshot {spec.snapshot_id!r} does not exist", kind=KIND,
                             field="snapshot_id", resource=spec.name,
                             fix="point snapshot_id at an existing group snapshot")
        return got[0], got[1], ts

    def _online(self, ctx: Context, tenant: str, url: str, name: str, timeout: float
                ) -> Mapping[str, Any]:
        """Wait until every member is available (a clone copies first)."""
        latest: dict[str, Any] = {}

        def state() -> str:
            latest["ai"] = ai = ctx.client.get(url, tenant=tenant)
            vols = _members(ai).values()
            return "ready" if all(v.get("op_state", "available") == "available"
                                  for v in vols) else "pending"

        wait_for(state, target={"ready"}, timeout=timeout,
                 what=f"the volumes of group {name!r} to become available")
        return latest["ai"]

    # ---- update ----------------------------------------------------------------------

    def update(self, ctx: Context, id: str, old: ConsistencyGroupSpec, new: ConsistencyGroupSpec
               ) -> Observed[ConsistencyGroupSpec, ConsistencyGroupOutputs]:
        got = self._get(ctx, id)
        if got is None:
            raise NotFound(f"group {id!r} is gone; refresh, then plan again")
        tenant, ai = got
        url = str(ai.get("path") or ai_url(str(ai.get("id"))))
        members = _members(ai)
        if new.restore_point and (old.restore_point is None
                                  or restore_timestamp(new.restore_point)
                                  != restore_timestamp(old.restore_point)):
            self._revert(ctx, tenant, ai, url, new)
        if new.name != ai.get("name"):
            ctx.client.put(url, {"name": new.name}, tenant=tenant)
        si_url = si_path(url)
        for n, size in new.volumes.items():
            if n not in members:
                ctx.client.post(f"{si_url}/volumes", {"name": n, "size": size,
                                                      "replica_count": new.replica_count},
                                tenant=tenant)
            elif size > int(members[n].get("size") or 0):
                ctx.client.put(f"{si_url}/volumes/{n}", {"size": size}, tenant=tenant)
        return _observe(tenant, ctx.client.get(url, tenant=tenant), new)

    def _revert(self, ctx: Context, tenant: str, ai: Mapping[str, Any], url: str,
                new: ConsistencyGroupSpec) -> None:
        """Every member back to one group snapshot: offline, PUT restore_point, online.
        Refused before any write for an unknown snapshot or while initiators are logged in
        (unless ``force_restore``)."""
        point = str(new.restore_point)
        ts = restore_timestamp(point)
        head = point.strip().rpartition("/")[0]
        if head and not same_volume(head, join_id(tenant, str(ai.get("id")))):
            raise InputError(f"{point!r} is a snapshot of another group", kind=KIND,
                             field="restore_point", resource=new.name,
                             fix="name one of this group's snapshots")
        if ts not in {str(s.get("timestamp")) for s in _snap_list(ai)}:
            raise InputError(f"the group has no snapshot {ts}", kind=KIND, field="restore_point",
                             resource=new.name, fix="name one of this group's snapshots")
        users = logged_in(_si(ai))
        if users and not new.force_restore:
            raise InputError(
                f"the group is in use: {len(users)} initiator(s) are logged in "
                f"({', '.join(sorted(users))}); a revert takes it offline under them",
                kind=KIND, field="restore_point", resource=new.name,
                fix="log the initiators out and apply again, or set force_restore: true")
        put = Call(method="PUT", path=url, body={"restore_point": ts}, why="revert")
        send_calls(ctx.client, [offline_around(url, "the DSP reverts offline", (put,),
                                               force=bool(users))]
                   if ai.get("admin_state") == "online" else [put], tenant=tenant)
        log.info("group %s reverted to snapshot %s", new.name, ts)

    # ---- delete / dependents / find / adopt ----------------------------------------------

    def delete(self, ctx: Context, id: str) -> None:
        """Offline (force), then delete (force); a group already gone is success."""
        got = self._get(ctx, id)
        if got is None:
            return
        tenant, ai = got
        delete_app_instance(ctx.client, str(ai.get("path") or ai_url(str(ai.get("id")))), tenant)

    def dependents(self, ctx: Context, id: str) -> list[Dependent]:
        """The group's snapshots and its members' own snapshots (a delete removes them)."""
        got = self._get(ctx, id)
        if got is None:
            return []
        tenant, ai = got
        gid = join_id(tenant, str(ai.get("id")))
        out = [Dependent(SNAP_KIND, f"{gid}/{s.get('timestamp')}",
                         f"{s.get('timestamp')} of group {ai.get('name')}")
               for s in _snap_list(ai)]
        for n, v in _members(ai).items():
            for s in v.get("snapshots") or []:
                if isinstance(s, Mapping):
                    out.append(Dependent("Snapshot", f"{v.get('path')}/snapshots/"
                                         f"{s.get('timestamp')}",
                                         f"{s.get('timestamp')} of member {n}"))
        return out

    def cascades(self, declared: Mapping[str, Any] | None) -> bool:
        return bool((declared or {}).get("cascade"))

    def find(self, ctx: Context, spec: ConsistencyGroupSpec
             ) -> Observed[ConsistencyGroupSpec, ConsistencyGroupOutputs] | None:
        return None  # a create proves what it made by its uuid token (never adopts by name)

    def adopt(self, ctx: Context, ref: str) -> Observed[ConsistencyGroupSpec, ConsistencyGroupOutputs]:
        got = self._get(ctx, ref)
        if got is None:
            raise NotFound(f"no group {ref!r}")
        if len(_members(got[1])) == 0:
            raise InputError(f"{ref!r} holds no volume", kind=KIND, field="id",
                             fix="import an app_instance with volumes")
        return _observe(got[0], got[1], None)


# ---- group snapshots -------------------------------------------------------------------


def _snap_uuid(_inst: Any, _attr: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    check(SNAP_KIND, "uuid", isinstance(value, str) and bool(re.fullmatch(
        r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}", value)),
        f"{value!r} is not a UUID", "use a lowercase UUID (or leave uuid unset)")


@strict_spec
@attrs.frozen(kw_only=True)
class GroupSnapshotSpec:
    """Inputs of a ConsistencyGroupSnapshot."""

    group_id: str = spec_field(doc="The group to snapshot (a ConsistencyGroup's id).",
                               replace=True, reference="ConsistencyGroup")
    uuid: str | None = spec_field(doc="Optional client UUID recorded on the snapshot.",
                                  default=None, replace=True, validator=_snap_uuid)


@attrs.resolve_types
@attrs.frozen(kw_only=True)
class GroupSnapshotOutputs:
    """What the DSP reports for a group snapshot."""

    timestamp: str | None = out_field(doc="The DSP's key of the snapshot (seconds.fraction).")
    uuid: str | None = out_field(doc="Snapshot uuid.")
    path: str | None = out_field(doc="Snapshot path on the DSP.")
    op_state: str | None = out_field(doc="available when usable.")
    group_id: str | None = out_field(doc="Canonical id of the group.")


def _split(ctx: Context, id: str) -> tuple[str, str]:
    head, _, ts = (id or "").strip().rpartition("/")
    if not head or not SNAP_TS_RE.match(ts):
        raise InputError(f"{id!r} is not a group snapshot id", kind=SNAP_KIND, field="id",
                         fix="use <group id>/<timestamp>")
    return head, ts


def _snap_observe(tenant: str, ai: Mapping[str, Any], snap: Mapping[str, Any], uuid: str | None
                  ) -> Observed[GroupSnapshotSpec, GroupSnapshotOutputs]:
    gid = join_id(tenant, str(ai.get("id")))
    ts = str(snap.get("timestamp"))
    raw = snap.get("uuid")
    got = raw if raw and raw != _ZERO_UUID else None
    return Observed(id=f"{gid}/{ts}",
                    spec=GroupSnapshotSpec(group_id=gid, uuid=got or uuid),
                    outputs=GroupSnapshotOutputs(timestamp=ts, uuid=got, path=snap.get("path"),
                                                 op_state=snap.get("op_state"), group_id=gid))


@register
class ConsistencyGroupSnapshot(NamesResource, Kind[GroupSnapshotSpec, GroupSnapshotOutputs]):
    """A snapshot of every member of a group at one instant. Import id:
    ``<group id or name>/<timestamp>``."""

    name = "ConsistencyGroupSnapshot"
    token = "datera:index:ConsistencyGroupSnapshot"
    tf_type = "datera_consistency_group_snapshot"
    Spec = GroupSnapshotSpec
    Outputs = GroupSnapshotOutputs
    import_id_doc = "<group id | group name>/<timestamp>"

    def diff(self, old: GroupSnapshotSpec, new: GroupSnapshotSpec) -> Diff:
        ignore = ["group_id"] if same_volume(old.group_id, new.group_id) else []
        if old.uuid is None or new.uuid is None:
            ignore.append("uuid")
        return diff_specs(old, new, ignore=ignore)

    def _find_snap(self, ctx: Context, id: str
                   ) -> tuple[str, Mapping[str, Any], Mapping[str, Any]] | None:
        head, ts = _split(ctx, id)
        got = ConsistencyGroup()._get(ctx, head)
        if got is None:
            return None
        for s in _snap_list(got[1]):
            if str(s.get("timestamp")) == ts:
                return got[0], got[1], s
        return None

    def read(self, ctx: Context, id: str) -> Observed[GroupSnapshotSpec, GroupSnapshotOutputs] | None:
        found = self._find_snap(ctx, id)
        return None if found is None else _snap_observe(*found, None)

    def create(self, ctx: Context, spec: GroupSnapshotSpec
               ) -> Observed[GroupSnapshotSpec, GroupSnapshotOutputs]:
        got = ConsistencyGroup()._get(ctx, spec.group_id)
        if got is None:
            raise InputError(f"group {spec.group_id!r} does not exist", kind=SNAP_KIND,
                             field="group_id", fix="snapshot an existing group")
        tenant, ai = got
        url = f"{ai.get('path') or ai_url(str(ai.get('id')))}/snapshots"
        token = spec.uuid or str(uuid_mod.uuid4())
        snap = ctx.client.create(url, {"uuid": token}, tenant=tenant,
                                 find=uuid_finder(ctx.client, url, tenant, token))
        spath = str(snap.get("path") or f"{url}/{snap.get('timestamp')}")
        latest: dict[str, Any] = {"snap": snap}

        def refresh() -> str:
            if latest["snap"].get("op_state") != "available":
                latest["snap"] = ctx.client.get(spath, tenant=tenant)
            return str(latest["snap"].get("op_state"))

        wait_for(refresh, target={"available"}, timeout=ctx.timeouts.create,
                 what=f"group snapshot of {spec.group_id!r} to become available",
                 failed=("failed", "deleted"))
        return _snap_observe(tenant, ai, latest["snap"], spec.uuid)

    def update(self, ctx: Context, id: str, old: GroupSnapshotSpec, new: GroupSnapshotSpec
               ) -> Observed[GroupSnapshotSpec, GroupSnapshotOutputs]:
        found = self.read(ctx, id)
        if found is None:
            raise NotFound(f"group snapshot {id!r} is gone; refresh, then plan again")
        return found

    def delete(self, ctx: Context, id: str) -> None:
        found = self._find_snap(ctx, id)
        if found is None:
            return
        tenant, ai, snap = found
        try:
            ctx.client.delete(str(snap.get("path") or f"{ai.get('path')}/snapshots/"
                                  f"{snap.get('timestamp')}"), tenant=tenant)
        except NotFound:
            return

    def find(self, ctx: Context, spec: GroupSnapshotSpec
             ) -> Observed[GroupSnapshotSpec, GroupSnapshotOutputs] | None:
        if not spec.uuid:
            return None
        got = ConsistencyGroup()._get(ctx, spec.group_id)
        if got is None:
            return None
        for s in _snap_list(got[1]):
            if s.get("uuid") == spec.uuid:
                return _snap_observe(got[0], got[1], s, spec.uuid)
        return None

    def adopt(self, ctx: Context, ref: str) -> Observed[GroupSnapshotSpec, GroupSnapshotOutputs]:
        found = self._find_snap(ctx, ref)
        if found is None:
            raise NotFound(f"no group snapshot {ref!r}")
        return _snap_observe(*found, None)

