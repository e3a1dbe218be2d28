"""user-needs §2.13: replacement that respects unique names and never deletes the live object.

Acceptance: changing what cannot change in place on a named volume (here: lowering its
replica count with ``replaceOnRetype: true``; same tenant, same name) plans a replace whose strategy is stated in the plan
(temporary name, or delete first); the apply leaves exactly one volume with that name (the engine's toy tests check the
temporary-name sequence step by step: tests/engine/test_engine_toy.py). A create that answers "already exists" (a
volume of that name made by someone else) fails naming the fix and never deletes the
existing object.
"""

from __future__ import annotations

from needkit import app_instances, delta, engine_ws, writes_of

STACK = """\
name: need13
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: named-vol
      size: 2
      replaceOnRetype: true
      extraSpecs:
        replica_count: {rc}
"""


def test_replace_of_a_named_volume_leaves_one(sim, dsp, tmp_path):
    ws = lambda rc=3: engine_ws(sim, tmp_path / "s", STACK.format(rc=rc))
    assert ws().up()[1].ok
    [old] = app_instances(dsp)
    changed = 2
    plan = ws(changed).preview()
    [step] = [s for s in plan.changes if s.name == "v"]
    assert step.action == "replace" and step.strategy in ("temporary-name", "delete-before-create")
    if step.strategy == "temporary-name":
        assert step.temp_name and step.temp_name != "named-vol"
    _, result = ws(changed).up()
    assert result.ok, result.failures
    ais = app_instances(dsp)
    assert [a["name"] for a in ais] == ["named-vol"] and ais[0]["id"] != old["id"]
    assert ais[0]["storage_instances"][0]["volumes"][0]["replica_count"] == 2
    assert not ws(changed).preview().changes


def test_create_that_finds_the_name_taken_never_deletes_it(sim, dsp, tmp_path):
    theirs = dsp.post("/app_instances", {"name": "named-vol", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 5, "replica_count": 3}]}]})
    before = writes_of(sim)
    _, result = engine_ws(sim, tmp_path / "s", STACK.format(rc=3)).up()
    assert result is not None and not result.ok
    msg = " ".join(map(str, result.failures.values() if isinstance(result.failures, dict)
                       else result.failures))
    assert "already exists" in msg and "import" in msg
    sent = delta(writes_of(sim), before)
    assert not any(k.startswith("DELETE") for k in sent), sent
    assert [(a["id"], a["name"]) for a in app_instances(dsp)] == [(theirs["id"], "named-vol")]
    assert "v" not in engine_ws(sim, tmp_path / "s", STACK.format(rc=3)).load_state().resources
    # and a destroy of this stack leaves their volume alone
    plan, result = engine_ws(sim, tmp_path / "s", STACK.format(rc=3)).up(destroy=True)
    assert not plan.errors
    assert [a["id"] for a in app_instances(dsp)] == [theirs["id"]]
