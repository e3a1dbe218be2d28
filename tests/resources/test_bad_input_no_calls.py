"""Bad input is caught before any API call: the simulator counts 0 requests while specs are
built, diffed, and create/update refuse them. Includes Hypothesis properties over
generated inputs."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datera_iac.errors import InputError
from datera_iac.resources import KINDS
from tests.resources.test_specs import BAD_VOLUMES

VOLUME = KINDS["Volume"]
TENANT = KINDS["Tenant"]
SNAPSHOT = KINDS["Snapshot"]


@pytest.mark.parametrize(("extra", "field", "fix"), [b for b in BAD_VOLUMES if b[1]])
def test_bad_volume_input_makes_no_call(ctx, calls, extra, field, fix):
    """Each bad field fails in spec_from with 0 requests to the DSP."""
    calls()
    with pytest.raises(InputError) as e:
        VOLUME.spec_from({"name": "vol-a", "size": 10, **extra}, resource="r1")
    assert e.value.field == field and e.value.fix
    assert calls() == {}


def test_plan_time_errors_make_no_call(ctx, calls):
    """Shrink, replica decrease and a CHAP user without its secret fail in diff / before
    create and update, with 0 requests."""
    obs = VOLUME.create(ctx, VOLUME.spec_from({"name": "vol-a", "size": 10, "extra_specs":
                                              {"replica_count": 3}}))
    calls()
    with pytest.raises(InputError) as e:
        VOLUME.diff(obs.spec, VOLUME.spec_from({"name": "vol-a", "size": 5}))
    assert e.value.field == "size"
    with pytest.raises(InputError) as e:
        VOLUME.diff(obs.spec, VOLUME.spec_from({"name": "vol-a", "size": 10,
                                                "extra_specs": {"replica_count": 1}}))
    assert e.value.field == "extra_specs.DF:replica_count"
    with pytest.raises(InputError) as e:
        VOLUME.create(ctx, VOLUME.spec_from({"name": "vol-b", "size": 1, "chap_user": "user1"}))
    assert e.value.field == "chap_secret"
    with pytest.raises(InputError):
        VOLUME.update(ctx, obs.id, obs.spec,
                      VOLUME.spec_from({"name": "vol-a", "size": 10, "chap_user": "user1"}))
    with pytest.raises(InputError):
        TENANT.spec_from({"name": "x"})
    with pytest.raises(InputError):
        SNAPSHOT.spec_from({"volume_id": "  "})
    assert calls() == {}


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=70),
    st.sampled_from(["10", "0", "-1", "3.5", "vol-a", "/root/team-a", "daily:1day:7",
                     "user1", "abcdefghijklm", "DF:replica_count"]),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3),
                    st.dictionaries(st.text(max_size=25), _scalars, max_size=3))
_volume_fields = st.sampled_from(
    ["name", "size", "tenant", "volume_type", "extra_specs", "clone_of", "snapshot_id",
     "template", "chap_user", "chap_secret", "chap_initiator_user", "chap_initiator_secret",
     "metadata", "snapshot_policies", "replace_on_retype", "bogus"])
_extra_specs = st.dictionaries(
    st.sampled_from(["DF:replica_count", "replica_count", "DF:total_iops_max", "iops_per_gb",
                     "DF:placement_mode", "DF:ip_pool", "DF:round_robin", "DF:nope", "qos:x",
                     "DF:template"]),
    _scalars, max_size=4)


def _check_error(e: InputError, kind: str) -> None:
    assert e.kind == kind and e.field and e.fix, e
    assert "Traceback" not in str(e)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(_volume_fields, _values, max_size=6), specs=_extra_specs)
def test_generated_volume_input(sim, data, specs):
    """Any input either builds a valid, normalized spec or raises InputError naming kind,
    field and fix; never another exception, never a request."""
    before = dict(sim.counters())
    data = {"name": "vol-a", "size": 1, **data}
    if specs:
        data["extra_specs"] = specs
    try:
        s = VOLUME.spec_from(data, resource="gen")
    except InputError as e:
        _check_error(e, "Volume")
        assert e.resource == "gen"
    else:
        assert isinstance(s.size, int) and 1 <= s.size <= 32768
        assert s.tenant is None or s.tenant.startswith("/root")
        assert all(k.startswith("DF:") for k in s.extra_specs)
        assert VOLUME.spec_from(VOLUME.spec_to(s)) == s  # idempotent round trip
    assert dict(sim.counters()) == before


@settings(max_examples=200, deadline=None)
@given(old=st.integers(1, 32768), new=st.integers(1, 32768),
       r_old=st.integers(1, 5), r_new=st.integers(1, 5), allow=st.booleans())
def test_generated_resize_and_retype(old, new, r_old, r_new, allow):
    """A replica decrease is an InputError unless replace_on_retype, then a replacement; a
    shrink is a size InputError unless the volume is replaced anyway; growth is in place."""
    a = VOLUME.spec_from({"name": "vol-a", "size": old, "extra_specs": {"replica_count": r_old}})
    b = VOLUME.spec_from({"name": "vol-a", "size": new, "extra_specs": {"replica_count": r_new},
                          "replace_on_retype": allow})
    if r_new < r_old and not allow:
        with pytest.raises(InputError) as e:
            VOLUME.diff(a, b)
        assert e.value.field == "extra_specs.DF:replica_count"
        return
    if new < old and not r_new < r_old:
        with pytest.raises(InputError) as e:
            VOLUME.diff(a, b)
        assert e.value.field == "size"
        return
    d = VOLUME.diff(a, b)
    assert d.replace == (r_new < r_old)
    assert ("size" in d.fields) == (new != old)


@settings(max_examples=200, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["name", "description", "parent", "x"]), _values,
                            max_size=4))
def test_generated_tenant_and_snapshot_input(data):
    """Tenant and Snapshot inputs either build or raise an InputError naming kind and field."""
    for kind, base in ((TENANT, {"name": "team-a"}), (SNAPSHOT, {"volume_id": "/root/v-1"})):
        try:
            kind.spec_from({**base, **data}, resource="gen")
        except InputError as e:
            _check_error(e, kind.name)


def test_nan_and_infinity_sizes_are_input_errors():
    """Floats that are not whole numbers (nan, inf) are refused like 10.5."""
    for v in (math.nan, math.inf, -math.inf):
        with pytest.raises(InputError) as e:
            VOLUME.spec_from({"name": "vol-a", "size": v})
        assert e.value.field == "size"
