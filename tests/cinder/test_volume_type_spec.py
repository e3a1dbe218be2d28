"""The VolumeType kind's inputs, outputs and its DSP-free lifecycle (materialize=False)."""

from __future__ import annotations

import attrs
import pytest

from datera_iac.cinder import PROPERTIES
from datera_iac.errors import InputError
from datera_iac.resources.base import REPLACE, Context, kind_for
from datera_iac.resources.volume_type import VolumeType, VolumeTypeSpec

KIND = kind_for("VolumeType")


class _NoDsp:
    """A client that fails the test on any use: a non-materialized type must not call."""

    def __getattr__(self, name):
        raise AssertionError(f"VolumeType touched the DSP client ({name})")


def _ctx():
    return Context(client=_NoDsp(), config=None)


def test_registered_under_all_names():
    """One instance under the short name, the Pulumi token and the Terraform type."""
    assert KIND is kind_for("datera:index:VolumeType") is kind_for("datera_volume_type")
    assert isinstance(KIND, VolumeType)


def test_one_typed_field_per_df_property():
    """Every DF: property of the driver table is a field, None by default, typed like it."""
    fields = attrs.fields_dict(VolumeTypeSpec)
    for name, prop in PROPERTIES.items():
        assert fields[name].default is None
        assert prop.type.__name__ in str(fields[name].type)
    assert fields["name"].metadata[REPLACE] and fields["materialize"].metadata[REPLACE]
    assert not fields["replica_count"].metadata[REPLACE]


def test_outputs_seed_example():
    """Outputs of datera_2way: the Cinder map, the openstack line and the TPO block."""
    obs = KIND.create(_ctx(), KIND.spec_from({"name": "datera_2way", "replica_count": "2"}))
    assert obs.id == "datera_2way"
    assert obs.outputs.extra_specs == {"volume_backend_name": "datera", "DF:replica_count": "2"}
    assert obs.outputs.openstack_command == (
        "openstack volume type create datera_2way --property volume_backend_name=datera "
        "--property DF:replica_count=2")
    assert obs.outputs.terraform_hcl.startswith(
        'resource "openstack_blockstorage_volume_type_v3" "datera_2way" {')
    assert obs.outputs.app_template_path is None


def test_lifecycle_without_materialize_makes_no_call():
    """create, read_known, update, find and delete of a plain type never use the client."""
    ctx = _ctx()
    spec = KIND.spec_from({"name": "datera_iops", "write_iops_max": 5000})
    obs = KIND.create(ctx, spec)
    assert KIND.read_known(ctx, obs.id, spec) == obs
    new = KIND.spec_from({"name": "datera_iops", "write_iops_max": 6000, "description": "more"})
    d = KIND.diff(spec, new)
    assert set(d.fields) == {"write_iops_max", "description"} and not d.replace
    upd = KIND.update(ctx, obs.id, spec, new)
    assert upd.outputs.extra_specs["DF:write_iops_max"] == "6000"
    assert KIND.find(ctx, new) is None
    assert KIND.read(ctx, obs.id) is None  # no declaration given: nothing on the DSP to read
    KIND.delete(ctx, obs.id)


def test_materialize_toggle_replaces():
    """materialize changes the id form (name vs template path), so it forces replacement."""
    a = KIND.spec_from({"name": "gold"})
    b = KIND.spec_from({"name": "gold", "materialize": True})
    assert KIND.diff(a, b).replaces == ("materialize",)


@pytest.mark.parametrize(
    "data, field, fix_part",
    [
        ({"name": "t1", "replica_count": 0}, "replica_count", "1..5"),
        ({"name": "t1", "replica_count": True}, "replica_count", "integer"),
        ({"name": "t1", "total_iops_max": "lots"}, "total_iops_max", "integer"),
        ({"name": "t1", "placement_mode": "fast"}, "placement_mode", "hybrid"),
        ({"name": "t1", "round_robin": "maybe"}, "round_robin", "True or False"),
        ({"name": "t1", "replicas": 2}, "replicas", "known fields"),
        ({"name": ""}, "name", "1-255"),
        ({"name": "t1", "backend_name": ""}, "backend_name", "volume_backend_name"),
        ({"name": "t1", "is_public": "nope"}, "is_public", "true or false"),
        ({"name": "has space", "materialize": True}, "name", "materialize: false"),
        ({"name": "t1x", "materialize": True, "ip_pool": "a_1,b_2"}, "ip_pool", "one pool"),
        ({"name": "t1x", "materialize": True, "template": "other"}, "template", "drop template"),
    ],
)
def test_spec_errors_name_kind_field_fix(data, field, fix_part):
    """Invalid input is an InputError naming VolumeType, the field and a fix."""
    with pytest.raises(InputError) as e:
        KIND.spec_from(data, resource="res1")
    assert (e.value.kind, e.value.field) == ("VolumeType", field)
    assert fix_part in e.value.fix


def test_policy_of_a_type_resolves_like_the_driver():
    """The type's policy is resolve_policy over its declared DF: specs."""
    import types

    spec = KIND.spec_from({"name": "t1", "iops_per_gb": 10, "total_iops_max": 50})
    conf = types.SimpleNamespace(datera_volume_type_defaults={"replica_count": 2})
    p = spec.policy(conf)
    assert (p.replica_count, p.performance_policy(3), p.performance_policy(30)) == (
        2, {"total_iops_max": 30}, {"total_iops_max": 50})


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_junk = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**8), st.floats(allow_nan=False),
                  st.text(max_size=12), st.lists(st.integers(), max_size=2))


@given(st.dictionaries(st.sampled_from(sorted(attrs.fields_dict(VolumeTypeSpec)) + ["bogus"]),
                       _junk, max_size=6))
@settings(max_examples=150, deadline=None)
def test_spec_from_junk_is_spec_or_input_error(data):
    """Over generated input, spec_from returns a spec that round-trips through spec_to, or
    raises InputError naming VolumeType and a field; never another exception."""
    data = {"name": "abc", **data}
    try:
        spec = KIND.spec_from(data)
    except InputError as e:
        assert e.kind == "VolumeType" and e.field and e.fix
        return
    assert KIND.spec_from(KIND.spec_to(spec)) == spec
    assert spec.extra_specs()["volume_backend_name"] == spec.backend_name
