"""An estate for the discovery tests (engine and Terraform): objects made by our kinds and
one app_instance laid out as the Cinder driver makes it."""

from __future__ import annotations

import uuid

from datera_iac.resources import KINDS

ONE = {"storage_instances": [{"name": "storage-1", "volumes": [{"name": "volume-1",
                                                                 "size": 5}]}]}


def make_estate(ctx, tenant="team-a"):
    """Objects made by our kinds, plus one app_instance as the Cinder driver lays it out
    (OS-<uuid>, create_mode openstack, its snapshot carrying the Cinder snapshot id)."""
    k = KINDS
    k["Tenant"].create(ctx, k["Tenant"].spec_from({"name": tenant}))
    k["VolumeType"].create(ctx, k["VolumeType"].spec_from(
        {"name": "gold", "materialize": True, "replica_count": 2, "total_iops_max": 500}))
    db = k["Volume"].create(ctx, k["Volume"].spec_from(
        {"name": "db-1", "size": 2, "tenant": tenant, "volume_type": "gold",
         "extra_specs": {"replica_count": 2, "total_iops_max": 500},
         "metadata": {"app": "db"}, "snapshot_policies": ["daily:1day:3"]}))
    k["Volume"].create(ctx, k["Volume"].spec_from({"name": "web-1", "size": 3,
                                                   "tenant": tenant}))
    k["Snapshot"].create(ctx, k["Snapshot"].spec_from({"volume_id": db.id}))
    vid = str(uuid.uuid4())
    ai = ctx.client.post("/app_instances", {"name": f"OS-{vid}", "uuid": vid,
                                            "create_mode": "openstack", **ONE}, tenant=f"/root/{tenant}")
    ctx.client.post(f"{ai['path']}/storage_instances/storage-1/volumes/volume-1/snapshots",
                    {"uuid": str(uuid.uuid4())}, tenant=f"/root/{tenant}")
    return db
