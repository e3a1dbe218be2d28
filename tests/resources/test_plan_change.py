"""The one planner, table by table (issue 15): :func:`plan_change` decides create / same /
update / replace / repair, unknown values, secrets the DSP cannot return, a replacement's
temporary name, ignored fields and removed declarations - once, for every front end. Pure:
these tests need no DSP."""

from __future__ import annotations

import pytest

from datera_iac.errors import InputError
from datera_iac.resources import kind_for
from datera_iac.resources.plan import declared_since, plan_change, repair_of

VOLUME = kind_for("Volume")
TENANT = kind_for("Tenant")
ATTACH = kind_for("NodeAttachment")
UNKNOWN = object()


def vol(**kw):
    return VOLUME.spec_from({"name": "db1", "size": 10, **kw})


@pytest.mark.parametrize("prior, desired, kw, action, fields, replaces", [
    (None, vol(), {}, "create", (), ()),
    (vol(), vol(), {}, "same", (), ()),
    (vol(), vol(size=20), {}, "update", ("size",), ()),
    (vol(tenant="team-b"), vol(tenant="team-a"), {}, "replace", ("tenant",), ("tenant",)),
    (vol(), vol(size=20), {"ignore": {"size"}}, "same", (), ()),
    # a value known only after apply is a change, a replacement where the field is
    (vol(), vol(), {"unknown": ("size",)}, "update", ("size",), ()),
    (vol(), vol(), {"unknown": ("tenant",)}, "replace", ("tenant",), ("tenant",)),
    (vol(), vol(), {"unknown": ("tenant",), "ignore": {"tenant"}}, "same", (), ()),
    # a CHAP secret the DSP never returns: a change, unless the caller vouches for it
    (vol(chap_user="user1"), vol(chap_user="user1", chap_secret="abcdefghijkl"), {},
     "update", ("chap_secret",), ()),
    (vol(chap_user="user1"), vol(chap_user="user1", chap_secret="abcdefghijkl"),
     {"secret_kept": lambda c: c.new == "abcdefghijkl"}, "same", (), ()),
    (vol(chap_user="user1"), vol(chap_user="user1", chap_secret="abcdefghijkl"),
     {"secret_kept": lambda c: False}, "update", ("chap_secret",), ()),
])
def test_the_planners_table(prior, desired, kw, action, fields, replaces):
    change = plan_change(VOLUME, prior, desired, unknown_value=UNKNOWN, **kw)
    assert change.action == action
    assert change.diff.fields == fields
    assert change.replaces == replaces


def test_an_unknown_value_is_shown_as_unknown():
    change = plan_change(VOLUME, vol(), vol(), unknown=("size",), unknown_value=UNKNOWN)
    (c,) = change.changes
    assert (c.name, c.old, c.new, c.replace) == ("size", 10, UNKNOWN, False)


def test_an_ignored_field_keeps_the_prior_value_for_update():
    change = plan_change(VOLUME, vol(chap_user="user1"), vol(size=20, chap_user="user2"),
                         ignore={"size"})
    assert change.diff.fields == ("chap_user",) and change.desired.size == 10


def test_a_temporary_name_is_a_rename_not_a_replacement():
    prior = TENANT.spec_from({"name": "team-replacing"})
    desired = TENANT.spec_from({"name": "team"})
    assert plan_change(TENANT, prior, desired).action == "replace"
    renamed = plan_change(TENANT, prior, desired, temp_name="team-replacing")
    assert renamed.action == "update" and renamed.diff.fields == ("name",)


def test_delete_before_replace_is_kept_only_for_a_replacement():
    assert plan_change(VOLUME, vol(tenant="team-b"), vol(tenant="team-a"),
                       delete_before_replace=True).diff.delete_before_replace
    assert not plan_change(VOLUME, vol(), vol(size=20),
                           delete_before_replace=True).diff.delete_before_replace


def test_a_change_the_kind_refuses_raises():
    with pytest.raises(InputError) as e:
        plan_change(VOLUME, vol(size=20), vol(size=10))
    assert e.value.field == "size"


def test_a_broken_object_is_an_update_with_no_input_change():
    spec = ATTACH.spec_from({"volume_id": "/root/ab12", "initiator_iqn": "iqn.2024-01.org.x:n1"})
    broken = ATTACH.outputs_from({"repair_needed": "a path is down"})
    change = plan_change(ATTACH, spec, spec, outputs=broken)
    assert (change.action, change.changes, change.repair) == ("update", (), "a path is down")
    # outputs as a front end records them (plain data), and data that no longer structures
    assert plan_change(ATTACH, spec, spec, outputs={"repair_needed": "x"}).action == "update"
    assert repair_of(ATTACH, {"paths_up": "not a number"}) is None
    assert plan_change(ATTACH, spec, spec, outputs={}).action == "same"


def test_a_key_removed_from_the_declaration_is_reset():
    last = {"name": "db1", "size": 10, "extra_specs": {"DF:write_iops_max": "5000"}}
    prior = vol(extra_specs={"DF:write_iops_max": "5000"})
    # without the last declaration, a key left out keeps what the DSP has: no change
    assert plan_change(VOLUME, prior, vol()).action == "same"
    change = plan_change(VOLUME, prior, vol(), last=last)
    assert change.action == "update" and change.diff.fields == ("extra_specs",)
    assert "DF:write_iops_max" in change.desired.extra_specs
    # a last declaration the core no longer accepts compares with nothing
    assert declared_since(VOLUME, vol(), {"name": "db1", "size": "huge"}) == vol()
