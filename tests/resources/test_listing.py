"""The listings of resources/queries.py against the simulator: each row matches what the
DSP holds (read back object by object), the filters keep exactly what they say, and a
listing costs ceil(N / page) list requests (pages of 1,000, the schema's maximum), not one
per object."""

from __future__ import annotations

import math

import pytest

from datera_iac.dsp._client import MAX_PAGE
from datera_iac.errors import InputError
from datera_iac.resources import KINDS
from datera_iac.resources.manage import ATTACHED, LAYOUT
from datera_iac.resources.queries import LISTINGS, kind_row, listing

VOLUME, SNAPSHOT, VTYPE, TENANT = (KINDS[k] for k in ("Volume", "Snapshot", "VolumeType",
                                                      "Tenant"))
ONE = {"storage_instances": [{"name": "storage-1", "volumes": [{"name": "volume-1",
                                                                 "size": 1}]}]}


@pytest.fixture
def estate(ctx):
    """Two tenants, a materialized type, typed and untyped volumes, snapshots, a
    two-volume app_instance (not the Cinder layout) and one exported to an initiator."""
    TENANT.create(ctx, TENANT.spec_from({"name": "team-a"}))
    gold = VTYPE.create(ctx, VTYPE.spec_from({"name": "gold", "materialize": True,
                                              "replica_count": 2, "total_iops_max": 500}))
    db = VOLUME.create(ctx, VOLUME.spec_from({"name": "db-1", "size": 2, "volume_type": "gold",
                                              "metadata": {"app": "db"}}))
    db2 = VOLUME.create(ctx, VOLUME.spec_from({"name": "db-2", "size": 3,
                                               "metadata": {"app": "db", "tier": "b"}}))
    web = VOLUME.create(ctx, VOLUME.spec_from({"name": "web-1", "size": 4,
                                               "tenant": "team-a"}))
    s1 = SNAPSHOT.create(ctx, SNAPSHOT.spec_from({"volume_id": db.id}))
    s2 = SNAPSHOT.create(ctx, SNAPSHOT.spec_from({"volume_id": db.id}))
    s3 = SNAPSHOT.create(ctx, SNAPSHOT.spec_from({"volume_id": web.id}))
    ctx.client.post("/app_instances", {"name": "multi-1", "storage_instances": [
        {"name": "storage-1", "volumes": [{"name": "volume-1", "size": 1},
                                          {"name": "volume-2", "size": 1}]}]})
    exp = ctx.client.post("/app_instances", {"name": "exported-1", **ONE})
    ctx.client.post("/initiators", {"name": "host-1", "id": "iqn.1993-08.org.debian:01:aa"})
    ctx.client.put(f"/app_instances/{exp['id']}/storage_instances/storage-1/acl_policy",
                   {"initiators": [{"path": "/initiators/iqn.1993-08.org.debian:01:aa"}]})
    return {"gold": gold, "db": db, "db2": db2, "web": web, "snaps": (s1, s2, s3),
            "exported": exp}


def test_rows_equal_the_dsp_object_by_object(ctx, estate):
    """Every kind listing's rows are what reading each object alone gives (the DSP's
    content), and the listing holds exactly the objects of the tenant."""
    vols = LISTINGS["volumes"].rows(ctx, with_metadata=True)
    assert [r["name"] for r in vols] == ["db-1", "db-2", "exported-1"]  # not multi-1
    for r in vols:
        assert r == kind_row(VOLUME.read(ctx, r["id"]), "Volume")
    assert vols[0]["volume_type"] == "gold" and vols[0]["metadata"] == {"app": "db"}

    snaps = LISTINGS["snapshots"].rows(ctx, volume=estate["db"].id)
    s1, s2, s3 = estate["snaps"]
    assert [r["id"] for r in snaps] == [s1.id, s2.id]
    for r in snaps:
        assert r == kind_row(SNAPSHOT.read(ctx, r["id"]), "Snapshot")
    assert [r["id"] for r in LISTINGS["snapshots"].rows(ctx, tenant="team-a")] == [s3.id]
    assert [r["id"] for r in LISTINGS["snapshots"].rows(ctx, volume="db-1")] == [s1.id, s2.id]

    (t,) = LISTINGS["volume_types"].rows(ctx)
    assert t == kind_row(VTYPE.adopt(ctx, "gold"), "VolumeType")
    assert (t["replica_count"], t["total_iops_max"]) == (2, 500)
    (tn,) = LISTINGS["tenants"].rows(ctx)
    assert tn == kind_row(TENANT.read(ctx, "/root/team-a"), "Tenant")
    assert "chap_secret" not in LISTINGS["volumes"].rows(ctx)[0]


def test_filters(ctx, estate):
    names = lambda **kw: [r["name"] for r in LISTINGS["volumes"].rows(ctx, **kw)]  # noqa: E731
    assert names(name_regex="^db-") == ["db-1", "db-2"]
    assert names(name_regex="2$") == ["db-2"]
    assert names(volume_type="gold") == ["db-1"]
    assert names(metadata={"app": "db"}) == ["db-1", "db-2"]
    assert names(metadata={"app": "db", "tier": "b"}) == ["db-2"]
    assert names(metadata={"app": "web"}) == []
    assert names(tenant="team-a") == ["web-1"] == names(tenant="/root/team-a")
    assert names(tenant="team-a", name_regex="^db") == []
    with pytest.raises(InputError, match="regular expression"):
        names(name_regex="(")
    with pytest.raises(InputError, match="unknown argument 'colour'"):
        LISTINGS["volumes"].rows(ctx, colour="red")
    with pytest.raises(InputError, match="known: volumes"):
        listing("volume")
    assert listing("manageable-volumes") is LISTINGS["manageable_volumes"]


def test_manageable_reasons(ctx, estate):
    """The driver's verdicts, plus ours: exported to an initiator is 'attached'; a volume
    this stack manages (``managed``) is 'already managed'."""
    rows = {r["name"]: r for r in LISTINGS["manageable_volumes"].rows(
        ctx, managed=[estate["db"].id])}
    assert rows["exported-1"]["reason_not_safe"] == ATTACHED
    assert rows["multi-1"]["reason_not_safe"] == LAYOUT
    assert rows["db-1"]["reason_not_safe"] == "already managed by this stack"
    assert rows["db-2"]["safe_to_manage"] and rows["db-2"]["reason_not_safe"] == ""
    assert rows["db-1"]["snapshots"] == [s.outputs.utc_ts for s in estate["snaps"][:2]]
    snaps = LISTINGS["manageable_snapshots"].rows(ctx)
    assert sorted(r["id"] for r in snaps) == sorted(s.id for s in estate["snaps"][:2])


@pytest.mark.parametrize("n", [1500])
def test_paged_cost(ctx, calls, n):
    """N volumes (and their snapshots) listed in ceil(N/page) requests."""
    for i in range(n):
        ctx.client.post("/app_instances", {"name": f"v-{i:04d}", **ONE})
    calls()
    rows = LISTINGS["volumes"].rows(ctx)
    assert len(rows) == n
    assert calls() == {"GET /v2.2/app_instances": math.ceil(n / MAX_PAGE)}
    LISTINGS["snapshots"].rows(ctx)
    LISTINGS["manageable_volumes"].rows(ctx)
    assert calls() == {"GET /v2.2/app_instances": 2 * math.ceil(n / MAX_PAGE)}
