"""The manageable listing (Cinder's get_manageable_volumes/snapshots rules) against the
simulator, and the import round trip: adopt gives the state create gives."""

from __future__ import annotations

from datera_iac.resources import KINDS
from datera_iac.resources.manage import (
    ALREADY_CINDER,
    ALREADY_OURS,
    LAYOUT,
    PARENT_UNSAFE,
    list_manageable_snapshots,
    list_manageable_volumes,
)

VOLUME = KINDS["Volume"]
SNAPSHOT = KINDS["Snapshot"]
ONE = {"storage_instances": [{"name": "storage-1", "volumes": [{"name": "volume-1",
                                                                 "size": 3}]}]}
CINDER_ID = "9b0216bc-8aab-47f2-b746-843f497cb7a6"


def _snap(ctx, ai):
    path = f"/app_instances/{ai['id']}/storage_instances/storage-1/volumes/volume-1/snapshots"
    return ctx.client.post(path, {})


def test_manageable_volumes_and_snapshots(ctx, calls):
    """Verdicts: a plain single-volume AI is safe; OS-<uuid> belongs to Cinder; two volumes
    are unsafe; one we manage is unsafe. Snapshots inherit an unsafe parent (except a
    Cinder parent) and one we manage is unsafe. The listing is one paged list call."""
    plain = ctx.client.post("/app_instances", {"name": "plain-1", **ONE})
    cind = ctx.client.post("/app_instances", {"name": f"OS-{CINDER_ID}", **ONE})
    multi = ctx.client.post("/app_instances", {"name": "multi-1", "storage_instances": [
        {"name": "storage-1", "volumes": [{"name": "volume-1", "size": 1},
                                          {"name": "volume-2", "size": 1}]}]})
    ours = VOLUME.create(ctx, VOLUME.spec_from({"name": "ours-1", "size": 2}))
    s_plain, s_cind, s_multi = _snap(ctx, plain), _snap(ctx, cind), _snap(ctx, multi)
    s_ours = SNAPSHOT.create(ctx, SNAPSHOT.spec_from({"volume_id": ours.id}))
    calls()
    vols = {v.name: v for v in list_manageable_volumes(ctx, managed=[ours.id])}
    assert calls() == {"GET /v2.2/app_instances": 1}
    assert (vols["plain-1"].safe_to_manage, vols["plain-1"].reason_not_safe) == (True, "")
    assert vols["plain-1"].reference == "plain-1:storage-1:volume-1"
    assert vols["plain-1"].size == 3 and vols["plain-1"].id == f"/root/{plain['id']}"
    assert vols["plain-1"].snapshots[0][0] == s_plain["utc_ts"]
    assert vols[f"OS-{CINDER_ID}"].reason_not_safe == ALREADY_CINDER
    assert vols[f"OS-{CINDER_ID}"].cinder_id == CINDER_ID
    assert vols["multi-1"].reason_not_safe == LAYOUT
    assert vols["ours-1"].reason_not_safe == ALREADY_OURS
    # what is listed safe can be adopted, and adopting gives the same spec as a read
    adopted = VOLUME.adopt(ctx, vols["plain-1"].reference)
    assert adopted.spec == VOLUME.read(ctx, vols["plain-1"].id).spec

    snaps = {s.id: s for s in list_manageable_snapshots(ctx, managed=[s_ours.id])}
    assert snaps[f"/root/{plain['id']}/{s_plain['timestamp']}"].safe_to_manage
    assert snaps[f"/root/{cind['id']}/{s_cind['timestamp']}"].safe_to_manage
    assert snaps[f"/root/{multi['id']}/{s_multi['timestamp']}"].reason_not_safe == PARENT_UNSAFE
    assert snaps[s_ours.id].reason_not_safe == ALREADY_OURS
    assert snaps[s_ours.id].source_reference == "ours-1:storage-1:volume-1"


def test_manageable_in_a_tenant(ctx):
    """References of a sub-tenant carry its name as Cinder's tenant: prefix, and adopt
    accepts that form."""
    ctx.client.post("/tenants", {"name": "team-a"})
    ctx.client.post("/app_instances", {"name": "plain-2", **ONE}, tenant="/root/team-a")
    (mv,) = list_manageable_volumes(ctx, tenant="/root/team-a")
    assert mv.reference == "team-a:plain-2:storage-1:volume-1" and mv.safe_to_manage
    assert VOLUME.adopt(ctx, mv.reference).id == mv.id


def test_import_equals_create(ctx):
    """ImportStateVerify: adopting a volume we created gives the same id, spec and outputs
    as reading it (and the same spec create returned)."""
    s = VOLUME.spec_from({"name": "vol-a", "size": 4, "extra_specs": {"total_iops_max": 70},
                          "metadata": {"k": "v"}, "snapshot_policies": ["daily:1day:3"]})
    made = VOLUME.create(ctx, s)
    imported = VOLUME.adopt(ctx, made.id)
    assert imported == VOLUME.read(ctx, made.id)
    assert imported.spec == made.spec and imported.outputs == made.outputs
    snap = SNAPSHOT.create(ctx, SNAPSHOT.spec_from({"volume_id": made.id}))
    assert SNAPSHOT.adopt(ctx, snap.id) == snap


def test_in_use_verdict():
    """An online storage instance with active initiators is 'in use'; offline, it is safe
    (the simulator never reports active initiators, so this rule is checked on data)."""
    from datera_iac.resources.manage import IN_USE, _verdict

    ai = {"id": "a1", "name": "busy-1", "storage_instances": [{
        "name": "storage-1", "admin_state": "online", "volumes": [{"name": "volume-1"}],
        "active_initiators": [{"path": "/initiators/iqn.1993-08.org.debian:01:abc"}]}]}
    assert _verdict(ai, "/root/a1", ()) == (False, IN_USE, None)
    ai["storage_instances"][0]["admin_state"] = "offline"
    assert _verdict(ai, "/root/a1", ()) == (True, "", None)
