"""The VolumeType kind against the simulator over HTTP: materialize=True owns an
app_template; materialize=False makes no API call at all (checked with sim.counters())."""

from __future__ import annotations

import pytest

from datera_iac.errors import Conflict

from datera_iac.errors import NotFound
from datera_iac.resources.base import kind_for

KIND = kind_for("VolumeType")


def _calls(sim):
    return {k: v for k, v in sim.counters().items() if v}


def _template(ctx, name):
    data = ctx.client.get(f"/app_templates/{name}")
    (st,) = data["storage_templates"]
    (vt,) = st["volume_templates"]
    return st, vt


def test_not_materialized_makes_zero_calls(ctx, sim):
    """create / read_known / update / find / delete of a plain type: counters unchanged."""
    before = _calls(sim)
    spec = KIND.spec_from({"name": "datera_2way", "replica_count": 2})
    obs = KIND.create(ctx, spec)
    assert KIND.read_known(ctx, obs.id, spec) == obs
    new = KIND.spec_from({"name": "datera_2way", "replica_count": 3, "total_iops_max": 10})
    KIND.update(ctx, obs.id, spec, new)
    assert KIND.find(ctx, new) is None
    KIND.delete(ctx, obs.id)
    assert _calls(sim) == before


def test_materialized_lifecycle(ctx, sim):
    """create POSTs one app_template holding the resolved policy; update PUTs only when the
    template's layout changes; delete removes it; a second delete is fine."""
    spec = KIND.spec_from({"name": "datera_2way", "replica_count": 2, "total_iops_max": 900,
                           "materialize": True, "description": "two copies"})
    obs = KIND.create(ctx, spec)
    assert obs.id == "/app_templates/datera_2way" == obs.outputs.app_template_path
    assert obs.spec == spec
    st, vt = _template(ctx, "datera_2way")
    assert (st["name"], vt["name"], vt["replica_count"], vt["placement_mode"]) == (
        "storage-1", "volume-1", 2, "hybrid")
    assert st["ip_pool"]["path"] == "/access_network_ip_pools/default"
    assert vt["performance_policy"]["total_iops_max"] == 900
    assert sim.counters()["POST /v2.2/app_templates"] == 1

    # a Cinder-side change (description) does not touch the DSP
    puts = sim.counters().get("PUT /v2.2/app_templates/:name", 0)
    desc = KIND.spec_from({**KIND.spec_to(spec), "description": "2 copies"})
    assert KIND.update(ctx, obs.id, spec, desc).spec == desc
    assert sim.counters().get("PUT /v2.2/app_templates/:name", 0) == puts

    new = KIND.spec_from({"name": "datera_2way", "replica_count": 3, "materialize": True,
                          "placement_mode": "all_flash", "read_iops_max": 50})
    got = KIND.update(ctx, obs.id, desc, new)
    assert got.spec == new
    assert sim.counters()["PUT /v2.2/app_templates/:name"] == puts + 1
    _, vt = _template(ctx, "datera_2way")
    assert (vt["replica_count"], vt["placement_mode"]) == (3, "all_flash")
    assert {k: v for k, v in vt["performance_policy"].items() if k != "path" and v} == {
        "read_iops_max": 50}

    KIND.delete(ctx, obs.id)
    with pytest.raises(NotFound):
        ctx.client.get("/app_templates/datera_2way")
    assert KIND.read(ctx, obs.id) is None
    assert KIND.read_known(ctx, obs.id, new) is None
    KIND.delete(ctx, obs.id)  # already gone: success


def test_materialized_drift_and_import(ctx, sim):
    """A template changed out of band shows as drift; adopt imports it as a materialized type
    whose spec round-trips (unset fields stay unset when the template holds the default)."""
    spec = KIND.spec_from({"name": "silver", "write_iops_max": 5000, "materialize": True})
    obs = KIND.create(ctx, spec)
    body = {"storage_templates": [{"name": "storage-1", "volume_templates": [
        {"name": "volume-1", "size": 1, "replica_count": 2,
         "performance_policy": {"write_iops_max": 5000}}]}]}
    ctx.client.put("/app_templates/silver", body)
    seen = KIND.read_known(ctx, obs.id, spec)
    assert KIND.diff(spec, seen.spec).fields == ("replica_count",)
    assert seen.spec.replica_count == 2
    imported = KIND.adopt(ctx, "silver")
    assert imported.id == obs.id
    assert imported.spec == KIND.spec_from(
        {"name": "silver", "materialize": True, "replica_count": 2, "write_iops_max": 5000})
    assert KIND.adopt(ctx, "/app_templates/silver").spec == imported.spec
    with pytest.raises(NotFound):
        KIND.adopt(ctx, "no_such_type")


def test_create_is_twin_free(ctx, sim):
    """Creating a materialized type whose template already exists makes no second one: a
    create that did not make it (its token is another create's) is a conflict, never an
    adoption (issue 16); find still finds the template a datera-iac create made."""
    spec = KIND.spec_from({"name": "gold", "replica_count": 2, "materialize": True})
    KIND.create(ctx, spec)
    with pytest.raises(Conflict):
        KIND.create(ctx, spec)
    assert [t["name"] for t in ctx.client.list("/app_templates")].count("gold") == 1
    assert KIND.find(ctx, spec).id == "/app_templates/gold"


def test_update_puts_right_an_out_of_band_change_even_with_stale_old(ctx, sim):
    """update compares with the live template, not the caller's old spec: one GET, one PUT;
    with nothing to change it is one GET and no write."""
    spec = KIND.spec_from({"name": "bronze", "replica_count": 2, "materialize": True})
    obs = KIND.create(ctx, spec)
    ctx.client.put("/app_templates/bronze", {"storage_templates": [{
        "name": "storage-1", "volume_templates": [{"name": "volume-1", "size": 1,
                                                   "replica_count": 4}]}]})
    puts = sim.counters()["PUT /v2.2/app_templates/:name"]
    fixed = KIND.update(ctx, obs.id, spec, spec)
    assert fixed.spec == spec
    assert sim.counters()["PUT /v2.2/app_templates/:name"] == puts + 1
    _, vt = _template(ctx, "bronze")
    assert vt["replica_count"] == 2
    KIND.update(ctx, obs.id, spec, spec)
    assert sim.counters()["PUT /v2.2/app_templates/:name"] == puts + 1
