"""The provider's schema is the core's: every kind field is an attribute with the core's
flags; the committed docs and schema snapshot (``python -m datera_iac_tf.gen``) are current; and
what a real Terraform reports (``providers schema -json``) equals the snapshot."""

from __future__ import annotations

import json

import attrs
import pytest
from tfharness import REPO, Tf

from datera_iac.resources.base import REPLACE, SENSITIVE
from datera_iac_tf.gen import PROVIDER_DIR, expected_files, stale
from datera_iac_tf.provider import PROVIDER_ADDRESS, DateraProvider, default_kinds

REGEN = "run `python -m datera_iac_tf.gen` and review the diff"


@pytest.fixture(scope="module")
def app() -> DateraProvider:
    return DateraProvider()


def test_every_kind_field_is_an_attribute_with_the_cores_flags(app):
    """Each Spec field is an input with requires_replace/sensitive from its metadata; each
    Outputs field is computed; the five kinds are all served."""
    names = {k.tf_type for k in default_kinds()}
    assert {"datera_tenant", "datera_volume_type", "datera_volume", "datera_snapshot"} <= names
    for cls in app.get_resources():
        kind = cls.adapter.kind
        attrs_ = {a.name: a for a in cls.get_schema().attributes}
        for f in attrs.fields(kind.Spec):
            a = attrs_[f.name]
            assert bool(a.requires_replace) == bool(f.metadata.get(REPLACE)), (kind.name, f.name)
            assert bool(a.sensitive) == bool(f.metadata.get(SENSITIVE)), (kind.name, f.name)
            assert a.required == (f.default is attrs.NOTHING), (kind.name, f.name)
        spec_names = {f.name for f in attrs.fields(kind.Spec)}
        for f in attrs.fields(kind.Outputs):
            if f.name not in spec_names and f.name != "id":
                assert attrs_[f.name].computed and not attrs_[f.name].optional


def test_docs_and_schema_snapshot_are_current(app):
    """datera_iac_tf/docs/** and datera_iac_tf/schema.json equal what the live schema generates."""
    files = expected_files(app)
    bad = stale(files)
    assert not bad, f"stale generated files {bad}: {REGEN}"
    assert {"docs/index.md", "docs/resources/volume.md", "docs/data-sources/volumes.md",
            "docs/data-sources/system.md", "docs/data-sources/cinder_volume_type.md"} <= set(files)
    vol = files["docs/resources/volume.md"]
    assert "## Import" in vol and "terraform import datera_volume.example" in vol
    assert "- `size` (Number)" in vol and "`chap_secret` (String, Sensitive, Deprecated)" in vol
    assert "`chap_secret_wo` (String, Sensitive, [Write-only](" in vol


@pytest.mark.terraform
def test_terraform_reports_the_snapshot(terraform_bin, tmp_path):
    """`terraform providers schema -json` equals datera_iac_tf/schema.json (minus our
    requires_replace section, which Terraform does not print)."""
    from datera_iac_tf.install import install_dev_overrides

    rc = install_dev_overrides(tmp_path / "plugins", pythonpath=[str(REPO)])
    tf = Tf(terraform_bin, tmp_path / "work", rc)
    tf.write('terraform {\n  required_providers {\n    datera = { source = "datera/datera" }\n  }\n}\n')
    got = json.loads(tf.run("providers", "schema", "-json").stdout)["provider_schemas"][PROVIDER_ADDRESS]
    snap = json.loads((PROVIDER_DIR / "schema.json").read_text())
    snap.pop("requires_replace")
    assert got == snap, REGEN
