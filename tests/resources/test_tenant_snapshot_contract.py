"""The Tenant and Snapshot kinds against the simulator over HTTP."""

from __future__ import annotations

import pytest

from datera_iac.errors import Conflict

from datera_iac.errors import InputError, NotFound, WaitTimeout
from datera_iac.resources import KINDS
from tests.resources.conftest import make_ctx

VOLUME = KINDS["Volume"]
TENANT = KINDS["Tenant"]
SNAPSHOT = KINDS["Snapshot"]


def tspec(**kw):
    return TENANT.spec_from({"name": "team-a", **kw}, resource="t1")


def test_tenant_lifecycle(ctx, calls):
    """Create (one POST), read, description in place, nested child, delete, delete-when-gone."""
    calls()
    obs = TENANT.create(ctx, tspec(description="Team A"))
    assert calls()["POST /v2.2/tenants"] == 1
    assert obs.id == "/root/team-a" and obs.spec == tspec(description="Team A")
    child = TENANT.create(ctx, TENANT.spec_from({"name": "sub-1", "parent": "team-a"}))
    assert child.id == "/root/team-a/sub-1" and child.outputs.parent_path == "/root/team-a"
    upd = TENANT.update(ctx, obs.id, obs.spec, tspec(description="Team A2"))
    assert upd.spec.description == "Team A2"
    got = TENANT.read_many(ctx, ["/root/team-a", "team-a/sub-1", "/root/none-1"])
    assert got["/root/team-a"].spec.description == "Team A2"
    assert got["team-a/sub-1"].id == "/root/team-a/sub-1"
    assert got["/root/none-1"] is None
    TENANT.delete(ctx, child.id)
    TENANT.delete(ctx, obs.id)
    assert TENANT.read(ctx, obs.id) is None
    TENANT.delete(ctx, obs.id)


def test_tenant_find_adopt_and_no_twin(ctx):
    """find and adopt by path or name; a second create makes no twin: it did not make the
    existing tenant (another create's token), so it is a conflict, never adopted (issue 16)."""
    obs = TENANT.create(ctx, tspec())
    assert TENANT.find(ctx, tspec()).id == obs.id
    assert TENANT.adopt(ctx, "team-a").id == TENANT.adopt(ctx, "/root/team-a").id
    with pytest.raises(Conflict):
        TENANT.create(ctx, tspec())
    assert [t for t in ctx.client.list("/tenants", tenant="/root") if t["name"] == "team-a"]
    with pytest.raises(NotFound):
        TENANT.adopt(ctx, "team-zz")


def test_snapshot_lifecycle(ctx, calls):
    """Create (one POST) waits for available; id is <volume id>/<timestamp>; read, adopt by
    volume name, delete and delete-when-gone (also when the volume is gone)."""
    vol = VOLUME.create(ctx, VOLUME.spec_from({"name": "vol-a", "size": 5}))
    s = SNAPSHOT.spec_from({"volume_id": vol.id, "uuid": "0b1c6a2e-1111-4222-8333-444455556666"})
    calls()
    snap = SNAPSHOT.create(ctx, s)
    assert calls()["POST /v2.2/app_instances/:id/storage_instances/:storage_instance_name"
                   "/volumes/:volume_name/snapshots"] == 1
    ts = snap.outputs.timestamp
    assert snap.id == f"{vol.id}/{ts}" and snap.outputs.op_state == "available"
    assert snap.outputs.uuid == s.uuid and not SNAPSHOT.diff(snap.spec, s).changed
    assert SNAPSHOT.read(ctx, snap.id).outputs == snap.outputs
    assert SNAPSHOT.find(ctx, s).id == snap.id
    with pytest.raises(Conflict):  # same uuid: no twin, and not adopted (issue 16)
        SNAPSHOT.create(ctx, s)
    assert SNAPSHOT.find(ctx, s).id == snap.id
    adopted = SNAPSHOT.adopt(ctx, f"vol-a/{ts}")
    assert adopted.id == snap.id == SNAPSHOT.adopt(ctx, ts).id  # Cinder's bare timestamp
    with pytest.raises(NotFound):
        SNAPSHOT.adopt(ctx, "1999999999.000000001")
    many = SNAPSHOT.read_many(ctx, [snap.id, f"{vol.id}/1999999999.000000001"])
    assert many[snap.id].id == snap.id and many[f"{vol.id}/1999999999.000000001"] is None
    SNAPSHOT.delete(ctx, snap.id)
    assert SNAPSHOT.read(ctx, snap.id) is None
    SNAPSHOT.delete(ctx, snap.id)
    VOLUME.delete(ctx, vol.id)
    SNAPSHOT.delete(ctx, snap.id)
    assert SNAPSHOT.read(ctx, snap.id) is None


def test_snapshot_wait_is_bounded(make_sim):
    """A snapshot that stays unavailable past the create timeout raises WaitTimeout naming
    what it waited for, and the half-made snapshot is removed."""
    slow = make_sim(snapshot_delay=30.0)
    c = make_ctx(slow)
    c.timeouts = type(c.timeouts)(create=0.3)
    vol = VOLUME.create(c, VOLUME.spec_from({"name": "vol-a", "size": 5}))
    with pytest.raises(WaitTimeout) as e:
        SNAPSHOT.create(c, SNAPSHOT.spec_from({"volume_id": vol.id}))
    assert "snapshot" in str(e.value) and "available" in str(e.value)
    assert c.client.get(f"{vol.outputs.volume_path}/snapshots") == []


def test_snapshot_of_missing_volume(ctx):
    """Snapshotting a volume that does not exist names the field."""
    with pytest.raises(InputError) as e:
        SNAPSHOT.create(ctx, SNAPSHOT.spec_from({"volume_id": "/root/nope-1"}))
    assert (e.value.kind, e.value.field) == ("Snapshot", "volume_id")
