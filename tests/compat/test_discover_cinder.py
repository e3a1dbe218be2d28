"""Discovery of an estate the real Cinder Datera driver (and dfs-sdk directly) made: the
discovered stack imports every volume and snapshot with no field change, `up` adopts
them with 0 writes to the DSP, and the next preview is empty."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from datera_iac.cli import main
from datera_iac.engine.core import Workspace
from tests.compat.cinder_venv import PY, require_venv
from tests.compat.test_cinder_driver import sim_on_7718  # noqa: F401  (fixture)

HERE = Path(__file__).parent


def _writes(sim):
    return {k: n for k, n in sim.counters().items()
            if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH") and "login" not in k}


def test_discover_what_cinder_and_the_sdk_made(sim_on_7718, tmp_path, monkeypatch):  # noqa: F811
    require_venv()
    sim = sim_on_7718
    proc = subprocess.run(
        [str(PY), str(HERE / "cinder_estate.py"), sim.host, "admin", "password", "None"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,  # dfs-sdk logs to cwd
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root"),
             "PYTHONPATH": str(HERE),
             "TMPDIR": str(sim.cert_path.parent) if sim.cert_path else "/tmp"})
    assert proc.returncode == 0, proc.stderr[-6000:]
    made = json.loads(proc.stdout)
    assert len(made["cinder"]) == 4 and made["sdk"] == ["sdk-app-1"]

    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "Pulumi.yaml"
    assert main(["import", "--discover", "--out", str(out), "--endpoint", sim.http_url]) == 0
    doc = yaml.safe_load(out.read_text())
    names = {r["properties"].get("name") for r in doc["resources"].values()
             if r["type"] == "datera:index:Volume"}
    assert names == set(made["cinder"]) | set(made["sdk"])
    snaps = [r for r in doc["resources"].values() if r["type"] == "datera:index:Snapshot"]
    assert len(snaps) == 2

    ws = Workspace(stack_file=out, endpoint=sim.http_url, embedded=False)
    try:
        plan = ws.preview()
        assert {s.action for s in plan.changes} == {"import"}
        assert all(not s.changes for s in plan.changes), \
            [(s.name, s.changes) for s in plan.changes if s.changes]
        before = _writes(sim)
        plan, result = ws.up()
        assert result.ok and _writes(sim) == before
    finally:
        ws.close()
    ws = Workspace(stack_file=out, endpoint=sim.http_url, embedded=False)
    try:
        assert not ws.preview().changes
    finally:
        ws.close()
