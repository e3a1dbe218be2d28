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
    p, lock_id = _holder(stack_dir / ".datera-iac")
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
