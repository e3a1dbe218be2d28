"""A real Terraform against the provider serving the toy Disk kind (no simulator needed):
the adapter's Terraform semantics end to end — plan/apply, empty re-plan, grow in place,
shrink refused at plan time, drift, out-of-band delete, replacement, import, destroy."""

from __future__ import annotations

import json
import re

import pytest

# The same semantics run against the real kinds in test_sim_e2e.py; these stay as a
# kind-independent check of the adapter (bench/ and `pytest -m slow` run them).
pytestmark = [pytest.mark.terraform, pytest.mark.slow]

CONFIG = """
terraform {{
  required_providers {{
    datera = {{ source = "datera/datera" }}
  }}
}}
provider "datera" {{
  path     = "{store}"
  password = "pr0vider-pass"
}}
variable "size" {{
  default = 2
}}
variable "name" {{
  default = "disk-a"
}}
resource "datera_disk" "a" {{
  name     = var.name
  size     = var.size
  tenant   = "team"
  labels   = {{ env = "dev" }}
  secret   = "s3cret-value"
  timeouts = {{ create = "90s" }}
}}
"""


def _store(tf):
    path = tf.dir.parent / "store.json"
    return path, (json.loads(path.read_text()) if path.exists() else {})


def _save(path, data):
    path.write_text(json.dumps(data))


def test_lifecycle(toy_tf):
    """apply -> empty plan -> grow in place (serial kept, generation recomputed) -> drift
    (exit 2) -> out-of-band delete (re-create planned) -> rename replaces -> destroy."""
    tf = toy_tf
    store_path = tf.dir.parent / "store.json"
    tf.write(CONFIG.format(store=store_path))
    tf.apply()
    state = tf.state()["datera_disk.a"]
    assert state["tenant"] == "team"  # the user's form is kept; the core says /root/team
    assert state["id"] == "/root/team/disk-a" and state["mode"] == "hybrid"
    _, data = _store(tf)
    assert data["/root/team/disk-a"]["timeout_create"] == 90.0  # timeouts reach the kind
    assert tf.plan().returncode == 0

    tf.apply("-var", "size=3")
    after = tf.state()["datera_disk.a"]
    assert after["size"] == 3 and after["serial"] == state["serial"]
    assert after["generation"] == 2
    assert tf.plan("-var", "size=3").returncode == 0

    path, data = _store(tf)
    data["/root/team/disk-a"]["labels"] = {"env": "prod"}
    _save(path, data)
    p = tf.plan("-var", "size=3")
    assert p.returncode == 2 and '"prod" -> "dev"' in p.stdout

    del data["/root/team/disk-a"]
    _save(path, data)
    assert tf.actions("-var", "size=3") == {"datera_disk.a": ["create"]}
    tf.apply("-var", "size=3", "-var", "name=disk-b")
    assert list(_store(tf)[1]) == ["/root/team/disk-b"]

    p = tf.apply("-var", "size=3", "-var", "name=disk-c")
    assert "forces replacement" in p.stdout and "1 added, 0 changed, 1 destroyed" in p.stdout
    tf.destroy("-var", "size=3", "-var", "name=disk-c")
    assert _store(tf)[1] == {}
    log = (tf.dir.parent / "store.log").read_text().split()
    assert log.count("update") == 1  # grow in place; no update for the no-op plans


def test_shrink_and_bad_input_are_plan_errors(toy_tf):
    """A shrink and an invalid name fail at plan time with the attribute named, no
    traceback and no write to the store."""
    tf = toy_tf
    store_path = tf.dir.parent / "store.json"
    tf.write(CONFIG.format(store=store_path))
    tf.apply()
    before = store_path.read_text()
    p = tf.plan("-var", "size=1")
    assert p.returncode == 1
    assert "Invalid size" in p.stderr and "cannot shrink from 2 to 1 GiB" in p.stderr
    assert re.search(r"size +\= var.size", p.stderr)  # Terraform points at the attribute
    p = tf.plan("-var", "name=X")
    assert p.returncode == 1 and "Invalid name" in p.stderr
    for out in (p.stdout, p.stderr):
        assert "Traceback" not in out and "s3cret-value" not in out and "pr0vider-pass" not in out
    assert store_path.read_text() == before


def test_import_block_and_cli_import(toy_tf):
    """An `import {}` block and `terraform import` adopt existing disks; the next plan is
    empty."""
    tf = toy_tf
    store_path = tf.dir.parent / "store.json"
    obj = {"name": "imp-a", "size": 4, "tenant": "/root", "labels": {}, "mode": "all_flash",
           "serial": "abc", "generation": 7}
    _save(store_path, {"/root/imp-a": {**obj, "id": "/root/imp-a"},
                       "/root/imp-b": {**obj, "id": "/root/imp-b", "name": "imp-b"}})
    tf.write(f"""
terraform {{
  required_providers {{
    datera = {{ source = "datera/datera" }}
  }}
}}
provider "datera" {{
  path = "{store_path}"
}}
import {{
  to = datera_disk.a
  id = "imp-a"
}}
resource "datera_disk" "a" {{
  name = "imp-a"
  size = 4
}}
resource "datera_disk" "b" {{
  name = "imp-b"
  size = 4
  mode = "all_flash"
}}
""")
    p = tf.run("import", "-no-color", "datera_disk.b", "/root/nope", ok=(1,))
    assert "not found on the DSP" in p.stderr and "no disk '/root/nope'" in p.stderr
    tf.run("import", "-no-color", "datera_disk.b", "/root/imp-b")
    p = tf.apply()
    assert "1 imported, 0 added, 0 changed, 0 destroyed" in p.stdout
    assert tf.plan().returncode == 0
    st = tf.state()
    assert st["datera_disk.a"]["mode"] == "all_flash" and st["datera_disk.b"]["generation"] == 7
