"""`datera-iac cinder volume-types | conf | properties`, run through the real entry point."""

from __future__ import annotations

import json
import os

import pytest

from datera_iac.cli import main


@pytest.fixture(autouse=True)
def _no_datera_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("DATERA_"):
            monkeypatch.delenv(key)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_volume_types_seed_examples(capsys):
    """Each --property belongs to the --type before it; output is the seed's exact form."""
    code, out, err = run(capsys, "cinder", "volume-types",
                         "--type", "datera_2way", "--property", "DF:replica_count=2",
                         "--type", "datera_iops", "-p", "write_iops_max=5000")
    assert (code, err) == (0, "")
    assert out == (
        "openstack volume type create datera_2way --property volume_backend_name=datera "
        "--property DF:replica_count=2\n"
        "openstack volume type create datera_iops --property volume_backend_name=datera "
        "--property DF:write_iops_max=5000\n"
    )


def test_volume_types_hcl_and_json(capsys):
    """--format hcl prints the TPO block; --format json the extra_specs and both forms."""
    code, out, _ = run(capsys, "cinder", "volume-types", "--type=datera_2way",
                       "--property=DF:replica_count=2", "--format", "hcl")
    assert code == 0 and out.startswith(
        'resource "openstack_blockstorage_volume_type_v3" "datera_2way" {\n')
    assert '    "DF:replica_count"  = "2"\n' in out
    code, out, _ = run(capsys, "cinder", "volume-types", "-t", "gold", "-p", "total_iops_max=9",
                       "--backend-name", "dat2", "--private", "--format", "json")
    (item,) = json.loads(out)
    assert item["extra_specs"] == {"volume_backend_name": "dat2", "DF:total_iops_max": "9"}
    assert item["openstack_command"].endswith(
        "gold --private --property volume_backend_name=dat2 --property DF:total_iops_max=9")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["-t", "abc", "-p", "DF:replica_count=9"], "field 'extra_specs.DF:replica_count'"),
        (["-t", "abc", "-p", "DF:nope=1"], "unknown Datera extra spec"),
        (["-t", "abc", "-p", "replica_count"], "is not KEY=VALUE"),
        (["-p", "replica_count=2"], "must follow the --type"),
        ([], "at least one --type"),
        (["-t", "x y", "-p", "replica_count=2", "-p", "DF:replica_count=3"], "given twice"),
    ],
)
def test_volume_types_errors_are_one_line(capsys, argv, needle):
    """Bad input exits non-zero with one message naming the field; never a traceback."""
    code, out, err = run(capsys, "cinder", "volume-types", *argv)
    assert code != 0 and out == ""
    assert needle in err and "Traceback" not in err


def test_conf_from_file_set_and_env(capsys, tmp_path, monkeypatch):
    """Options come from the file, --set wins, DATERA_* fills the rest; password masked."""
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "from-env-secret")
    cfg = tmp_path / "datera.yaml"
    cfg.write_text("san_ip: 10.1.1.1\nsan_login: ops\ndatera_tenant_id: Map\n"
                   "datera_volume_type_defaults: 'iops_per_gb:100'\n")
    code, out, err = run(capsys, "cinder", "conf", "--config", str(cfg),
                         "--set", "san_ip=10.9.9.9", "--set", "datera_debug=true")
    assert (code, err) == (0, "")
    assert out == (
        "[DEFAULT]\n"
        "enabled_backends = datera\n"
        "\n"
        "[datera]\n"
        "volume_driver = cinder.volume.drivers.datera.datera_iscsi.DateraDriver\n"
        "san_ip = 10.9.9.9\n"
        "san_login = ops\n"
        "san_password = ********\n"
        "volume_backend_name = datera\n"
        "datera_tenant_id = Map\n"
        "datera_debug = True\n"
        "datera_volume_type_defaults = iops_per_gb:100\n"
    )
    code, out, _ = run(capsys, "cinder", "conf", "--config", str(cfg), "--show-password",
                       "--backend-name", "datera_a")
    assert "san_password = from-env-secret\n" in out
    assert out.startswith("[DEFAULT]\nenabled_backends = datera_a\n\n[datera_a]\n")


def test_conf_errors(capsys, tmp_path):
    """A bad option is a one-line error; the password never appears in it."""
    code, out, err = run(capsys, "cinder", "conf", "--set", "san_ip=1.2.3.4",
                         "--set", "san_password=hunter2", "--set", "datera_bogus=1")
    assert code == 1 and out == "" and "datera_bogus" in err and "hunter2" not in err
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    code, _, err = run(capsys, "cinder", "conf", "--config", str(bad))
    assert code == 1 and "expected a map" in err


def test_properties_lists_every_df_key(capsys):
    """The property listing covers the whole table."""
    from datera_iac.cinder import PROPERTIES

    code, out, _ = run(capsys, "cinder", "properties")
    assert code == 0
    for p in PROPERTIES.values():
        assert p.key in out


STACK = """\
name: cindertest
runtime: yaml
config:
  datera:san_ip: 10.2.2.2
  reps: {type: integer, default: 2}
resources:
  team:
    type: datera:index:Tenant
    properties:
      name: team-a
  two:
    type: datera:index:VolumeType
    properties:
      name: datera_2way
      replicaCount: ${reps}
  iops:
    type: datera_volume_type
    properties:
      name: datera_iops
      writeIopsMax: 5000
"""


def test_volume_types_from_stack_file(capsys, tmp_path):
    """Types declared in a stack (through the engine's loader) are emitted like --type ones,
    stack first, then the command line's."""
    f = tmp_path / "Pulumi.yaml"
    f.write_text(STACK)
    code, out, err = run(capsys, "cinder", "volume-types", "-f", str(f), "-t", "extra",
                         "-p", "DF:ip_pool=pool_b")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "openstack volume type create datera_2way --property volume_backend_name=datera "
        "--property DF:replica_count=2",
        "openstack volume type create datera_iops --property volume_backend_name=datera "
        "--property DF:write_iops_max=5000",
        "openstack volume type create extra --property volume_backend_name=datera "
        "--property DF:ip_pool=pool_b",
    ]


def test_volume_types_stack_reference_is_an_input_error(capsys, tmp_path):
    """A type property that refers to another resource cannot be emitted before up."""
    f = tmp_path / "Pulumi.yaml"
    f.write_text(STACK.replace("writeIopsMax: 5000", "description: ${team.name}"))
    code, out, err = run(capsys, "cinder", "volume-types", "-f", str(f))
    assert code == 1 and out == ""
    assert "VolumeType 'iops' field 'description'" in err and "run `datera-iac up`" in err


def test_conf_from_stack_provider_config(capsys, tmp_path):
    """cinder conf takes the stack's datera:<option> keys; --set still wins."""
    f = tmp_path / "Pulumi.yaml"
    f.write_text(STACK)
    code, out, err = run(capsys, "cinder", "conf", "-f", str(f), "--set", "san_password=x",
                         "--set", "datera_tenant_id=Map")
    assert (code, err) == (0, "")
    assert "san_ip = 10.2.2.2\n" in out and "datera_tenant_id = Map\n" in out


def test_import_type_from_openstack_json(capsys, tmp_path):
    """An existing Cinder type (+ its QoS specs) becomes a stack resource; what the driver
    ignores is noted on stderr; the resource loads back to the same VolumeType."""
    import yaml

    from datera_iac.resources.base import kind_for, snake

    t = tmp_path / "t.json"
    t.write_text(json.dumps({
        "description": "two copies", "is_public": False, "name": "datera_2way",
        "properties": "DF:replica_count='2', volume_backend_name='datera', multiattach='<is> True'",
        "qos_specs_id": "q1"}))
    q = tmp_path / "q.json"
    q.write_text(json.dumps({"name": "gold", "properties": {"qos:total_iops_max": "900"}}))
    code, out, err = run(capsys, "cinder", "import-type", str(t), "--qos", str(q),
                         "--resource", "two")
    assert code == 0
    assert out == (
        "two:\n"
        "  type: datera:index:VolumeType\n"
        "  properties:\n"
        "    name: datera_2way\n"
        "    description: two copies\n"
        "    isPublic: false\n"
        "    replicaCount: 2\n"
        "    totalIopsMax: 900\n"
    )
    assert "'multiattach' is no DF: setting" in err
    props = yaml.safe_load(out)["two"]["properties"]
    spec = kind_for("VolumeType").spec_from({snake(k): v for k, v in props.items()})
    assert spec.extra_specs() == {"volume_backend_name": "datera", "DF:replica_count": "2",
                                  "DF:total_iops_max": "900"}


def test_import_type_bad_input(capsys, tmp_path):
    """A bad DF: value in the Cinder type is an input error naming the field; not JSON too."""
    t = tmp_path / "t.json"
    t.write_text(json.dumps({"name": "bad", "properties": {"DF:replica_count": "9"}}))
    code, _, err = run(capsys, "cinder", "import-type", str(t))
    assert code == 1 and "field 'extra_specs.DF:replica_count'" in err
    t.write_text("{nope")
    code, _, err = run(capsys, "cinder", "import-type", str(t))
    assert code == 1 and "is not JSON" in err
