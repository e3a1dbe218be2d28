"""Data safety (issue 16): a run touches only what its state owns, on the DSP that state
belongs to, and only with consent. Each test names the numbered case it reproduces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from datera_iac.cli import main
from datera_iac.engine.backends import FileBackend, check_stack_name
from datera_iac.errors import InputError, LockError

ROOT = Path(__file__).resolve().parents[2]

ONE_VOLUME = textwrap.dedent("""\
    name: shop
    runtime: yaml
    resources:
      vol:
        type: datera:index:Volume
        properties:
          name: safety-vol
          size: 1
    """)


def writes(sim) -> int:
    """Write requests (POST/PUT/DELETE under /v2.x, logins excepted) served so far."""
    return sum(n for k, n in sim.counters().items()
               if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH") and "/v2." in k
               and "login" not in k)


@pytest.fixture
def dsp_env(monkeypatch, sim):
    for k in list(os.environ):
        if k.startswith("DATERA_"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    return sim


@pytest.fixture
def stack_dir(tmp_path, monkeypatch):
    (tmp_path / "Pulumi.yaml").write_text(ONE_VOLUME)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---- case 3: no --yes and no TTY on stdin ------------------------------------------------


def test_case3_destroy_and_up_without_yes_on_a_pipe_refuse(dsp_env, stack_dir, capsys):
    """`destroy` / `up` with no --yes and stdin not a terminal refuse with rc 1, name the
    flag, and write nothing to the DSP."""
    sim = dsp_env
    ep = ["--endpoint", sim.http_url]
    assert not sys.stdin.isatty()
    rc = main(["up", *ep])
    err = capsys.readouterr().err
    assert rc == 1 and "datera-iac up --yes" in err and "stdin is not a terminal" in err
    assert writes(sim) == 0 and sim.summary().get("app_instances", 0) == 0
    assert main(["up", "--yes", *ep]) == 0
    capsys.readouterr()
    before = writes(sim)
    rc = main(["destroy", *ep])
    err = capsys.readouterr().err
    assert rc == 1 and "datera-iac destroy --yes" in err
    assert writes(sim) == before and sim.summary()["app_instances"] == 1
    # with the flag it goes ahead
    assert main(["destroy", "--yes", *ep]) == 0
    assert sim.summary().get("app_instances", 0) == 0


def test_case3_cli_subprocess_with_devnull_stdin(dsp_env, stack_dir):
    """The same through the console entry point with stdin from /dev/null (a CI job)."""
    sim = dsp_env
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "datera_iac.cli", "up", "--endpoint", sim.http_url],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "--yes" in p.stderr and "Traceback" not in p.stderr
    assert writes(sim) == 0


# ---- case 8: stack names ------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../../x", "/tmp/abs", "a/b", "x" * 300, "a\nb", ".", "..", ""])
def test_case8_bad_stack_names_refused_without_traceback(dsp_env, stack_dir, capsys, bad):
    rc = main(["preview", "-s", bad, "--endpoint", dsp_env.http_url])
    out = capsys.readouterr()
    assert rc == 2 and "invalid stack name" in out.err and "Traceback" not in out.err
    assert not any(p.name != "Pulumi.yaml" for p in stack_dir.iterdir())
    assert not (stack_dir.parent.parent / "x.json").exists()


def test_case8_stack_name_rule_in_the_backend_too(tmp_path):
    for bad in ("../x", "a/b", "x" * 101, ".", "..", "a b", "é"):
        with pytest.raises(InputError):
            FileBackend(tmp_path, bad)
    assert check_stack_name("prod-1.eu_west") == "prod-1.eu_west"
    assert check_stack_name("x" * 100)


def test_case8_new_stack_announced_in_plan_header(dsp_env, stack_dir, capsys):
    """A typo in -s shows up front: the plan header says the stack is new (no state) and
    which DSP the run talks to, on stdout."""
    ep = ["--endpoint", dsp_env.http_url]
    assert main(["up", "--yes", *ep]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("Stack dev (new stack: no state yet) on the DSP at ")
    assert main(["preview", *ep]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"Stack dev on the DSP at {dsp_env.http_url.rstrip('/')}" or \
        (out.startswith("Stack dev on the DSP at ") and "new stack" not in out.splitlines()[0])
    assert main(["preview", "-s", "dve", *ep]) == 0
    assert "Stack dve (new stack: no state yet)" in capsys.readouterr().out
    assert main(["preview", "--json", "-s", "dve", *ep]) == 0
    assert json.loads(capsys.readouterr().out)["new_stack"] is True


# ---- case 7: --force-unlock of a live holder -------------------------------------------


_HOLDER = textwrap.dedent("""\
    import sys, time
    from datera_iac.engine.backends import FileBackend
    from datera_iac.engine.state import holder_info
    b = FileBackend(sys.argv[1], "dev")
    info = holder_info("up")
    b.lock(info)
    print(info["lock_id"], flush=True)
    sys.stdin.readline()          # hold until told
    try:
        b.record({"outputs": {"x": 1}})
        print("wrote", flush=True)
    except Exception as e:
        print("refused:", type(e).__name__, flush=True)
    """)


def _holder(state_dir: Path):
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(state_dir)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    lock_id = p.stdout.readline().strip()
    assert lock_id, "holder did not start"
    return p, lock_id


def test_case7_force_unlock_refuses_a_live_holder_on_this_host(tmp_path):
    state_dir = tmp_path / ".datera-iac"
    p, lock_id = _holder(state_dir)
    try:
        with pytest.raises(LockError) as e:
            FileBackend(state_dir, "dev").force_unlock()
        assert f"--lock-id {lock_id}" in str(e.value) and "still running" in str(e.value)
        with pytest.raises(LockError):
            FileBackend(state_dir, "dev").force_unlock("not-the-id")
        # the lock is intact: another run is still refused
        with pytest.raises(LockError):
            FileBackend(state_dir, "dev").lock({"pid": 1})
        # with the id the holder named, the lock is broken, and the holder is fenced:
        # its next write is refused, so two runs never both write one state
        assert FileBackend(state_dir, "dev").force_unlock(lock_id)["lock_id"] == lock_id
        mine = FileBackend(state_dir, "dev")
        mine.lock({"pid": os.getpid()})
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "refused: LockError"
        mine.close()
    finally:
        p.kill()
        p.wait()


def test_case7_cli_force_unlock_names_the_lock_id(dsp_env, stack_dir, capsys):
    p, lock_id = _holder(stack_dir / ".datera-iac" / "shop")
    try:
        before = writes(dsp_env)
        rc = main(["up", "--yes", "--force-unlock", "--endpoint", dsp_env.http_url])
        err = capsys.readouterr().err
        assert rc == 1 and f"--lock-id {lock_id}" in err and "Traceback" not in err
        assert main(["state", "unlock"]) == 1
        assert lock_id in capsys.readouterr().err
        assert writes(dsp_env) == before
    finally:
        p.kill()
        p.wait()
    # a dead holder's lock needs no id (the kernel released it)
    assert main(["up", "--yes", "--force-unlock", "--endpoint", dsp_env.http_url]) == 0


def test_case7_dead_holder_lock_breaks_without_id(tmp_path):
    state_dir = tmp_path / ".datera-iac"
    p, lock_id = _holder(state_dir)
    p.kill()
    p.wait()
    deadline = time.monotonic() + 5
    b = FileBackend(state_dir, "dev")
    while b._held() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.force_unlock()["lock_id"] == lock_id


# ---- case 1: which DSP a state belongs to ------------------------------------------------


def _no_dsp(monkeypatch):
    for k in ("DATERA_ENDPOINT", "DATERA_SAN_IP"):
        monkeypatch.delenv(k, raising=False)


def test_case1_real_dsp_state_run_without_endpoint_refuses(dsp_env, stack_dir, capsys, monkeypatch):
    """A stack deployed to a DSP, run once without the endpoint (a new shell, a CI job
    missing DATERA_ENDPOINT): refused before any read or write, naming the DSP and how to
    proceed - never a silent switch to the bundled simulator."""
    sim = dsp_env
    assert main(["up", "--yes", "--endpoint", sim.http_url]) == 0
    capsys.readouterr()
    state_file = next(stack_dir.glob(".datera-iac/*/dev.json"))
    st = json.loads(state_file.read_text())
    assert st["dsp"]["endpoint"] == sim.http_url.rstrip("/") and st["dsp"]["uuid"]
    before, saved = writes(sim), state_file.read_text()
    _no_dsp(monkeypatch)
    for cmd in (["up", "--yes"], ["preview"], ["destroy", "--yes"], ["refresh"]):
        rc = main(cmd)
        err = capsys.readouterr().err
        assert rc == 1, cmd
        assert f"the DSP at {sim.http_url.rstrip('/')}" in err and st["dsp"]["uuid"] in err
        assert "no DSP is configured" in err and "DATERA_ENDPOINT=" in err
        assert "state reassign-dsp" in err and "Traceback" not in err
    assert writes(sim) == before and state_file.read_text() == saved
    assert not (stack_dir / ".datera-iac" / "dsp-sim").exists()  # no simulator was started


def test_case1_simulator_state_run_with_endpoint_refuses(dsp_env, stack_dir, capsys, monkeypatch):
    """The reverse: a stack on the bundled simulator, run with --endpoint, refuses; the
    plan header says on stdout that the simulator is used."""
    sim = dsp_env
    _no_dsp(monkeypatch)
    assert main(["up", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "on the bundled simulator (data in" in out.splitlines()[0]
    assert json.loads(next(stack_dir.glob(".datera-iac/*/dev.json")).read_text())["dsp"] == \
        {"simulator": True}
    rc = main(["up", "--yes", "--endpoint", sim.http_url])
    err = capsys.readouterr().err
    assert rc == 1 and "belongs to the bundled simulator" in err and sim.http_url in err
    assert writes(sim) == 0
    # without the endpoint it is the simulator's again: no change
    assert main(["preview", "--detailed-exitcode"]) == 0


def test_case1_another_dsp_refuses_and_reassign_moves_on_purpose(dsp_env, stack_dir, capsys,
                                                                 make_sim):
    sim = dsp_env
    other = make_sim(name="dsp-two")
    assert main(["up", "--yes", "--endpoint", sim.http_url]) == 0
    capsys.readouterr()
    rc = main(["up", "--yes", "--endpoint", other.http_url])
    err = capsys.readouterr().err
    assert rc == 1 and sim.http_url.rstrip("/") in err and other.http_url.rstrip("/") in err
    assert "name dsp-two" in err and f"state reassign-dsp --endpoint {other.http_url}" in err
    assert writes(other) == 0
    # the same DSP at another address (same uuid) is fine
    alias = sim.http_url.replace("127.0.0.1", "localhost")
    assert main(["preview", "--detailed-exitcode", "--endpoint", alias]) == 0
    capsys.readouterr()
    # moving on purpose: the state now belongs to the other DSP (nothing written to it)
    assert main(["state", "reassign-dsp", "--endpoint", other.http_url]) == 0
    assert "now belongs to the DSP at " + other.http_url.rstrip("/") in capsys.readouterr().out
    assert writes(other) == 0
    assert main(["preview", "--endpoint", other.http_url]) == 0


def test_case1_old_state_without_dsp_record_is_migrated_on_read(dsp_env, stack_dir, capsys,
                                                              monkeypatch):
    """A state written before the DSP was recorded (and before states were kept per
    project): the next run moves it under its project, records the DSP, and keeps its
    objects; run without an endpoint it refuses (no simulator data beside it)."""
    sim = dsp_env
    assert main(["up", "--yes", "--endpoint", sim.http_url]) == 0
    capsys.readouterr()
    state_dir = stack_dir / ".datera-iac"
    new = state_dir / "shop" / "dev.json"
    doc = json.loads(new.read_text())
    del doc["dsp"]
    (state_dir / "dev.json").write_text(json.dumps(doc))  # the old layout
    shutil.rmtree(state_dir / "shop")
    _no_dsp(monkeypatch)
    assert main(["up", "--yes"]) == 1
    assert "written before the DSP was recorded" in capsys.readouterr().err
    assert main(["preview", "--detailed-exitcode", "--endpoint", sim.http_url]) == 0
    capsys.readouterr()
    assert new.exists() and not (state_dir / "dev.json").exists()
    assert main(["up", "--yes", "--endpoint", sim.http_url]) == 0
    assert json.loads(new.read_text())["resources"][0]["name"] == "vol"


# ---- case 2: states keyed by project and stack ---------------------------------------------


def test_case2_two_projects_one_directory_never_mix(dsp_env, tmp_path, monkeypatch, capsys):
    """examples/yaml/Pulumi.yaml (project shop) and minimal.yaml (project minimal) both
    use stack dev in one directory: the second plans only its own volume and deletes
    nothing of the first."""
    sim = dsp_env
    shutil.copytree(ROOT / "examples/yaml", tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    ep = ["--endpoint", sim.http_url]
    assert main(["up", "--yes", "-f", "Pulumi.yaml", *ep]) == 0
    capsys.readouterr()
    shop = sim.summary()
    assert main(["preview", "--json", "-f", "minimal.yaml", *ep]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["summary"]["delete"] == 0 and plan["new_stack"] is True
    assert [a["name"] for a in plan["actions"]] == ["scratch"]
    assert main(["up", "--yes", "-f", "minimal.yaml", *ep]) == 0
    assert main(["preview", "--detailed-exitcode", "-f", "Pulumi.yaml", *ep]) == 0
    assert sim.summary()["app_instances"] == shop["app_instances"] + 1
    assert (tmp_path / ".datera-iac" / "shop" / "dev.json").exists()
    assert (tmp_path / ".datera-iac" / "minimal" / "dev.json").exists()


def test_case2_old_state_of_another_project_is_not_taken(dsp_env, tmp_path, monkeypatch, capsys):
    """An old-layout `.datera-iac/dev.json` of project shop stays shop's: project minimal
    starts its own state instead of planning to delete shop's objects."""
    sim = dsp_env
    shutil.copytree(ROOT / "examples/yaml", tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    ep = ["--endpoint", sim.http_url]
    assert main(["up", "--yes", "-f", "Pulumi.yaml", *ep]) == 0
    sd = tmp_path / ".datera-iac"
    os.replace(sd / "shop" / "dev.json", sd / "dev.json")
    capsys.readouterr()
    assert main(["preview", "--json", "-f", "minimal.yaml", *ep]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["summary"]["delete"] == 0 and plan["new_stack"] is True
    assert (sd / "dev.json").exists()
    assert main(["preview", "--detailed-exitcode", "-f", "Pulumi.yaml", *ep]) == 0
    assert (sd / "shop" / "dev.json").exists() and not (sd / "dev.json").exists()


def test_case2_state_of_another_project_refused(sim, tmp_path):
    """A backend keyed by stack only (PostgreSQL) holding another project's state: the
    run refuses before reading or writing the DSP, naming both projects."""
    from datera_iac.engine.core import DspMismatch, Workspace
    from datera_iac.engine.state import State

    (tmp_path / "Pulumi.yaml").write_text(ONE_VOLUME)
    ws = Workspace(stack_file=tmp_path / "Pulumi.yaml", endpoint=sim.http_url)
    ws.definition()
    with pytest.raises(DspMismatch) as e:
        ws.bind_dsp(State(stack="dev", project="minimal"))
    assert "'minimal'" in str(e.value) and "'shop'" in str(e.value)
    assert writes(sim) == 0


# ---- case 4: a create never adopts what it did not make -----------------------------------

TENANT_STACK = textwrap.dedent("""\
    name: shop
    runtime: yaml
    resources:
      team:
        type: datera:index:Tenant
        properties:
          name: team-a
          description: ours
    """)


def test_case4_same_named_tenant_is_a_conflict_not_created(dsp_env, tmp_path, monkeypatch, capsys):
    """A tenant someone else made under the declared name: the create fails with a conflict
    and an import hint; nothing is recorded, the other owner's description is untouched,
    and a destroy deletes nothing."""
    sim = dsp_env
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    client = DspClient(DateraConfig.from_mapping(
        {"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"},
        use_env=False))
    client.post("/tenants", {"name": "team-a", "descr": "theirs"}, tenant="/root")
    (tmp_path / "Pulumi.yaml").write_text(TENANT_STACK)
    monkeypatch.chdir(tmp_path)
    ep = ["--endpoint", sim.http_url]
    assert main(["up", "--yes", *ep]) == 1
    out = capsys.readouterr()
    assert "already exists and this create did not make it" in out.out + out.err
    assert "datera-iac import Tenant" in out.out + out.err
    assert "1 created" not in out.out + out.err
    assert main(["state", "list"]) == 0
    assert "team" not in capsys.readouterr().out
    assert main(["destroy", "--yes", *ep]) == 0
    assert client.get("/tenants/root/team-a", tenant="/root")["descr"] == "theirs"
    # the engine's crash recovery (find by name) does not adopt it either
    from datera_iac.resources import kind_for
    from datera_iac.resources.base import Context

    ctx = Context(client=client, config=client.config)
    kind = kind_for("Tenant")
    assert kind.find(ctx, kind.spec_from({"name": "team-a"})) is None
    # a tenant we made carries our token and reads back with the declared description only
    (tmp_path / "Pulumi.yaml").write_text(TENANT_STACK.replace("team-a", "team-b"))
    assert main(["up", "--yes", *ep]) == 0
    assert client.get("/tenants/root/team-b", tenant="/root")["descr"].startswith("ours datera-iac-")
    assert main(["preview", "--detailed-exitcode", *ep]) == 0
    assert kind.find(ctx, kind.spec_from({"name": "team-b"})) is not None


def test_bench_foreign_objects_section(capsys):
    """The fault report's "foreign objects" figures (bench/foreign_objects.py), measured:
    same-named Tenant, Volume and VolumeType (and a Snapshot whose declared uuid someone
    else took) made by someone else are neither adopted nor deleted; wrong-DSP runs,
    non-TTY destroys and live-lock breaks are all refused with 0 writes."""
    sys.path.insert(0, str(ROOT / "bench"))
    from foreign_objects import measure, report

    fig = measure(1)
    for kind in ("Tenant", "Volume", "VolumeType", "Snapshot"):
        assert fig["objects"][kind] == {"adopted": 0, "deleted": 0, "trials": 1}, fig
    assert fig["refused"] == {"wrong_dsp": [2, 2, 0], "non_tty_destroy": [1, 1],
                              "live_lock": [1, 1]}
    assert "live-lock breaks refused 1 of 1" in report(fig)


def test_bench_foreign_objects_report_per_front_end():
    """The section prints each front end's figures, "n/a: <why>" where a case does not
    apply, and a front end whose tool is missing as NOT MEASURED (never silently left out)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from foreign_objects import report_all

    objects = {k: {"adopted": 0, "deleted": 0, "trials": 2}
               for k in ("Tenant", "Volume", "VolumeType", "Snapshot")}
    text = report_all({
        "engine": {"objects": objects, "refused": {"wrong_dsp": [4, 4, 0],
                                                   "non_tty_destroy": [2, 2], "live_lock": [2, 2]}},
        "terraform": {"objects": objects, "refused": {"wrong_dsp": [4, 4, 0],
                                                      "non_tty_destroy": [2, 2],
                                                      "live_lock": "n/a: its own lock"}},
        "pulumi": {"error": "Failed: the Pulumi CLI is not built"}})
    assert "foreign objects (terraform)" in text and "live-lock breaks n/a: its own lock" in text
    assert "wrong-DSP runs refused 4 of 4 with 0 writes" in text
    assert "foreign objects (pulumi) NOT MEASURED: Failed: the Pulumi CLI is not built" in text
    assert text.count("adopted 0, deleted 0 (of 2)") == 8


# ---- case 5: a volume's snapshots (dependents) -------------------------------------------


def _client(sim):
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    return DspClient(DateraConfig.from_mapping(
        {"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"},
        use_env=False))


def _snap_out_of_band(client, volume_id: str) -> str:
    """A snapshot made with the DSP's API (not by this stack); returns its timestamp."""
    tenant, ai = volume_id.rsplit("/", 1)
    url = f"/app_instances/{ai}/storage_instances/storage-1/volumes/volume-1/snapshots"
    return str(client.post(url, {"uuid": "8d1c0f65-1f0e-4b8e-9a3c-1d2e3f4a5b6c"},
                           tenant=tenant)["timestamp"])


def _snapshots(client, volume_id: str) -> list[str]:
    tenant, ai = volume_id.rsplit("/", 1)
    url = f"/app_instances/{ai}/storage_instances/storage-1/volumes/volume-1/snapshots"
    return [str(s["timestamp"]) for s in client.list(url, tenant=tenant)]


def _state(tmp_path, stack="dev"):
    from datera_iac.engine.core import Workspace

    return Workspace(stack_file=tmp_path / "Pulumi.yaml", stack=stack).load_state()


WITH_SNAPSHOT = ONE_VOLUME + textwrap.indent(textwrap.dedent("""\
    snap:
      type: datera:index:Snapshot
      properties:
        volumeId: ${vol.id}
    """), "  ")


def test_case5_destroy_refuses_a_volume_with_a_snapshot_made_elsewhere(dsp_env, stack_dir, capsys):
    """A snapshot someone made of a managed volume: `destroy` refuses at plan time, naming
    the snapshot, and writes nothing (main deleted it silently with the volume). With
    `cascade: true` declared (and applied), the plan lists it and the destroy goes ahead."""
    sim = dsp_env
    ep = ["--endpoint", sim.http_url]
    assert main(["up", "--yes", *ep]) == 0
    vid = _state(stack_dir).resources["vol"].id
    client = _client(sim)
    ts = _snap_out_of_band(client, vid)
    capsys.readouterr()
    before = writes(sim)
    assert main(["destroy", "--yes", *ep]) == 1
    out = capsys.readouterr()
    assert f"Snapshot {ts} of volume safety-vol" in out.out
    assert "cascade: true" in out.out and "Traceback" not in out.err
    assert writes(sim) == before and _snapshots(client, vid) == [ts]
    # preview --destroy says the same, with exit 1
    assert main(["preview", "--destroy", *ep]) == 1
    assert f"Snapshot {ts}" in capsys.readouterr().out
    # the declaration says so: cascade (an update that writes nothing to the DSP)
    (stack_dir / "Pulumi.yaml").write_text(ONE_VOLUME.replace("size: 1", "size: 1\n      cascade: true"))
    assert main(["up", "--yes", *ep]) == 0
    assert writes(sim) == before
    assert main(["preview", "--detailed-exitcode", *ep]) == 0
    capsys.readouterr()
    assert main(["preview", "--destroy", "--json", *ep]) == 0
    step = next(a for a in json.loads(capsys.readouterr().out)["actions"] if a["name"] == "vol")
    assert step["also_deletes"] == [f"Snapshot {ts} of volume safety-vol (made outside this stack)"]
    assert main(["destroy", "--yes", *ep]) == 0
    out = capsys.readouterr().out
    assert f"also deletes Snapshot {ts} of volume safety-vol (made outside this stack): cascade" in out
    assert sim.summary().get("app_instances", 0) == 0


def test_case5_declared_snapshot_is_deleted_first_not_with_the_volume(dsp_env, stack_dir, capsys):
    """A stack declaring a volume and its snapshot destroys without cascade: the snapshot
    is its own delete, before the volume's (its own step, not a side effect)."""
    sim = dsp_env
    ep = ["--endpoint", sim.http_url]
    (stack_dir / "Pulumi.yaml").write_text(WITH_SNAPSHOT)
    assert main(["up", "--yes", *ep]) == 0
    capsys.readouterr()
    assert main(["preview", "--destroy", "--json", *ep]) == 0
    plan = json.loads(capsys.readouterr().out)
    vol = next(a for a in plan["actions"] if a["name"] == "vol")
    assert "snap" in vol["depends_on"] and vol["also_deletes"] == []
    assert main(["destroy", "--yes", *ep]) == 0
    out = capsys.readouterr()
    assert "deleted Snapshot snap" in out.err and "deleted Volume vol" in out.err
    assert out.err.index("deleted Snapshot snap") < out.err.index("deleted Volume vol")
    assert sim.summary().get("app_instances", 0) == 0


def test_case5_replacing_a_volume_refuses_while_it_has_snapshots(dsp_env, stack_dir, capsys):
    """A change that re-creates the volume (a replica_count decrease with replace_on_retype)
    would delete its snapshots, the declared one included (main: silently). Refused at plan
    time naming it, until the volume declares cascade; then the plan lists it."""
    sim = dsp_env
    ep = ["--endpoint", sim.http_url]
    (stack_dir / "Pulumi.yaml").write_text(WITH_SNAPSHOT.replace(
        "size: 1", "size: 1\n      extraSpecs: {replica_count: '3'}"))
    assert main(["up", "--yes", *ep]) == 0
    st = _state(stack_dir)
    vid, sid = st.resources["vol"].id, st.resources["snap"].id
    capsys.readouterr()
    before = writes(sim)
    retype = WITH_SNAPSHOT.replace(
        "size: 1", "size: 1\n      extraSpecs: {replica_count: '2'}\n      replaceOnRetype: true")
    (stack_dir / "Pulumi.yaml").write_text(retype)
    assert main(["up", "--yes", *ep]) == 1
    out = capsys.readouterr().out
    ts = sid.rsplit("/", 1)[1]
    assert f"Snapshot {ts} of volume safety-vol" in out and "cascade" in out
    assert writes(sim) == before and _snapshots(_client(sim), vid) == [ts]
    (stack_dir / "Pulumi.yaml").write_text(retype.replace("replaceOnRetype: true",
                                                          "replaceOnRetype: true\n      cascade: true"))
    assert main(["preview", "--json", *ep]) == 0
    vol = next(a for a in json.loads(capsys.readouterr().out)["actions"] if a["name"] == "vol")
    assert vol["action"] == "replace"
    assert vol["also_deletes"] == [f"Snapshot {ts} of volume safety-vol (declared as snap, which "
                                   "is replaced too)"]


def test_case5_a_snapshot_still_declared_is_never_deleted_by_its_volume(dsp_env, stack_dir, capsys):
    """A snapshot declared with its volume's id written out stays in the stack while the
    volume leaves: refused even with cascade (the next run would find the declared
    snapshot "deleted outside datera-iac")."""
    sim = dsp_env
    ep = ["--endpoint", sim.http_url]
    (stack_dir / "Pulumi.yaml").write_text(ONE_VOLUME.replace("size: 1", "size: 1\n      cascade: true"))
    assert main(["up", "--yes", *ep]) == 0
    vid = _state(stack_dir).resources["vol"].id
    lone = textwrap.dedent(f"""\
        name: shop
        runtime: yaml
        resources:
          snap:
            type: datera:index:Snapshot
            properties:
              volumeId: {vid}
        """)
    (stack_dir / "Pulumi.yaml").write_text(ONE_VOLUME.replace("size: 1", "size: 1\n      cascade: true")
                                           + lone.split("resources:\n", 1)[1])
    assert main(["up", "--yes", *ep]) == 0
    (stack_dir / "Pulumi.yaml").write_text(lone)
    capsys.readouterr()
    before = writes(sim)
    assert main(["up", "--yes", *ep]) == 1
    out = capsys.readouterr().out
    assert "still declared in this stack" in out and "snap (Snapshot" in out
    assert writes(sim) == before
    assert main(["preview", "--detailed-exitcode", *ep]) == 1


# ---- case 10: a tenant that still holds objects ------------------------------------------


def test_case10_examples_yaml_destroys_cleanly(dsp_env, tmp_path, monkeypatch, capsys):
    """examples/yaml: up, lift `protect` as the docs say (edit, up), destroy: rc 0 (main:
    the tenant delete failed with 409 on every retry, its retained volume inside). The
    retained volume stays with its tenant, forgotten by the same rule the plan shows;
    everything else of the stack is gone, and the state is empty."""
    sim = dsp_env
    shutil.copytree(ROOT / "examples/yaml", tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    ep = ["--endpoint", sim.http_url]
    assert main(["up", "--yes", *ep]) == 0
    text = (tmp_path / "Pulumi.yaml").read_text()
    assert text.count("      protect: true\n") == 1
    (tmp_path / "Pulumi.yaml").write_text(text.replace("      protect: true\n", "      protect: false\n"))
    assert main(["up", "--yes", *ep]) == 0
    capsys.readouterr()
    assert main(["destroy", "--yes", *ep]) == 0
    out = capsys.readouterr()
    assert "409" not in out.out + out.err
    assert "forget   Tenant tenant" in out.out and "retainOnDelete" in out.out
    assert not _state(tmp_path).resources
    client = _client(sim)
    assert [a["name"] for a in client.list("/app_instances", tenant="/root/shop-staging")] == [
        "shop-staging-logs"]
    assert sim.summary().get("app_instances") == 1
    assert not [t for t in client.list("/app_templates") if t["name"].startswith("shop-")]


TENANT_AND_VOLUME = textwrap.dedent("""\
    name: shop
    runtime: yaml
    resources:
      team:
        type: datera:index:Tenant
        properties:
          name: team-z
      vol:
        type: datera:index:Volume
        properties:
          name: ours-vol
          size: 1
          tenant: ${team.id}
    """)


def test_case10_tenant_holding_a_foreign_volume_refused_at_plan_time(dsp_env, tmp_path,
                                                                    monkeypatch, capsys):
    """A volume someone else made in the stack's tenant: the destroy is refused before any
    write, naming it (main deleted our volume, then failed on the tenant with 409)."""
    sim = dsp_env
    (tmp_path / "Pulumi.yaml").write_text(TENANT_AND_VOLUME)
    monkeypatch.chdir(tmp_path)
    ep = ["--endpoint", sim.http_url]
    assert main(["up", "--yes", *ep]) == 0
    client = _client(sim)
    client.post("/app_instances", {"name": "their-vol", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1}]}]},
        tenant="/root/team-z")
    capsys.readouterr()
    before = writes(sim)
    assert main(["destroy", "--yes", *ep]) == 1
    out = capsys.readouterr().out
    assert "Volume their-vol" in out and "409" in out and "state rm" in out
    assert writes(sim) == before
    assert sorted(a["name"] for a in client.list("/app_instances", tenant="/root/team-z")) == [
        "ours-vol", "their-vol"]


# ---- case 6: import, then up -------------------------------------------------------------


def test_case6_imported_not_declared_is_kept_until_targeted(dsp_env, stack_dir, capsys):
    """`import` of a volume the stack does not declare yet, then `up`: the plan shows it as
    "imported, not declared" and deletes nothing (main deleted it); `destroy` keeps it
    too. `up --target NAME` deletes it on purpose; `state rm` would forget it."""
    sim = dsp_env
    ep = ["--endpoint", sim.http_url]
    assert main(["up", "--yes", *ep]) == 0
    client = _client(sim)
    client.post("/app_instances", {"name": "legacy-db", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1}]}]},
        tenant="/root")
    assert main(["import", "Volume", "legacy", "legacy-db", *ep]) == 0
    capsys.readouterr()
    assert main(["preview", "--detailed-exitcode", *ep]) == 0
    out = capsys.readouterr().out
    assert "Imported, not declared" in out and "Volume legacy (/root/" in out
    assert "delete" not in out.split("Imported, not declared")[0]
    assert main(["preview", "--json", *ep]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [i["name"] for i in plan["imported_not_declared"]] == ["legacy"]
    assert plan["actions"] == []
    before = writes(sim)
    assert main(["up", "--yes", *ep]) == 0
    assert writes(sim) == before
    assert main(["destroy", "--yes", *ep]) == 0
    out = capsys.readouterr().out
    assert "Imported, not declared" in out and "delete   Volume legacy" not in out
    names = [a["name"] for a in client.list("/app_instances", tenant="/root")]
    assert names == ["legacy-db"] and list(_state(stack_dir).resources) == ["legacy"]
    # on purpose: named with --target
    assert main(["preview", "--target", "legacy", *ep]) == 0
    assert "- delete   Volume legacy" in capsys.readouterr().out
    assert main(["up", "--yes", "--target", "legacy", *ep]) == 0
    assert list(client.list("/app_instances", tenant="/root")) == []
    assert not _state(stack_dir).resources


def test_case6_declared_import_is_managed_like_any_other(dsp_env, stack_dir, capsys):
    """Once a stack declares the imported object and `up` has run, the mark is gone: taking
    it out of the stack plans its delete as usual. --target of an unknown name is an error."""
    sim = dsp_env
    ep = ["--endpoint", sim.http_url]
    client = _client(sim)
    client.post("/app_instances", {"name": "safety-vol", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1}]}]},
        tenant="/root")
    assert main(["import", "Volume", "vol", "safety-vol", *ep]) == 0
    assert _state(stack_dir).resources["vol"].imported
    assert main(["up", "--yes", *ep]) == 0
    assert not _state(stack_dir).resources["vol"].imported
    (stack_dir / "Pulumi.yaml").write_text("name: shop\nruntime: yaml\nresources: {}\n")
    capsys.readouterr()
    assert main(["preview", *ep]) == 0
    out = capsys.readouterr().out
    assert "- delete   Volume vol" in out and "Imported, not declared" not in out
    assert main(["preview", "--target", "nope", *ep]) == 1
    assert "--target 'nope': no resource of that name" in capsys.readouterr().out


def test_data_safety_table_names_existing_tests():
    """docs/engine.md's table of where each issue 16 case is tested names only tests that
    exist, in the folder of its column, and every case has a test or an n/a in every front
    end."""
    import re

    text = (ROOT / "docs" / "engine.md").read_text()
    section = text.split("### Where each rule is tested", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    header, body = rows[0], rows[1:]
    folders = re.findall(r"`tests/(\w+)/`", header)
    assert folders == ["engine", "terraform", "pulumi"], header
    cases = []
    for row in body:
        cells = [c.strip() for c in row.strip("|").split("|")]
        cases.append(cells[0].split()[0])
        for folder, cell in zip(folders, cells[1:]):
            named = re.findall(r"`([\w.]+\.py)::(\w+)`", cell)
            assert named or cell.startswith("n/a: "), (cells[0], folder, cell)
            for path, test in named:
                source = (ROOT / "tests" / folder / path).read_text()
                assert re.search(rf"^def {test}\(", source, re.M), f"tests/{folder}/{path}::{test}"
    assert cases == ["1", "2", "3", "4", "5", "6", "7", "8", "9a", "9b", "9c", "10"], cases
