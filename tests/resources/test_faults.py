"""The kinds under the simulator's injected faults: 503s, writes whose response is lost,
and an expired session. The lifecycle still converges with no twin and nothing left."""

from __future__ import annotations

from datera_iac.resources import KINDS
from tests.resources.conftest import make_ctx

VOLUME = KINDS["Volume"]
SNAPSHOT = KINDS["Snapshot"]
TENANT = KINDS["Tenant"]


def test_lifecycle_under_faults(sim):
    """With 20% 503s, 20% of writes dropped after they were applied, and session keys
    expiring, tenant/volume/snapshot create-update-delete still converge: one object per
    name, the final state as declared, nothing left after delete."""
    ctx = make_ctx(sim, datera_503_interval=0.01, datera_503_timeout=30)
    sim.set_faults(fail_503_rate=0.2, drop_after_write_rate=0.2, seed=7)
    try:
        t = TENANT.create(ctx, TENANT.spec_from({"name": "team-f"}))
        vols = []
        for i in range(6):
            s = VOLUME.spec_from({"name": f"vol-{i}", "size": 2, "tenant": "team-f",
                                  "extra_specs": {"total_iops_max": 100},
                                  "metadata": {"i": str(i)}})
            vols.append((VOLUME.create(ctx, s), s))
        sim.set_faults(expire_keys=True)
        obs, s = vols[0]
        grown = VOLUME.spec_from({"name": "vol-0b", "size": 4, "tenant": "team-f",
                                  "extra_specs": {"total_iops_max": 300},
                                  "metadata": {"i": "0"}})
        upd = VOLUME.update(ctx, obs.id, s, grown)
        snap = SNAPSHOT.create(ctx, SNAPSHOT.spec_from({"volume_id": obs.id}))
    finally:
        sim.set_faults(fail_503_rate=0.0, drop_after_write_rate=0.0)
    names = sorted(a["name"] for a in ctx.client.list("/app_instances", tenant="/root/team-f"))
    assert names == ["vol-0b", "vol-1", "vol-2", "vol-3", "vol-4", "vol-5"]
    assert not VOLUME.diff(VOLUME.read(ctx, upd.id).spec, grown).changed
    assert SNAPSHOT.read(ctx, snap.id) is not None
    sim.set_faults(fail_503_rate=0.2, drop_after_write_rate=0.2, seed=11)
    try:
        SNAPSHOT.delete(ctx, snap.id)
        for o, _ in vols:
            VOLUME.delete(ctx, o.id)
        TENANT.delete(ctx, t.id)
    finally:
        sim.set_faults(fail_503_rate=0.0, drop_after_write_rate=0.0)
    assert TENANT.read(ctx, t.id) is None
    statuses = [r["status"] for r in sim.request_log()]
    assert statuses.count(503) >= 5 and statuses.count(401) >= 1  # the faults did happen
