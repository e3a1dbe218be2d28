"""What the providers plan on top of the one planner, table by table (issue 15, "one
planner"): the planned state (inputs in the declaration's form, unknowns, which outputs stay
known, the id, replacements, the raw compare of a prior state that no longer structures,
write-only secrets and their rotation, repair), the inputs a state keeps after a read, and
validation with values known only after apply. Pure: no DSP, no Terraform, no Pulumi."""

from __future__ import annotations

import pytest

from datera_iac.errors import InputError
from datera_iac.resources import kind_for
from datera_iac.resources.plan import (
    apply_change,
    declaration,
    output_names,
    outputs_after,
    plan_state,
    recorded_inputs,
    repair_shown_on,
    secrets_as_applied,
    spec_if_known,
    stand_ins,
)

VOLUME = kind_for("Volume")
ATTACH = kind_for("NodeAttachment")
SECRET = "abcdefghijkl"
OUTS = set(output_names(VOLUME))


def vol(**kw):
    return VOLUME.spec_from({"name": "db1", "size": 10, **kw})


def prior_state(**kw):
    """A prior provider state: the spec's data, outputs, an id (as a refresh leaves it)."""
    data = {k: v for k, v in VOLUME.spec_to(vol(**kw)).items() if v is not None}
    return {**data, "id": "/root/db1", "uuid": "u-1", "health": "ok"}


def test_output_names_leave_out_the_id_and_echoed_inputs():
    assert "id" not in OUTS and "tenant" not in OUTS and {"uuid", "health"} <= OUTS


@pytest.mark.parametrize("prior, given, kw, action, replaces, unknown", [
    # create: every output and the id unknown; an unset optional input too (the DSP decides)
    (None, {"name": "db1", "size": 10}, {}, "create", (), OUTS | {"id", "tenant"}),
    # nothing changed: outputs and id stay known
    (prior_state(), {"name": "db1", "size": 10}, {}, "same", (), set()),
    # grow in place: outputs become known after apply
    (prior_state(), {"name": "db1", "size": 20}, {}, "update", (), OUTS),
    # a replace field: outputs and the id unknown
    (prior_state(tenant="/root/team-a"), {"name": "db1", "size": 10, "tenant": "/root/team-b"}, {},
     "replace", ("tenant",), OUTS | {"id"}),
    # a value known only after apply: compared raw, counts as changed (a replacement where
    # the field is); the known ones compare raw
    (prior_state(), {"name": "db1"}, {"unknown": {"size"}, "spec": None}, "update", (),
     OUTS | {"size"}),
    (prior_state(), {"name": "db1", "size": 10}, {"unknown": {"tenant"}, "spec": None},
     "replace", ("tenant",), OUTS | {"id", "tenant"}),
    # a stable output stays known through an update
    (prior_state(), {"name": "db1", "size": 20}, {"stable": {"uuid"}}, "update", (),
     OUTS - {"uuid"}),
])
def test_the_planned_states_table(prior, given, kw, action, replaces, unknown):
    kw = dict(kw)
    spec = kw.pop("spec", "from-given")
    if spec == "from-given":
        spec = VOLUME.spec_from(given)
    p = plan_state(VOLUME, prior, given, spec, **kw)
    assert (p.action, p.replaces) == (action, replaces)
    assert {n for n in p.unknown if n in OUTS or n == "id"} | (p.unknown & {"size", "tenant"}) \
        == unknown
    if "id" not in p.unknown:
        assert p.values["id"] == prior["id"]


def test_a_create_plans_the_declarations_form_and_the_cores_defaults():
    given = {"name": "db1", "size": 10, "tenant": "team-a"}
    p = plan_state(VOLUME, None, given, VOLUME.spec_from(given))
    assert p.values["tenant"] == "team-a"  # as written, not /root/team-a
    assert p.values["extra_specs"] == {}  # the core's default
    assert "clone_of" in p.unknown  # unset, no default value yet: the DSP decides


def test_an_input_in_another_form_is_not_a_change():
    given = {"name": "db1", "size": 10, "tenant": "team-a"}
    p = plan_state(VOLUME, prior_state(tenant="/root/team-a"), given, VOLUME.spec_from(given))
    assert p.action == "same" and p.values["tenant"] == "team-a"


def test_a_prior_state_the_core_no_longer_accepts_compares_raw():
    prior = {**prior_state(), "size": "huge"}  # a validator tightened since it was written
    given = {"name": "db1", "size": 10}
    p = plan_state(VOLUME, prior, given, VOLUME.spec_from(given))
    assert p.action == "update" and p.diff is None and p.values["size"] == 10


def test_a_change_the_kind_refuses_raises():
    given = {"name": "db1", "size": 5}
    with pytest.raises(InputError):
        plan_state(VOLUME, prior_state(), given, VOLUME.spec_from(given))


def test_write_only_secrets_and_their_rotation():
    prior = prior_state(chap_user="user1")
    given = {"name": "db1", "size": 10, "chap_user": "user1"}
    spec = VOLUME.spec_from({**given, "chap_secret": SECRET})
    kw = {"write_only": {"chap_secret"}, "written": {"chap_secret": SECRET},
          "rotation": {"chap_secret": "chap_secret_wo_version"}}
    # the DSP holds what the configuration says while the version is unchanged
    p = plan_state(VOLUME, prior, given, spec, **kw)
    assert p.action == "same" and p.values["chap_secret"] is None  # never in the state
    # a new version rotates it: an update, the secret still out of the state
    p = plan_state(VOLUME, prior, given, spec, rotated={"chap_secret"}, **kw)
    assert p.action == "update" and p.values["chap_secret"] is None and p.replaces == ()
    assert secrets_as_applied({"name": "x"}, {"chap_secret": SECRET}) == \
        {"name": "x", "chap_secret": SECRET}
    assert secrets_as_applied({"name": "x"}, {"chap_secret": SECRET}, {"chap_secret"}) == \
        {"name": "x"}


def test_repair_is_an_update_with_outputs_unknown():
    given = {"volume_id": "/root/ab12", "initiator_iqn": "iqn.2024-01.org.x:n1"}
    spec = ATTACH.spec_from(given)
    prior = {**given, "id": "a1", "repair_needed": "a path is down"}
    p = plan_state(ATTACH, prior, given, spec)
    assert (p.action, p.repair) == ("update", "a path is down")
    assert "repair_needed" in p.unknown and p.values["id"] == "a1"
    assert repair_shown_on(ATTACH, {"repair_needed": "a path is down"}, p.repair) == "repair_needed"
    assert repair_shown_on(ATTACH, {}, "why") == "device_path"  # else the first output
    assert repair_shown_on(ATTACH, {}, None) is None


def test_an_apply_refuses_a_replacement_its_plan_could_not_see():
    with pytest.raises(InputError) as e:
        apply_change(VOLUME, prior_state(tenant="/root/team-a"), vol(tenant="/root/team-b"), rerun="`x up`")
    assert e.value.field == "tenant" and "run `x up` again" in (e.value.fix or "")
    change = apply_change(VOLUME, prior_state(), vol(size=20))
    assert change.prior.size == 10 and change.action == "update"


def test_recorded_inputs_keep_the_users_form_and_unreported_secrets():
    observed = vol(tenant="/root/team-a", chap_user="user1")
    user = {"name": "db1", "size": 10, "tenant": "team-a", "chap_user": "user1",
            "chap_secret": SECRET, "clone_of": None}
    got = recorded_inputs(VOLUME, observed, user)
    assert got["tenant"] == "team-a" and got["chap_secret"] == SECRET and got["clone_of"] is None
    # a size the DSP reports differently is what the DSP says
    assert recorded_inputs(VOLUME, vol(size=20), user)["size"] == 20
    # an import (no declaration), and Pulumi's form: the DSP's, unreported inputs kept
    assert recorded_inputs(VOLUME, observed, None)["tenant"] == "/root/team-a"
    got = recorded_inputs(VOLUME, observed, {**user, "clone_of": "/root/src"}, user_form=False)
    assert got["tenant"] == "/root/team-a" and got["clone_of"] == "/root/src"


def test_validation_with_unknown_values():
    assert spec_if_known(VOLUME, {"name": "db1"}, {"size"}) is None  # missing: it is unknown
    assert spec_if_known(VOLUME, {"name": "db1", "size": 10}, {"tenant"}) is None
    assert spec_if_known(VOLUME, {"name": "db1", "size": 10}) == vol()
    with pytest.raises(InputError):  # a known value is checked now
        spec_if_known(VOLUME, {"name": "db1", "size": -1}, {"tenant"})
    assert stand_ins({"size": 10, "tenant": None}, {"name": "db1", "size": "?", "tenant": "?"},
                     ["size", "tenant"]) == {"name": "db1", "size": 10}


def test_the_declaration_kept_for_the_next_plan_holds_no_secret():
    d = declaration(VOLUME, vol(chap_user="user1", chap_secret=SECRET))
    assert d["chap_user"] == "user1" and "chap_secret" not in d and "clone_of" not in d
    assert declaration(VOLUME, None) is None


def test_the_outputs_an_update_will_leave():
    vtype = kind_for("VolumeType")
    old = {"name": "gold", "replica_count": 2}
    outs = vtype.outputs_to(_observed_type(vtype, old).outputs)
    after = outputs_after(vtype, "gold", old, outs, {"name": "gold", "replica_count": 3})
    assert after["extra_specs"]["DF:replica_count"] == "3"
    assert outs["extra_specs"]["DF:replica_count"] == "2"
    # a prior state that no longer structures: all unknown
    assert outputs_after(vtype, "gold", {"name": "gold", "replica_count": "x"}, outs, old) is None


def _observed_type(vtype, data):
    from datera_iac.resources.base import Observed
    spec = vtype.spec_from(data)
    return Observed(id="gold", spec=spec, outputs=vtype.planned_outputs(
        Observed(id="gold", spec=spec, outputs=None), spec))
