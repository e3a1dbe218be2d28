"""Planning and apply rules on an in-memory kind: journal recovery, replacement
strategies, protect/retain/import, failure isolation, secrets, locks, JSON schema."""

import json
import os

import jsonschema
import pytest

from datera_iac.engine.apply import StateStore
from datera_iac.engine.render import plan_json, plan_schema, render_plan
from datera_iac.engine.state import PendingOp
from datera_iac.errors import LockError

STACK = """\
name: toy
runtime: yaml
config:
  size: {type: integer, default: 2}
  zone: {default: a}
resources:
  a:
    type: datera:index:EngineToy
    properties:
      name: alpha
      size: ${size}
      zone: ${zone}
      secret: hunter2
  b:
    type: datera:index:EngineToy
    properties:
      name: beta
      parentId: ${a.id}
  c:
    type: datera:index:EngineToy
    properties:
      name: gamma
outputs:
  a_id: ${a.id}
  token: ${a.token}
"""


def _up(ws, **kw):
    plan, result = ws.up(**kw)
    assert not plan.errors, plan.errors
    return plan, result


def test_second_up_makes_no_writes_and_state_has_no_secret(toy_ws):
    """After up, a second up plans nothing and writes nothing; secrets stay out of state."""
    ws = toy_ws(STACK)
    plan, result = _up(ws)
    assert plan.counts()["create"] == 3 and result.ok
    writes = toy_ws.store.writes
    plan2, _ = _up(toy_ws(STACK))
    assert not plan2.changes and toy_ws.store.writes == writes
    raw = ws.backend().path.read_text()  # .datera-iac/<project>/dev.json
    assert "hunter2" not in raw and "tok-" not in raw
    assert json.loads(raw)["outputs"]["a_id"] == toy_ws.store.objects[ws.load_state().resources["a"].id]["id"]


def test_secret_change_is_an_update_without_showing_it(toy_ws):
    """A changed secret plans an update that prints (sensitive), never the value."""
    _up(toy_ws(STACK))
    plan = toy_ws(STACK.replace("hunter2", "swordfish")).preview()
    [step] = plan.changes
    assert step.action == "update" and [c.name for c in step.changes] == ["secret"]
    text = render_plan(plan) + json.dumps(plan_json(plan))
    assert "swordfish" not in text and "hunter2" not in text and "(sensitive)" in text


def test_drift_refresh_only_and_config_edit(toy_ws):
    """Out-of-band edits show as drift (refresh-only) naming the field; a pending config
    edit alone is no drift; up corrects the DSP."""
    ws = toy_ws(STACK)
    _up(ws)
    assert not toy_ws(STACK.replace("default: 2", "default: 3")).preview(refresh_only=True).has_changes
    aid = ws.load_state().resources["a"].id
    toy_ws.store.objects[aid]["size"] = 9
    drift = toy_ws(STACK).preview(refresh_only=True)
    assert drift.has_changes and [(d.name, d.fields) for d in drift.drift] == [("a", ("size",))]
    plan, result = _up(toy_ws(STACK))
    assert [s.action for s in plan.changes] == ["update"] and toy_ws.store.objects[aid]["size"] == 2


def test_out_of_band_delete_is_recreated_and_destroy_of_vanished_ok(toy_ws):
    """A vanished object is dropped by refresh and re-created; destroy of a vanished one succeeds."""
    ws = toy_ws(STACK)
    _up(ws)
    cid = ws.load_state().resources["c"].id
    del toy_ws.store.objects[cid]
    plan, result = _up(toy_ws(STACK))
    assert [(s.name, s.action) for s in plan.changes] == [("c", "create")] and result.ok
    cid = toy_ws(STACK).load_state().resources["c"].id
    del toy_ws.store.objects[cid]
    plan, result = toy_ws(STACK).up(destroy=True)
    assert result.ok and not toy_ws.store.objects
    assert not toy_ws(STACK).load_state().resources


def test_protect_blocks_destroy_and_replace(toy_ws):
    """A protected resource turns a planned delete or replace into a plan error."""
    prot = STACK.replace("      name: gamma", "      name: gamma\n    options:\n      protect: true")
    _up(toy_ws(prot))
    n = len(toy_ws.store.objects)
    plan, result = toy_ws(prot).up(destroy=True)
    assert result is None and any("protected" in e for e in plan.errors)
    assert len(toy_ws.store.objects) == n
    plan = toy_ws(prot.replace("name: gamma", "name: gamma\n      zone: b")).preview()
    assert any("protected" in e and "'c'" in e for e in plan.errors)


def test_retain_on_delete_forgets(toy_ws):
    """retainOnDelete: leaving the stack drops the object from state but keeps it on the DSP."""
    keep = STACK.replace("      name: gamma", "      name: gamma\n    options:\n      retainOnDelete: true")
    _up(toy_ws(keep))
    plan, result = toy_ws(keep).up(destroy=True)
    assert plan.counts()["forget"] == 1 and result.ok
    assert [o["name"] for o in toy_ws.store.objects.values()] == ["gamma"]


def test_import_adopts_without_writes(toy_ws):
    """options.import adopts the existing object: no create, and the next plan is empty."""
    toy_ws.store.objects["x9"] = {"name": "gamma", "size": 1, "zone": "a", "parent_id": None,
                                  "tags": {}, "id": "x9"}
    imp = STACK.replace("      name: gamma", "      name: gamma\n    options:\n      import: x9")
    plan = toy_ws(imp).preview()
    assert [s.action for s in plan.changes if s.name == "c"] == ["import"]
    _up(toy_ws(imp))
    assert toy_ws.store.calls.get("create") == 2  # a and b only
    assert toy_ws(imp).load_state().resources["c"].id == "x9"
    assert not toy_ws(imp).preview().changes


def test_failure_isolated_dependents_skipped(toy_ws):
    """One failed create: independent ones go on, its dependents are skipped, all reported."""
    toy_ws.store.fail["alpha"] = "create"
    plan, result = toy_ws(STACK).up()
    assert [f.name for f in result.failures] == ["a"] and result.skipped == ["b"]
    names = sorted(o["name"] for o in toy_ws.store.objects.values())
    assert names == ["gamma"]
    del toy_ws.store.fail["alpha"]
    _, result = _up(toy_ws(STACK))
    assert result.ok and len(toy_ws.store.objects) == 3


def test_pending_create_is_resolved_with_find(toy_ws):
    """A create whose intent was journaled but whose result was not (killed run) is found
    on re-run: no twin, state adopts it."""
    ws = toy_ws(STACK)
    backend = ws.backend()
    state = backend.load()
    store = StateStore(backend, state)
    store.commit({"pending_add": [PendingOp(op_id="p1", op="create", name="c", type="datera:index:EngineToy",
                                            spec={"name": "gamma"}).to_json()]})
    backend.close()
    toy_ws.store.objects["o1"] = {"name": "gamma", "size": 1, "zone": "a", "parent_id": None, "tags": {},
                                  "id": "o1"}
    plan, result = _up(toy_ws(STACK))
    assert any("had completed" in n for n in plan.recovered)
    assert sorted(o["name"] for o in toy_ws.store.objects.values()) == ["alpha", "beta", "gamma"]
    st = toy_ws(STACK).load_state()
    assert st.resources["c"].id == "o1" and not st.pending


def test_replace_with_kept_name_uses_temporary_name(toy_ws):
    """Changing a replace field while the (renamable) name stays: create under a temporary
    name, delete the old, rename; one object with the name remains, dependents follow."""
    _up(toy_ws(STACK))
    old_id = toy_ws(STACK).load_state().resources["a"].id
    z = STACK.replace("default: a", "default: b")
    plan = toy_ws(z).preview()
    steps = {s.name: s for s in plan.changes}
    assert steps["a"].action == "replace" and steps["a"].strategy == "temporary-name"
    assert steps["b"].action == "replace"  # its parent_id is known only after apply
    assert "create as 'alpha-replacing'" in render_plan(plan)
    _, result = _up(toy_ws(z))
    assert result.ok, result.failures
    objs = toy_ws.store.objects
    assert sorted(o["name"] for o in objs.values()) == ["alpha", "beta", "gamma"]
    assert old_id not in objs
    st = toy_ws(z).load_state()
    assert objs[st.resources["b"].id]["parent_id"] == st.resources["a"].id
    assert not st.deposed and not toy_ws(z).preview().changes


def test_lock_refused_names_holder_and_force_unlock(toy_ws):
    """A held lock refuses a second run with the holder's pid and host; force-unlock breaks it."""
    ws = toy_ws(STACK)
    with ws.locked():
        with pytest.raises(LockError) as e:
            toy_ws(STACK).up()
        assert f"pid {os.getpid()}" in str(e.value) and "--force-unlock" in str(e.value)
        assert e.value.holder["pid"] == os.getpid()
    _up(toy_ws(STACK))  # released


def test_a_refusal_in_the_holders_first_instant_still_names_it(tmp_path):
    """The holder takes the lock, then writes its details: a run refused in between waits
    briefly for them instead of reporting "an unknown holder" (seen under load in the
    concurrent-runs fault test)."""
    import fcntl
    import threading

    from datera_iac.engine.backends import FileBackend

    first = FileBackend(tmp_path, "dev")
    first.dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(first.lock_path), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, details not written yet
    late = threading.Timer(0.2, lambda: os.pwrite(fd, json.dumps(
        {"pid": 4242, "host": "elsewhere", "command": "up"}).encode(), 0))
    late.start()
    try:
        with pytest.raises(LockError) as e:
            FileBackend(tmp_path, "dev").lock({"pid": os.getpid()})
        assert "pid 4242" in str(e.value)
    finally:
        late.join()
        os.close(fd)


def test_torn_journal_tail_is_ignored(toy_ws):
    """A half-written last journal record (crash mid-write) does not break loading."""
    ws = toy_ws(STACK)
    _up(ws)
    j = ws.backend().journal_path
    with open(j, "ab") as f:
        f.write(b'{"seq": 99, "upsert": [{"na')
    st = ws.load_state()
    assert set(st.resources) == {"a", "b", "c"}


def test_json_plan_matches_schema(toy_ws):
    """preview --json output validates against the shipped plan.schema.json, for every mode."""
    schema = plan_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    p1 = toy_ws(STACK).preview()
    jsonschema.validate(plan_json(p1), schema)
    _up(toy_ws(STACK))
    toy_ws.store.objects[toy_ws(STACK).load_state().resources["a"].id]["size"] = 7
    for plan in (toy_ws(STACK).preview(refresh_only=True), toy_ws(STACK).preview(destroy=True),
                 toy_ws(STACK.replace("default: a", "default: b")).preview()):
        doc = plan_json(plan)
        jsonschema.validate(doc, schema)
    assert {a["action"] for a in plan_json(toy_ws(STACK).preview(destroy=True))["actions"]} == {"delete"}


def test_dead_local_holder_lock_is_taken_over(toy_ws):
    """A run killed while holding the file lock does not block the next one: the kernel
    drops its flock, and the new run notes whose lock it took over."""
    import signal
    import subprocess
    import sys

    ws = toy_ws(STACK)
    ws.backend().dir.mkdir(parents=True, exist_ok=True)
    code = ("import sys, time; from datera_iac.engine.backends import FileBackend;"
            "b = FileBackend(sys.argv[1], 'dev'); b.lock({'pid': 999999, 'host': 'elsewhere', 'command': 'up'});"
            "print('locked', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(ws.backend().dir)], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == b"locked"
        with pytest.raises(LockError) as e:
            toy_ws(STACK).up()
        assert "pid 999999" in str(e.value) and "elsewhere" in str(e.value)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    ws2 = toy_ws(STACK)
    plan, result = ws2.up()
    assert result.ok
    assert any("took over the lock" in n and "999999" in n for n in ws2.notes)


def test_toggling_protect_is_recorded_without_dsp_writes(toy_ws):
    """Adding then removing protect changes only the state; destroy follows the latest."""
    prot = STACK.replace("      name: gamma", "      name: gamma\n    options:\n      protect: true")
    _up(toy_ws(STACK))
    writes = toy_ws.store.writes
    _up(toy_ws(prot))
    assert toy_ws(prot).load_state().resources["c"].protect and toy_ws.store.writes == writes
    plan, _ = toy_ws(prot).up(destroy=True)
    assert plan.errors
    _up(toy_ws(STACK))
    assert not toy_ws(STACK).load_state().resources["c"].protect
    plan, result = toy_ws(STACK).up(destroy=True)
    assert result.ok and not toy_ws.store.objects


def test_import_that_would_need_replacement_is_a_plan_error(toy_ws):
    """Importing an object whose replace-only fields differ from the declaration fails at plan."""
    toy_ws.store.objects["x9"] = {"name": "gamma", "size": 1, "zone": "z", "parent_id": None,
                                  "tags": {}, "id": "x9"}
    imp = STACK.replace("      name: gamma", "      name: gamma\n    options:\n      import: x9")
    plan = toy_ws(imp).preview()
    assert any("cannot change in place: zone" in e and "'c'" in e for e in plan.errors)


def test_import_whose_object_changed_after_the_plan_is_refused_at_apply(toy_ws):
    """The same refusal at apply, when the object changed after the plan (here between the
    plan and its confirmation): the import is recorded, nothing is written to the object,
    and the core's message names the field."""
    toy_ws.store.objects["x9"] = {"name": "gamma", "size": 1, "zone": "a", "parent_id": None,
                                  "tags": {}, "id": "x9"}
    imp = STACK.replace("      name: gamma", "      name: gamma\n    options:\n      import: x9")

    def confirm(plan):
        toy_ws.store.objects["x9"]["zone"] = "z"
        return True

    plan, result = toy_ws(imp).up(confirm=confirm)
    assert not plan.errors and [s.action for s in plan.steps if s.name == "c"] == ["import"]
    [failure] = result.failures
    assert failure.name == "c" and "the object to import (x9) differs in fields that cannot " \
        "change in place: zone" in failure.message, failure
    assert toy_ws.store.objects["x9"]["zone"] == "z" and toy_ws.store.calls.get("update") is None
    assert toy_ws(imp).load_state().resources["c"].id == "x9"


def test_interrupted_temporary_name_replacement_completes_on_rerun(toy_ws):
    """If the old object cannot be deleted mid-replacement, the new one keeps its temporary
    name; the next run deletes the old one first, then renames: one object per name."""
    _up(toy_ws(STACK))
    old_id = toy_ws(STACK).load_state().resources["a"].id
    z = STACK.replace("default: a", "default: b")
    toy_ws.store.fail_delete.add(old_id)
    _, result = toy_ws(z).up()
    assert [f.name for f in result.failures] == ["a"]
    st = toy_ws(z).load_state()
    assert st.resources["a"].temp_name == "alpha-replacing" and [r.id for r in st.deposed] == [old_id]
    plan = toy_ws(z).preview()
    assert {s.name: s.action for s in plan.changes if not s.deposed}["a"] == "update"
    toy_ws.store.fail_delete.clear()
    _, result = _up(toy_ws(z))
    assert result.ok, result.failures
    names = sorted(o["name"] for o in toy_ws.store.objects.values())
    assert names == ["alpha", "beta", "gamma"] and old_id not in toy_ws.store.objects
    st = toy_ws(z).load_state()
    assert not st.deposed and st.resources["a"].temp_name is None
    assert not toy_ws(z).preview().changes


def test_ignore_changes_and_delete_before_replace_options(toy_ws):
    """ignoreChanges hides differences in the listed properties; deleteBeforeReplace makes a
    replacement delete first."""
    opts = STACK.replace("      secret: hunter2", "      secret: hunter2\n    options:\n"
                         "      ignoreChanges: [size]\n      deleteBeforeReplace: true")
    _up(toy_ws(opts))
    aid = toy_ws(opts).load_state().resources["a"].id
    toy_ws.store.objects[aid]["size"] = 9
    assert not [s for s in toy_ws(opts.replace("default: 2", "default: 4")).preview().changes if s.name == "a"]
    plan = toy_ws(opts.replace("default: a", "default: b")).preview()
    step = next(s for s in plan.changes if s.name == "a")
    assert step.action == "replace" and step.strategy == "delete-before-create"


def test_unresolvable_intent_is_kept_and_state_rm_drops_it(toy_ws):
    """An intent whose spec no longer validates is kept (never silently dropped) with a note
    saying what to do; `state rm` drops it."""
    ws = toy_ws(STACK)
    backend = ws.backend()
    store = StateStore(backend, backend.load())
    store.commit({"pending_add": [PendingOp(op_id="bad", op="create", name="gone",
                                            type="datera:index:EngineToy", spec={"name": "X!"}).to_json()]})
    backend.close()
    plan, result = toy_ws(STACK).up()
    assert result.ok and any("state rm gone" in n for n in plan.recovered)
    assert "bad" in toy_ws(STACK).load_state().pending
    toy_ws(STACK).state_rm(["gone"])
    assert not toy_ws(STACK).load_state().pending
