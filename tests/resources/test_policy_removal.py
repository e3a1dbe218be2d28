"""A policy key removed from a declaration goes back to its default on the DSP (issue #9).

A Volume's diff compares only the ``DF:`` keys its declaration names (a key never written
keeps what the DSP has). A key that *was* declared and is removed is different: the Cinder
driver's retype re-applies the whole policy of the new type, so a QoS limit that is gone
leaves the performance_policy. The engine keeps the last applied declaration in its state
and hands it to ``Kind.declare_removed``; these tests drive that through a YAML stack and
through the kind API, against the simulator over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from datera_iac.engine.core import Workspace
from datera_iac.resources import KINDS
from datera_iac.resources.base import Context

VOLUME = KINDS["Volume"]
VTYPE = KINDS["VolumeType"]

STACK = """\
name: policyrm
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: vol-qos
      size: 4
      extraSpecs: {extra}
"""


@pytest.fixture
def stack_ws(sim: Any, tmp_path: Any, monkeypatch: Any) -> Any:
    """(extra_specs as YAML flow text) -> a Workspace on the per-test simulator; every
    call rewrites the one stack file, as a user editing it would."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    made: list[Workspace] = []
    f = tmp_path / "Pulumi.yaml"

    def make(extra: str) -> Workspace:
        f.write_text(STACK.format(extra=extra))
        ws = Workspace(stack_file=f, endpoint=sim.http_url, embedded=False)
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.close()


def live_specs(ctx: Context, ws: Workspace, name: str = "v") -> dict[str, str]:
    """The volume's policy as the DSP shows it now (one GET)."""
    found = VOLUME.read(ctx, ws.load_state().resources[name].id)
    assert found is not None
    return found.spec.extra_specs


def live_qos(sim: Any, ctx: Context, ws: Workspace) -> dict[str, Any]:
    """The volume's performance_policy on the DSP ({} when there is none)."""
    vid = ws.load_state().resources["v"].id
    tenant, ai = vid.rsplit("/", 1)
    found = ctx.client.get(f"/app_instances/{ai}", tenant=tenant or "/root")
    vol = found["storage_instances"][0]["volumes"][0]
    return {k: v for k, v in (vol.get("performance_policy") or {}).items()
            if k.endswith("_max") and v}


def up_ok(ws: Workspace) -> Any:
    plan, result = ws.up()
    assert not plan.errors and result is not None and result.ok, (plan.errors, result)
    return plan


def test_engine_removed_qos_key_is_reset_then_plans_empty(sim, ctx, stack_ws):
    """Removing DF:write_iops_max plans an update of extra_specs, up takes that limit off
    the DSP's performance_policy (the other stays), and the next plan is empty; removing
    the last QoS key removes the performance_policy."""
    up_ok(stack_ws('{"DF:write_iops_max": 1000, "DF:read_iops_max": 500}'))
    ws = stack_ws('{"DF:write_iops_max": 1000, "DF:read_iops_max": 500}')
    assert live_qos(sim, ctx, ws) == {"write_iops_max": 1000, "read_iops_max": 500}

    ws = stack_ws('{"DF:read_iops_max": 500}')
    plan = ws.preview()
    assert [(s.name, s.action, [c.name for c in s.changes]) for s in plan.changes] == [
        ("v", "update", ["extra_specs"])]
    up_ok(ws)
    assert live_qos(sim, ctx, ws) == {"read_iops_max": 500}
    assert not stack_ws('{"DF:read_iops_max": 500}').preview().changes

    ws = stack_ws("{}")
    assert [s.action for s in ws.preview().changes] == ["update"]
    up_ok(ws)
    assert live_qos(sim, ctx, ws) == {}
    assert not stack_ws("{}").preview().changes
    assert "DF:read_iops_max" not in live_specs(ctx, ws)


def test_engine_removed_replica_count_goes_back_to_the_default(sim, ctx, stack_ws):
    """DF:replica_count 2 removed: the volume goes to the default 3 (in place, a grow);
    the next plan is empty."""
    up_ok(stack_ws('{"DF:replica_count": 2}'))
    ws = stack_ws("{}")
    assert live_specs(ctx, ws)["DF:replica_count"] == "2"
    plan = ws.preview()
    assert [(s.action, [c.name for c in s.changes]) for s in plan.changes] == [
        ("update", ["extra_specs"])]
    up_ok(ws)
    assert live_specs(ctx, ws)["DF:replica_count"] == "3"
    assert not stack_ws("{}").preview().changes


def test_engine_removed_replica_count_that_would_shrink_is_a_plan_error(sim, ctx, stack_ws):
    """DF:replica_count 5 removed would mean 3 replicas, which the DSP cannot do in place:
    a plan error naming the field and the fix, and nothing is written."""
    up_ok(stack_ws('{"DF:replica_count": 5}'))
    before = dict(sim.counters())
    ws = stack_ws("{}")
    plan, result = ws.up()
    assert result is None and len(plan.errors) == 1
    assert "cannot lower replica_count from 5 to 3 in place" in plan.errors[0]
    assert "extra_specs.DF:replica_count" in plan.errors[0]
    assert "replace_on_retype" in plan.errors[0]
    writes = {k: n - before.get(k, 0) for k, n in sim.counters().items()
              if k.split(" ")[0] in ("POST", "PUT", "DELETE") and "login" not in k
              and n != before.get(k, 0)}
    assert writes == {}
    assert live_specs(ctx, ws)["DF:replica_count"] == "5"


def test_engine_never_declared_key_set_out_of_band_stays_no_change(sim, ctx, stack_ws):
    """The declared-only rule is kept: a QoS limit the declaration never named (set on the
    DSP by someone else) plans no change, before and after an unrelated key is removed."""
    up_ok(stack_ws('{"DF:replica_count": 3}'))
    ws = stack_ws('{"DF:replica_count": 3}')
    vid = ws.load_state().resources["v"].id
    tenant, ai = vid.rsplit("/", 1)
    vol = ctx.client.get(f"/app_instances/{ai}", tenant=tenant)["storage_instances"][0][
        "volumes"][0]
    ctx.client.post(f"{vol['path']}/performance_policy", {"total_iops_max": 777},
                    tenant=tenant)
    assert not ws.preview().changes
    ws = stack_ws("{}")  # replica_count 3 removed: the default is 3, nothing to do
    assert not ws.preview().changes
    up_ok(ws)
    assert live_qos(sim, ctx, ws) == {"total_iops_max": 777}
    assert not stack_ws("{}").preview().changes


def test_kind_api_declare_removed_then_diff_and_update(ctx):
    """Through the kind API: declare_removed writes a removed key at its default (the
    driver's, or datera_volume_type_defaults); diff then shows the change, update applies
    it, and the plain declaration diffs empty against the result."""
    old = VOLUME.spec_from({"name": "vol-api", "size": 2,
                            "extra_specs": {"write_iops_max": 300, "replica_count": 2,
                                            "round_robin": True}})
    made = VOLUME.create(ctx, old)
    assert made.spec.extra_specs["DF:write_iops_max"] == "300"
    new = VOLUME.spec_from({"name": "vol-api", "size": 2,
                            "extra_specs": {"replica_count": 2}})
    assert not VOLUME.diff(made.spec, new).changed  # without the last declaration: blind
    assert VOLUME.declare_removed(new, None) is new
    eff = VOLUME.declare_removed(new, old, ctx.config)
    # round_robin has no DSP state: its removal is not a change
    assert eff.extra_specs == {"DF:replica_count": "2", "DF:write_iops_max": "0"}
    d = VOLUME.diff(made.spec, eff)
    assert d.fields == ("extra_specs",) and not d.replace
    got = VOLUME.update(ctx, made.id, made.spec, eff)
    assert "DF:write_iops_max" not in got.spec.extra_specs
    assert got.spec.extra_specs["DF:replica_count"] == "2"
    assert not VOLUME.diff(got.spec, new).changed
    again = VOLUME.read(ctx, made.id)
    assert again is not None and not VOLUME.diff(again.spec, new).changed
    assert "DF:write_iops_max" not in again.spec.extra_specs


def test_kind_api_removed_key_takes_the_configured_default(sim):
    """With datera_volume_type_defaults, a removed key takes that default, as the driver
    resolves an unset key."""
    from tests.resources.conftest import make_ctx

    c = make_ctx(sim, datera_volume_type_defaults="write_iops_max:50,replica_count:2")
    try:
        last = VOLUME.spec_from({"name": "vol-cfg", "size": 1,
                                 "extra_specs": {"write_iops_max": 400, "replica_count": 4,
                                                 "template": "", "placement_mode": "hybrid"}})
        now = VOLUME.spec_from({"name": "vol-cfg", "size": 1, "extra_specs": {}})
        eff = VOLUME.declare_removed(now, last, c.config)
        # template is left alone: dropping it does not re-create the volume
        assert eff.extra_specs == {"DF:replica_count": "2", "DF:placement_mode": "hybrid",
                                   "DF:write_iops_max": "50"}
    finally:
        c.client.close()


def test_volume_type_removed_key_resets_the_template(sim, ctx, tmp_path, monkeypatch):
    """VolumeType has one typed field per key, so removing one is a field going to None:
    through the engine, a materialized type's template loses the limit and the next plan
    is empty."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    f = tmp_path / "Pulumi.yaml"
    text = """\
name: vtrm
runtime: yaml
resources:
  t:
    type: datera:index:VolumeType
    properties:
      name: silver
      materialize: true
{extra}"""

    def ws_for(extra: str) -> Workspace:
        f.write_text(text.format(extra=extra))
        return Workspace(stack_file=f, endpoint=sim.http_url, embedded=False)

    def template_qos() -> dict[str, Any]:
        tpl = ctx.client.get("/app_templates/silver")
        vt = tpl["storage_templates"][0]["volume_templates"][0]
        return {k: v for k, v in (vt.get("performance_policy") or {}).items()
                if k.endswith("_max") and v}

    ws = ws_for("      writeIopsMax: 700\n")
    up_ok(ws)
    ws.close()
    assert template_qos() == {"write_iops_max": 700}
    ws = ws_for("")
    plan = ws.preview()
    assert [(s.action, [c.name for c in s.changes]) for s in plan.changes] == [
        ("update", ["write_iops_max"])]
    up_ok(ws)
    ws.close()
    assert template_qos() == {}
    ws = ws_for("")
    assert not ws.preview().changes
    ws.close()


def test_engine_import_then_removed_key_is_reset(sim, ctx, stack_ws):
    """A volume imported with `datera-iac import` (no declaration recorded then) gets its
    declaration recorded by the first up that changes nothing, so a key removed afterwards
    is still reset."""
    made = VOLUME.create(ctx, VOLUME.spec_from({
        "name": "vol-qos", "size": 4, "extra_specs": {"write_iops_max": 1000}}))
    ws = stack_ws('{"DF:write_iops_max": 1000}')
    ws.import_resource("v", "datera:index:Volume", made.id)
    assert ws.load_state().resources["v"].declared is None
    plan = up_ok(ws)
    assert not plan.changes
    declared = ws.load_state().resources["v"].declared
    assert declared is not None and declared["extra_specs"] == {"DF:write_iops_max": 1000}
    ws = stack_ws("{}")
    assert [s.action for s in ws.preview().changes] == ["update"]
    up_ok(ws)
    assert live_qos(sim, ctx, ws) == {}
    assert not stack_ws("{}").preview().changes
