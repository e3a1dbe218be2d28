"""The engine against the simulator over real HTTP, with the real kinds: idempotence,
drift, out-of-band deletion, protect, import, locks, and the CLI's exit codes."""

import json
import threading

import jsonschema
import pytest

from datera_iac.cli import main
from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.engine.render import plan_schema
from datera_iac.errors import LockError


def client_for(sim):
    return DspClient(DateraConfig.from_mapping(
        {"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"}))


def app_instances(sim, tenant="/root/team-a"):
    c = client_for(sim)
    try:
        return list(c.list("/app_instances", tenant=tenant))
    finally:
        c.close()


def test_second_up_makes_no_write_calls(sim, sim_ws, writes, sim_stack):
    """up creates everything; a second up plans nothing and sends 0 write requests."""
    plan, result = sim_ws().up()
    assert not plan.errors and result.ok, (plan.errors, result.failures)
    assert plan.counts()["create"] == 5
    assert sorted(a["name"] for a in app_instances(sim)) == ["vol-one", "vol-two"]
    before = writes()
    plan2, _ = sim_ws().up()
    assert not plan2.changes and not plan2.drift
    assert writes() == before


def test_out_of_band_change_preview_exit_2_then_up_corrects(sim, sim_ws, writes, sim_stack, capsys):
    """A rename on the DSP shows as drift naming the attribute, preview exits 2, up fixes it."""
    ws = sim_ws()
    ws.up()
    vid = ws.load_state().resources["v2"].id
    ai_id = vid.rsplit("/", 1)[1]
    c = client_for(sim)
    c.put(f"/app_instances/{ai_id}", {"name": "renamed-out-of-band"}, tenant="/root/team-a")
    f = str(ws.stack_file)
    assert main(["preview", "-f", f, "--endpoint", sim.http_url, "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert "v2" in out and "name" in out and "update" in out
    assert main(["preview", "-f", f, "--endpoint", sim.http_url, "--refresh-only",
                 "--detailed-exitcode", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, plan_schema())
    assert [(d["name"], d["fields"]) for d in doc["drift"]] == [("v2", ["name"])]
    assert main(["up", "-f", f, "--endpoint", sim.http_url, "--yes"]) == 0
    assert "vol-two" in [a["name"] for a in app_instances(sim)]
    capsys.readouterr()
    assert main(["preview", "-f", f, "--endpoint", sim.http_url, "--detailed-exitcode"]) == 0
    c.close()


def test_pending_config_edit_is_not_drift(sim, sim_ws, writes, sim_stack, capsys):
    """--refresh-only exits 0 for a config edit that is not applied yet; a normal preview exits 2."""
    ws = sim_ws()
    ws.up()
    f = str(ws.stack_file)
    args = ["-f", f, "--endpoint", sim.http_url, "--detailed-exitcode", "-c", "size=3"]
    assert main(["preview", "--refresh-only", *args]) == 0
    assert main(["preview", *args]) == 2
    assert "size 2 -> 3" in capsys.readouterr().out


def test_out_of_band_delete_is_recreated_and_destroy_exits_0(sim, sim_ws, writes, sim_stack):
    """A volume deleted on the DSP is planned as 1 create and re-created; destroying a
    stack whose objects vanished succeeds."""
    ws = sim_ws()
    ws.up()
    vid = ws.load_state().resources["v2"].id
    c = client_for(sim)
    ai = vid.rsplit("/", 1)[1]
    c.put(f"/app_instances/{ai}", {"admin_state": "offline"}, tenant="/root/team-a")
    c.delete(f"/app_instances/{ai}", tenant="/root/team-a")
    plan = sim_ws().preview()
    assert [(s.name, s.action) for s in plan.changes] == [("v2", "create")] and not plan.errors
    _, result = sim_ws().up()
    assert result.ok and sorted(a["name"] for a in app_instances(sim)) == ["vol-one", "vol-two"]
    for a in app_instances(sim):
        c.put(f"/app_instances/{a['id']}", {"admin_state": "offline"}, tenant="/root/team-a")
        c.delete(f"/app_instances/{a['id']}", tenant="/root/team-a")
    plan, result = sim_ws().up(destroy=True)
    assert not plan.errors and result is not None and result.ok, result.failures if result else plan.errors
    assert not sim_ws().load_state().resources
    c.close()


def test_protect_blocks_destroy(sim, sim_ws, writes, sim_stack, capsys):
    """A protected volume makes destroy a plan error (exit 1) and nothing is deleted."""
    text = sim_stack.replace("      name: vol-two\n", "      name: vol-two\n") + ""
    text = text.replace("  snap:\n", "  snap:\n").replace(
        "      tenant: ${team.id}\n  snap:", "      tenant: ${team.id}\n    options:\n      protect: true\n  snap:")
    ws = sim_ws(text)
    ws.up()
    before = writes()
    assert main(["destroy", "-f", str(ws.stack_file), "--endpoint", sim.http_url, "--yes"]) == 1
    assert "protected" in capsys.readouterr().out
    assert writes() == before and len(app_instances(sim)) == 2


def test_import_adopts_without_writes(sim, sim_ws, writes, sim_stack, capsys):
    """A volume made outside the stack is adopted by options.import with no write request,
    and the next plan is empty."""
    ws = sim_ws()
    ws.up()
    c = client_for(sim)
    from datera_iac.resources.base import Context, kind_for

    vol = kind_for("Volume")
    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"})
    made = vol.create(Context(client=c, config=cfg), vol.spec_from({"name": "legacy", "size": 3,
                                                                     "tenant": "team-a"}))
    text = sim_stack.replace("outputs:", "  legacy:\n    type: datera:index:Volume\n    properties:\n"
                             "      name: legacy\n      size: 3\n      tenant: team-a\n"
                             f"    options:\n      import: {made.id}\noutputs:")
    before = writes()
    plan, result = sim_ws(text).up()
    assert [(s.name, s.action) for s in plan.changes] == [("legacy", "import")] and result.ok
    assert writes() == before
    assert sim_ws(text).load_state().resources["legacy"].id == made.id
    assert not sim_ws(text).preview().changes
    # the CLI import command adopts into state, also without writes
    assert main(["import", "-f", str(ws.stack_file), "--endpoint", sim.http_url,
                 "Volume", "other", made.id]) == 0
    assert writes() == before
    c.close()


def test_concurrent_up_is_refused_naming_the_holder(sim, sim_ws, writes, sim_stack):
    """While one up applies (slow DSP), a second up on the same stack fails with a
    LockError naming the holder's pid and host; the first one completes."""
    sim.set_faults(latency_ms=100)
    first = sim_ws()
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            first.up()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            done.set()

    t = threading.Thread(target=run)
    t.start()
    lock = first.backend().lock_path
    for _ in range(1000):
        if lock.exists() and lock.read_text():
            break
        done.wait(0.02)
    with pytest.raises(LockError) as e:
        sim_ws().up()
    import os
    import socket

    assert f"pid {os.getpid()}" in str(e.value) and socket.gethostname() in str(e.value)
    t.join(30)
    sim.set_faults(latency_ms=0)
    assert not errors and not sim_ws().preview().changes


def test_up_on_a_tty_asks_and_no_means_no_writes(sim, sim_ws, writes, sim_stack, capsys, monkeypatch):
    """On a TTY without --yes, up shows the plan and asks; answering no changes nothing."""
    import sys

    import click

    ws = sim_ws()
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    asked: list[str] = []
    monkeypatch.setattr(click, "confirm", lambda text, default=False: asked.append(text) or False)
    before = writes()
    assert main(["up", "-f", str(ws.stack_file), "--endpoint", sim.http_url]) == 1
    out = capsys.readouterr()
    assert asked and "5 to create" in out.out and "Cancelled" in out.err
    assert writes() == before and not sim_ws().load_state().resources


def test_replace_keeps_one_volume_per_name(sim, sim_ws, sim_stack):
    """Moving a volume to another tenant replaces it without ever having two live volumes
    of that name (the kind's diff asks for delete-before-create; the plan says so); its
    snapshot follows. The old volume's snapshot goes with it, so the move needs the
    volume's ``cascade`` (issue 16 case 5: without it the plan is refused, naming it)."""
    ws = sim_ws()
    ws.up()
    old_id = ws.load_state().resources["v1"].id
    moved = sim_stack.replace("  v1:\n    type: datera:index:Volume\n    properties:\n      name: vol-one\n"
                              "      size: ${size}\n      tenant: ${team.id}",
                              "  v1:\n    type: datera:index:Volume\n    properties:\n      name: vol-one\n"
                              "      size: ${size}\n      tenant: /root")
    assert moved != sim_stack
    refused = sim_ws(moved).preview()
    assert any("Snapshot" in e and "cascade: true" in e for e in refused.errors), refused.errors
    moved = moved.replace("      tenant: /root", "      tenant: /root\n      cascade: true")
    plan = sim_ws(moved).preview()
    steps = {s.name: s for s in plan.changes}
    assert steps["v1"].action == "replace" and steps["v1"].strategy == "delete-before-create"
    assert steps["snap"].action == "replace"
    plan, result = sim_ws(moved).up()
    assert result.ok, result.failures
    st = sim_ws(moved).load_state()
    assert st.resources["v1"].id != old_id and st.resources["v1"].id.startswith("/root/")
    assert [a["name"] for a in app_instances(sim, "/root")] == ["vol-one"]
    assert sorted(a["name"] for a in app_instances(sim)) == ["vol-two"]
    assert not st.deposed and not sim_ws(moved).preview().changes


_CHAP_VOL = """\
name: chapvol
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: chap-vol
      size: 1
{chap}"""


def test_volume_chap_removed_from_the_declaration_goes_off(sim, sim_ws):
    """chap_user declared, then removed from the declaration: the plan shows the change and
    up turns CHAP off (the last declaration makes the removal explicit); a declaration
    that never named CHAP leaves the volume's CHAP alone (a NodeAttachment may have set
    it: tests/node/test_attachment.py::test_attachment_chap_survives_its_volume_in_one_stack)."""
    dsp = client_for(sim)

    def auth() -> str:
        [ai] = list(dsp.list("/app_instances", tenant="/root"))
        return ai["storage_instances"][0]["auth"]["type"]

    with_chap = _CHAP_VOL.format(chap="      chapUser: chapuser\n"
                                      "      chapSecret: Right-Secret-01\n")
    assert sim_ws(with_chap).up()[1].ok
    assert auth() == "chap" and not sim_ws(with_chap).preview().changes
    [step] = sim_ws(_CHAP_VOL.format(chap="")).preview().changes
    assert step.action == "update" and "chap_user" in [c.name for c in step.changes]
    assert sim_ws(_CHAP_VOL.format(chap="")).up()[1].ok
    assert auth() == "none" and not sim_ws(_CHAP_VOL.format(chap="")).preview().changes
    # CHAP set out of band on a volume whose declaration never named it: left alone
    [ai] = list(dsp.list("/app_instances", tenant="/root"))
    dsp.put(f"/app_instances/{ai['id']}/storage_instances/storage-1/auth",
            {"type": "chap", "target_user_name": "other", "target_pswd": "Other-Secret-1"})
    assert not sim_ws(_CHAP_VOL.format(chap="")).preview().changes
    dsp.close()
