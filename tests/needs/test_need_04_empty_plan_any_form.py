"""user-needs §2.4: an empty plan after apply, after import and after refresh, whatever
form the user wrote.

Acceptance (engine, and the Pulumi provider's diff): apply a stack written one way, then
plan it written another way → no change and exit 0: a volume type by id vs by name, a size
as an integer, a string, "10GiB" or in bytes, a tenant as ``x`` vs ``/root/x``, DF: keys
with or without the prefix and values as numbers or strings. The same after ``refresh`` and
after an import. Every example stack's apply-then-plan-clean is
tests/engine/test_examples_cli.py::test_examples_apply_then_plan_clean (engine) and
tests/terraform/test_examples.py (Terraform ``-detailed-exitcode`` 0).
"""

from __future__ import annotations

import pytest
from needkit import configure, engine_ws, writes_of

from datera_iac.cli import main

FORM_A = """\
name: need04
runtime: yaml
resources:
  t:
    type: datera:index:Tenant
    properties:
      name: team-x
  gold:
    type: datera:index:VolumeType
    properties:
      name: gold
      materialize: true
      replicaCount: 2
      totalIopsMax: 800
  v:
    type: datera:index:Volume
    properties:
      name: form-vol
      size: 10
      tenant: ${t.name}
      volumeType: ${gold.name}
      extraSpecs:
        replica_count: 2
        total_iops_max: "800"
"""

FORMS_B = {
    "type-by-id, /root/x, size string with unit, DF: prefix": {
        "size: 10": 'size: "10GiB"', "tenant: ${t.name}": "tenant: /root/team-x",
        "volumeType: ${gold.name}": "volumeType: ${gold.id}",
        "replica_count: 2": '"DF:replica_count": "2"',
        'total_iops_max: "800"': '"DF:total_iops_max": 800'},
    "size in bytes, tenant path with trailing slash": {
        "size: 10": 'size: "10737418240B"', "tenant: ${t.name}": "tenant: root/team-x/"},
    "size as a digit string": {"size: 10": 'size: "10"'},
}


def _rewrite(text: str, edits: dict[str, str]) -> str:
    for a, b in edits.items():
        assert a in text, a
        text = text.replace(a, b)
    return text


@pytest.mark.parametrize("form", list(FORMS_B))
def test_apply_one_form_plan_another_is_empty(sim, tmp_path, capsys, monkeypatch, form):
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    ws = engine_ws(sim, tmp_path / "s", FORM_A)
    _, result = ws.up()
    assert result.ok, result.failures
    text_b = _rewrite(FORM_A, FORMS_B[form])
    before = writes_of(sim)
    plan = engine_ws(sim, tmp_path / "s", text_b).preview()
    assert not plan.errors and not plan.changes and not plan.drift, [
        (s.name, s.action, s.changes) for s in plan.changes]
    # after refresh, still nothing
    engine_ws(sim, tmp_path / "s", text_b).refresh()
    assert not engine_ws(sim, tmp_path / "s", text_b).preview().changes
    assert engine_ws(sim, tmp_path / "s", FORM_A).preview().changes == []
    # the CLI's exit code (written form B): 0
    f = tmp_path / "s" / "Pulumi.yaml"
    f.write_text(text_b)
    capsys.readouterr()
    assert main(["preview", "-f", str(f), "--endpoint", sim.http_url, "--detailed-exitcode"]) == 0
    assert writes_of(sim) == before


def test_import_then_plan_is_empty_in_another_form(sim, tmp_path, dsp):
    """A volume made outside the stack (by name, in a tenant, with a type) imported by a
    declaration written in the other forms plans nothing after the import."""
    ws = engine_ws(sim, tmp_path / "made", FORM_A)
    assert ws.up()[1].ok
    vid = ws.load_state().resources["v"].id
    tid = ws.load_state().resources["t"].id
    gid = ws.load_state().resources["gold"].id
    text = _rewrite(FORM_A, FORMS_B["type-by-id, /root/x, size string with unit, DF: prefix"])
    for type_, oid in (("Tenant", tid), ("VolumeType", gid), ("Volume", vid)):
        line = f"    type: datera:index:{type_}\n"
        text = text.replace(line, f"{line}    options:\n      import: {oid}\n", 1)
    imp = engine_ws(sim, tmp_path / "imported", text)
    plan, result = imp.up()
    assert not plan.errors and result.ok, (plan.errors, result.failures)
    assert {s.action for s in plan.changes} == {"import"}
    assert not engine_ws(sim, tmp_path / "imported", text).preview().changes


def test_pulumi_diff_is_empty_across_forms(plugin, sim):
    from pulumi.runtime.proto import provider_pb2 as pb

    from datera_iac.pulumi.testing import plain

    V = "datera:index:Volume"
    configure(plugin, sim)
    plugin.create("datera:index:Tenant", "team-p", plain(plugin.check(
        "datera:index:Tenant", "team-p", {"name": "team-p"}).inputs))
    a = plain(plugin.check(V, "form-p", {"size": 10, "tenant": "team-p",
                                         "extraSpecs": {"replica_count": "2"}}).inputs)
    made = plugin.create(V, "form-p", a)
    state = plain(made.properties)
    b = plain(plugin.check(V, "form-p", {"size": 10, "tenant": "/root/team-p",
                                         "extraSpecs": {"DF:replica_count": "2"}}, a).inputs)
    assert plugin.diff(V, "form-p", made.id, state, b).changes == pb.DiffResponse.DIFF_NONE
    # refresh (Read) then diff: still none
    read = plugin.read(V, "form-p", made.id, state, a)
    assert plugin.diff(V, "form-p", made.id, plain(read.properties), b).changes \
        == pb.DiffResponse.DIFF_NONE
