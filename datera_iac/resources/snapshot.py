"""The Snapshot kind: a point-in-time snapshot of a Volume's ``volume-1``.

The id is composite, ``<volume id>/<timestamp>`` (e.g. ``/root/3f2a.../1446076293.118600738``),
because the DSP keys a snapshot by its timestamp *under* its volume: the timestamp alone
does not say which volume, and the volume id alone does not say which snapshot. Nothing
about a snapshot changes in place; every input is ``replace``.

Creation waits (bounded by the create timeout) for the snapshot's ``op_state`` to become
``available``, as the Cinder driver does before it uses a snapshot.
"""

from __future__ import annotations

import re
import uuid as uuid_mod
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from datera_iac.errors import Conflict, InputError, InvalidRequest, NotFound
from datera_iac.resources._util import (
    SNAP_TS_RE,
    NamesResource,
    check,
    join_id,
    strict_spec,
    uuid_finder,
    volume_ref,
    wait_for,
)
from datera_iac.resources.base import (
    Context,
    Diff,
    Kind,
    Observed,
    diff_specs,
    out_field,
    register,
    spec_field,
)
from datera_iac.resources.layout import (
    ai_url,
    default_tenant,
    first_si_vol,
    parse_volume_id,
    same_volume,
    volume_ref_parts,
)
from datera_iac.resources.volume import Volume

__all__ = ["Snapshot", "SnapshotOutputs", "SnapshotSpec", "observe_snapshot", "snapshot_path",
           "split_snapshot_id"]

KIND = "Snapshot"
_UUID_RE = re.compile(
    r"^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$", re.IGNORECASE
)


def _uuid(_inst: Any, _attr: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    check(KIND, "uuid", isinstance(value, str) and bool(_UUID_RE.match(value)),
          f"{value!r} is not a UUID", "use a UUID such as 0b1c... (or leave uuid unset)")


@strict_spec
@attrs.frozen(kw_only=True)
class SnapshotSpec:
    """Inputs of a Snapshot."""

    volume_id: str = spec_field(
        doc="The volume to snapshot (a Volume's id).", replace=True, reference="Volume",
        validator=volume_ref(KIND),
    )
    uuid: str | None = spec_field(
        doc="Optional client UUID recorded on the snapshot (Cinder passes its snapshot id); "
        "lets a retried create find the snapshot it already made.",
        default=None, replace=True, validator=_uuid,
    )


@attrs.resolve_types
@attrs.frozen(kw_only=True)
class SnapshotOutputs:
    """What the DSP reports for a snapshot."""

    timestamp: str | None = out_field(doc="The DSP's key of the snapshot (seconds.fraction).")
    utc_ts: str | None = out_field(doc="Creation time (seconds.fraction, UTC).")
    uuid: str | None = out_field(doc="Snapshot uuid.")
    path: str | None = out_field(doc="Snapshot path on the DSP.")
    op_state: str | None = out_field(doc="available when usable.")
    volume_id: str | None = out_field(doc="Canonical id of the parent volume.")


def split_snapshot_id(ctx: Context, value: str) -> tuple[str, str, str]:
    """(tenant, app_instance id or name, timestamp) of ``<volume id>/<timestamp>``.

    Raises InputError when the id has no timestamp part."""
    text = (value or "").strip()
    head, _, ts = text.rpartition("/")
    if not head or not SNAP_TS_RE.match(ts):
        raise InputError(f"{value!r} is not a snapshot id", kind=KIND, field="id",
                         fix="use <volume id>/<timestamp>, e.g. /root/<ai id>/1446076293.118600738")
    tenant, leaf = parse_volume_id(ctx, head)
    return tenant, leaf, ts


def _volume(ctx: Context, tenant: str, leaf: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(app_instance, volume entity) or NotFound."""
    ai = ctx.client.get(ai_url(leaf), tenant=tenant)
    _, vol = first_si_vol(ai)
    if vol is None:
        raise NotFound(f"app_instance {leaf!r} has no volume", path=ai_url(leaf))
    return ai, vol


def snapshot_path(ctx: Context, snapshot_id: str) -> str:
    """The DSP path of a snapshot id (for ``clone_snapshot_src``). Raises InputError when
    the snapshot does not exist (a plan pointing at a missing source)."""
    tenant, leaf, ts = split_snapshot_id(ctx, snapshot_id)
    try:
        _, vol = _volume(ctx, tenant, leaf)
    except NotFound:
        raise InputError(f"the volume of snapshot {snapshot_id!r} does not exist",
                         kind="Volume", field="snapshot_id",
                         fix="point snapshot_id at an existing snapshot's id") from None
    return f"{vol.get('path')}/snapshots/{ts}"


def observe_snapshot(ctx: Context, tenant: str, ai: Mapping[str, Any], snap: Mapping[str, Any],
             uuid: str | None) -> Observed[SnapshotSpec, SnapshotOutputs]:
    vid = join_id(tenant, str(ai.get("id")))
    ts = str(snap.get("timestamp"))
    # the DSP shows a zero uuid when none was given: that is "no uuid", not a value
    raw = snap.get("uuid")
    got = raw if raw and raw != "00000000-0000-0000-0000-000000000000" else None
    return Observed(
        id=f"{vid}/{ts}",
        spec=SnapshotSpec(volume_id=vid, uuid=got if got is not None else uuid),
        outputs=SnapshotOutputs(timestamp=ts, utc_ts=str(snap.get("utc_ts") or ts),
                                uuid=got, path=snap.get("path"), op_state=snap.get("op_state"),
                                volume_id=vid),
    )


def _embedded(vol: Mapping[str, Any], ts: str) -> Mapping[str, Any] | None:
    for s in vol.get("snapshots") or []:
        if isinstance(s, Mapping) and str(s.get("timestamp")) == ts and "op_state" in s:
            return s
    return None


@register
class Snapshot(NamesResource, Kind[SnapshotSpec, SnapshotOutputs]):
    """A volume snapshot. Import id: ``<volume id or name>/<timestamp>``."""

    name = "Snapshot"
    token = "datera:index:Snapshot"
    tf_type = "datera_snapshot"
    Spec = SnapshotSpec
    Outputs = SnapshotOutputs
    import_id_doc = "<volume id | volume name | [tenant:]ai:si:vol>/<timestamp>"

    def confine_ref(self, ctx: Context, ref: str, *, kind: str, field: str) -> None:
        head, _, ts = (ref or "").strip().rpartition("/")
        volume = head if head and SNAP_TS_RE.match(ts) else ref
        volume_ref_parts(ctx, volume, kind=kind, field=field)

    def diff(self, old: SnapshotSpec, new: SnapshotSpec) -> Diff:
        """volume_id compares by identity (a bare app_instance id equals the tenant-qualified
        one); a uuid the DSP did not report (None) is not a change."""
        ignore = ["volume_id"] if same_volume(old.volume_id, new.volume_id) else []
        if old.uuid is None or new.uuid is None:
            ignore.append("uuid")
        return diff_specs(old, new, ignore=ignore)

    def read(self, ctx: Context, id: str) -> Observed[SnapshotSpec, SnapshotOutputs] | None:
        tenant, leaf, ts = split_snapshot_id(ctx, id)
        try:
            ai, vol = _volume(ctx, tenant, leaf)
            snap = _embedded(vol, ts)
            if snap is None:
                snap = ctx.client.get(f"{vol.get('path')}/snapshots/{ts}", tenant=tenant)
        except NotFound:
            return None
        return observe_snapshot(ctx, tenant, ai, snap, None)

    def read_many(
        self, ctx: Context, ids: Iterable[str]
    ) -> dict[str, Observed[SnapshotSpec, SnapshotOutputs] | None]:
        """One GET of each parent volume (its entity lists its snapshots), not one per
        snapshot; a snapshot the entity does not list is read alone."""
        out: dict[str, Observed[SnapshotSpec, SnapshotOutputs] | None] = {}
        cache: dict[tuple[str, str], tuple[Mapping[str, Any], Mapping[str, Any]] | None] = {}
        for i in ids:
            tenant, leaf, ts = split_snapshot_id(ctx, i)
            key = (tenant, leaf)
            if key not in cache:
                try:
                    cache[key] = _volume(ctx, tenant, leaf)
                except NotFound:
                    cache[key] = None
            found = cache[key]
            if found is None:
                out[i] = None
                continue
            ai, vol = found
            snap = _embedded(vol, ts)
            out[i] = observe_snapshot(ctx, tenant, ai, snap, None) if snap else self.read(ctx, i)
        return out

    def create(self, ctx: Context, spec: SnapshotSpec) -> Observed[SnapshotSpec, SnapshotOutputs]:
        tenant, leaf = parse_volume_id(ctx, spec.volume_id)
        try:
            ai, vol = _volume(ctx, tenant, leaf)
        except NotFound:
            raise InputError(f"volume {spec.volume_id!r} does not exist", kind=KIND,
                             field="volume_id", fix="snapshot an existing volume") from None
        url = f"{vol.get('path')}/snapshots"
        # without a user uuid, a fresh one marks this create so a lost response finds it
        token = spec.uuid or str(uuid_mod.uuid4())
        body: dict[str, Any] = {"uuid": token}
        find = uuid_finder(ctx.client, url, tenant, token)

        try:
            snap = ctx.client.create(url, body, tenant=tenant, find=find)
        except InvalidRequest:
            # the DSP answers a duplicate uuid with 400 (code 15), not 409. A lost response
            # is settled by the client's find() before it re-sends, so here the uuid was
            # taken before this create: someone else's snapshot, never adopted (issue 16)
            if find() is None:
                raise
            raise Conflict(
                f"a snapshot with uuid {token} already exists on volume {spec.volume_id!r} and "
                f"this create did not make it; import it (`datera-iac import Snapshot <name> "
                f"{spec.volume_id}/<timestamp>`) or leave uuid unset", path=url) from None
        ts = str(snap.get("timestamp"))
        spath = str(snap.get("path") or f"{url}/{ts}")
        latest: dict[str, Any] = {"snap": snap}

        def refresh() -> str:
            if latest["snap"].get("op_state") == "available":
                return "available"
            latest["snap"] = ctx.client.get(spath, tenant=tenant)
            return str(latest["snap"].get("op_state"))

        try:
            wait_for(refresh, target={"available"}, timeout=ctx.timeouts.create,
                     what=f"snapshot {ts} of volume {spec.volume_id!r} to become available",
                     failed=("failed", "deleted"),
                     hint="the snapshot was removed or failed on the DSP")
        except BaseException:
            self.delete(ctx, f"{join_id(tenant, str(ai.get('id')))}/{ts}")
            raise
        return observe_snapshot(ctx, tenant, ai, latest["snap"], spec.uuid)

    def update(self, ctx: Context, id: str, old: SnapshotSpec, new: SnapshotSpec
               ) -> Observed[SnapshotSpec, SnapshotOutputs]:
        found = self.read(ctx, id)
        if found is None:
            raise NotFound(f"snapshot {id!r} is gone; refresh, then plan again")
        return found

    def delete(self, ctx: Context, id: str) -> None:
        """Delete; a snapshot (or its volume) already gone is success."""
        tenant, leaf, ts = split_snapshot_id(ctx, id)
        try:
            _, vol = _volume(ctx, tenant, leaf)
            ctx.client.delete(f"{vol.get('path')}/snapshots/{ts}", tenant=tenant)
        except NotFound:
            return

    def find(self, ctx: Context, spec: SnapshotSpec
             ) -> Observed[SnapshotSpec, SnapshotOutputs] | None:
        """By uuid (the only unique handle a not-yet-created snapshot has); None without."""
        if not spec.uuid:
            return None
        tenant, leaf = parse_volume_id(ctx, spec.volume_id)
        try:
            ai, vol = _volume(ctx, tenant, leaf)
        except NotFound:
            return None
        for s in ctx.client.list(f"{vol.get('path')}/snapshots", tenant=tenant):
            if s.get("uuid") == spec.uuid:
                return observe_snapshot(ctx, tenant, ai, s, spec.uuid)
        return None

    def adopt(self, ctx: Context, ref: str) -> Observed[SnapshotSpec, SnapshotOutputs]:
        """Import ``<volume ref>/<timestamp>``, where the volume ref is anything
        :meth:`Volume.adopt` accepts (id, name, ``[tenant:]ai:si:vol``)."""
        text = (ref or "").strip()
        if SNAP_TS_RE.match(text):
            return self._adopt_timestamp(ctx, text)
        head, _, ts = text.rpartition("/")
        if not head or not SNAP_TS_RE.match(ts):
            raise InputError(f"{ref!r} is not a snapshot reference", kind=KIND, field="id",
                             fix="use <volume id or name>/<timestamp>")
        tenant, ai = Volume().resolve_ref(ctx, head)
        _, vol = first_si_vol(ai)
        if vol is None:
            raise NotFound(f"app_instance {ai.get('name')!r} has no volume")
        snap = _embedded(vol, ts) or ctx.client.get(f"{vol.get('path')}/snapshots/{ts}",
                                                    tenant=tenant)
        return observe_snapshot(ctx, tenant, ai, snap, None)

    def _adopt_timestamp(self, ctx: Context, ts: str) -> Observed[SnapshotSpec, SnapshotOutputs]:
        """A bare timestamp (Cinder's managed-snapshot reference): search the provider
        tenant's volumes (one paged list; the entities embed their snapshots). Raises
        NotFound for no match and InputError when several volumes have that timestamp."""

        tenant = default_tenant(ctx)
        hits = []
        for ai in ctx.client.list("/app_instances", tenant=tenant):
            _, vol = first_si_vol(ai)
            snap = _embedded(vol or {}, ts)
            if snap is not None:
                hits.append((ai, snap))
        if not hits:
            raise NotFound(f"no snapshot {ts} in tenant {tenant!r}")
        if len(hits) > 1:
            raise InputError(f"{len(hits)} volumes have a snapshot {ts}", kind=KIND, field="id",
                             fix="import it as <volume id or name>/<timestamp>")
        ai, snap = hits[0]
        return observe_snapshot(ctx, tenant, ai, snap, None)
