"""The HCL examples run as written: `terraform test` over examples/terraform/basic (create,
then grow + QoS change in place, then teardown) and examples/terraform/import (adopt objects
made outside Terraform; the next plan is empty), against the simulator."""

from __future__ import annotations

import shutil

import pytest
from tfharness import REPO

from datera_iac.resources.base import KINDS

pytestmark = pytest.mark.terraform

EXAMPLES = REPO / "examples" / "terraform"


def test_terraform_test_suite_over_basic_example(sim_tf, dsp):
    """`terraform test` passes both runs and tears everything down."""
    tf = sim_tf
    shutil.copytree(EXAMPLES / "basic", tf.dir, dirs_exist_ok=True)
    p = tf.run("test", "-no-color")
    assert "2 passed, 0 failed" in p.stdout, p.stdout
    client, _ = dsp
    assert all(t.get("name") not in ("team-a", "team-a-tftest")
               for t in client.list("/tenants", tenant="/root"))


def test_terraform_test_after_apply_as_the_readme_says(sim_tf, dsp):
    """examples/terraform/README.md: `terraform apply`, then `terraform test` - the suite
    passes beside the applied objects and leaves them as they were."""
    tf = sim_tf
    shutil.copytree(EXAMPLES / "basic", tf.dir, dirs_exist_ok=True)
    assert tf.apply().returncode == 0
    p = tf.run("test", "-no-color")
    assert "2 passed, 0 failed" in p.stdout, p.stdout
    client, _ = dsp
    names = [t.get("name") for t in client.list("/tenants", tenant="/root")]
    assert "team-a" in names and "team-a-tftest" not in names
    assert tf.plan().returncode == 0


@pytest.mark.slow  # import blocks are covered in CI by test_sim_e2e.py; this runs the example
def test_import_example_adopts_and_plans_clean(sim_tf, dsp):
    """The import example adopts a tenant and a volume made by someone else (here: the
    core, as Cinder would) and the next plan is empty."""
    _, ctx = dsp
    t = KINDS["Tenant"].create(ctx, KINDS["Tenant"].spec_from({"name": "legacy"}))
    KINDS["Volume"].create(ctx, KINDS["Volume"].spec_from(
        {"name": "OS-volume-1", "size": 5, "tenant": t.id}))
    tf = sim_tf
    shutil.copytree(EXAMPLES / "import", tf.dir, dirs_exist_ok=True)
    p = tf.apply()
    assert "2 imported, 0 added, 0 changed, 0 destroyed" in p.stdout, p.stdout
    assert tf.plan().returncode == 0


def test_every_example_validates(sim_tf):
    """`terraform validate` accepts every example directory against the provider's schema
    (the attach example needs a real iSCSI node, so CI only validates it)."""
    tf = sim_tf
    for d in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        work = tf.dir / d.name
        shutil.copytree(d, work)
        tf.dir, home = work, tf.dir
        try:
            p = tf.run("validate", "-no-color")
        finally:
            tf.dir = home
        assert "Success! The configuration is valid" in p.stdout, (d.name, p.stdout)
