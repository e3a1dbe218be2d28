"""Files that hold state or secrets are the owner's alone, whatever the umask: the state,
its journal, backup and lock (0600) in ``.datera-iac/`` (0700); the bundled simulator's data
directory (0700) and SQLite files (0600, CHAP secrets are in them), also in the default
no-endpoint mode. The simulator takes its password from ``DATERA_SIM_PASSWORD`` or a file,
so it need not be on argv (``ps``). Secret digests in the state are keyed (HMAC, key outside
the state), and digests of earlier versions (salted SHA-256) are still recognised and
replaced when the resource is next written."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

CHAP = "Chap-S3cret-42x9"
STACK = """\
name: files
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: files-vol
      size: %(size)d
      chapUser: chapuser
      chapSecret: %(chap)s
"""


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def key_file(tmp_path, monkeypatch):
    path = tmp_path / "keys" / "digest.key"
    monkeypatch.setenv("DATERA_IAC_DIGEST_KEY_FILE", str(path))
    return path


def _up(sim, d: Path, size: int) -> None:
    """``up`` of STACK (a volume of ``size`` GiB) in ``d``, on ``sim`` or (None) in the
    default no-endpoint mode with the bundled simulator; it must succeed."""
    from datera_iac.engine.core import Workspace
    from tests.fault.conftest import engine_ws

    text = STACK % {"size": size, "chap": CHAP}
    if sim is None:
        d.mkdir(exist_ok=True)
        (d / "Pulumi.yaml").write_text(text)
        ws = Workspace(stack_file=d / "Pulumi.yaml", embedded=True)
    else:
        ws = engine_ws(sim, d, text)
    try:
        _, result = ws.up(quiet=True)
        assert result is not None and result.ok, result and result.failures
    finally:
        ws.close()


def test_state_and_embedded_simulator_files_are_private(tmp_path, umask_022, key_file, figure, monkeypatch):
    """Two runs in the default no-endpoint mode (the second writes a backup): every file
    under .datera-iac is 0600 and every directory 0700, SQLite's included."""
    for var in ("DATERA_ENDPOINT", "DATERA_SAN_IP"):
        monkeypatch.delenv(var, raising=False)
    d = tmp_path / "stack"
    _up(None, d, 1)
    _up(None, d, 2)
    root = d / ".datera-iac"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    dirs = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    names = {p.name for p in files}
    assert {"dev.json", "dev.json.bak", "dsp-sim.sqlite3"} <= names, names
    loose = {str(p.relative_to(d)): oct(mode(p)) for p in files if mode(p) != 0o600}
    loose |= {str(p.relative_to(d)) + "/": oct(mode(p)) for p in dirs if mode(p) != 0o700}
    figure("files", case="engine embedded", files=len(files), dirs=len(dirs), loose=len(loose))
    assert not loose, loose
    assert mode(key_file) == 0o600 and mode(key_file.parent) == 0o700


def test_backup_of_an_older_state_is_tightened(tmp_path, umask_022, key_file, sim, engine_env):
    """A .datera-iac/ and a backup an older version left 0755/0644 are made 0700/0600 by
    the next write."""
    d = tmp_path / "old"
    _up(sim, d, 1)
    root = d / ".datera-iac"
    os.chmod(root, 0o755)
    state = next(root.glob("*/dev.json"))  # .datera-iac/<project>/dev.json
    bak = state.with_name("dev.json.bak")
    bak.write_text(state.read_text())
    os.chmod(bak, 0o644)
    _up(sim, d, 2)
    assert (oct(mode(root)), oct(mode(bak))) == (oct(0o700), oct(0o600))


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "datera_iac.cli", "dsp", "serve", "--http-port", "0", "--no-https",
         "--data", str(tmp_path / "d"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip().startswith("http:"):
            return proc, line.split()[1]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"dsp serve did not start: {proc.stderr.read() if proc.stderr else ''}")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _login(http: str, password: str) -> int:
    return requests.put(f"{http}/v2.1/login", json={"name": "admin", "password": password},
                        timeout=5).status_code


@pytest.mark.parametrize("how", ["env", "file"])
def test_simulator_password_from_env_or_file_not_argv(tmp_path, umask_022, how):
    """``DATERA_SIM_PASSWORD`` or ``--password-file``: the password is not in the process's
    argv, logins with it work and with the default do not; the data directory is 0700 and
    its SQLite files 0600."""
    pw = "Sim-Pa55-from-" + how
    if how == "env":
        proc, http = _serve(tmp_path, env={"DATERA_SIM_PASSWORD": pw})
    else:
        pf = tmp_path / "pw"
        pf.write_text(pw + "\n")
        proc, http = _serve(tmp_path, "--password-file", str(pf))
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert pw not in cmdline
        assert (_login(http, pw), _login(http, "password")) == (200, 401)
        requests.put(f"{http}/v2.1/login", json={"name": "admin", "password": pw}, timeout=5)
        data = tmp_path / "d"
        assert oct(mode(data)) == oct(0o700)
        sq = sorted(p for p in data.iterdir() if p.name.startswith("dsp-sim.sqlite3"))
        assert sq and {p.name: oct(mode(p)) for p in sq} == {p.name: oct(0o600) for p in sq}
    finally:
        _stop(proc)


def test_password_on_argv_warns(tmp_path):
    """--password still works (scripts use it) and says it is visible in ps."""
    proc, http = _serve(tmp_path, "--password", "argv-pass-1")
    try:
        assert _login(http, "argv-pass-1") == 200
    finally:
        _stop(proc)
    assert proc.stderr is not None and "visible to every user" in proc.stderr.read()


def test_digests_are_keyed_and_legacy_digests_migrate(tmp_path, key_file, sim, engine_env):
    """The state's CHAP digest is an HMAC under a key kept outside the state (0600): the
    state alone gives no way to test a guess. A state written by an earlier version (plain
    salted SHA-256) still matches - no change planned - and the next write of the resource
    stores a keyed digest."""
    import hashlib

    from tests.fault.conftest import engine_ws

    def rec() -> dict:
        state = json.loads(next((d / ".datera-iac").glob("*/dev.json")).read_text())
        return next(r for r in state["resources"] if r["name"] == "v")

    d = tmp_path / "k"
    _up(sim, d, 1)
    stored = rec()["spec"]["chap_secret"]
    prefix, salt, mac = stored.split("$")
    assert prefix == "hmac" and key_file.exists() and mode(key_file) == 0o600
    guess = hashlib.sha256(salt.encode() + json.dumps(CHAP).encode()).hexdigest()
    assert mac != guess  # without the key the right guess does not verify
    assert str(key_file) not in next((d / ".datera-iac").glob("*/dev.json")).read_text()

    # the state an earlier version wrote: unkeyed digests of the secret and of the inputs
    def legacy(value, salt):
        return f"sha256${salt}${hashlib.sha256(salt.encode() + json.dumps(value, sort_keys=True).encode()).hexdigest()}"

    path = next((d / ".datera-iac").glob("*/dev.json"))
    state = json.loads(path.read_text())
    r = next(r for r in state["resources"] if r["name"] == "v")
    r["spec"]["chap_secret"] = legacy(CHAP, "0011223344556677")
    if r.get("declared"):
        r["declared"]["chap_secret"] = legacy(CHAP, "8899aabbccddeeff")
    r["inputs_digest"] = None
    path.write_text(json.dumps(state))
    ws = engine_ws(sim, d, STACK % {"size": 1, "chap": CHAP})
    try:
        plan = ws.preview()
    finally:
        ws.close()
    assert not plan.changes, [(s.name, s.action) for s in plan.changes]
    _up(sim, d, 2)
    assert rec()["spec"]["chap_secret"].startswith("hmac$")
