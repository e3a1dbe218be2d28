"""Contract: state in a data directory survives a restart; the data-plane hook sees SI
changes; ``datera-iac dsp serve`` prints its URLs and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

IQN = "iqn.1993-08.org.debian:01:persist"


def test_state_survives_a_restart(make_sim, new_api, body, tmp_path: Path) -> None:
    """Tenants, AIs (with ACL, CHAP, snapshots, metadata), initiators and pools come back."""
    data = tmp_path / "dsp"
    first = make_sim(data_dir=data)
    api = new_api(base_url=first.http_url)
    api.ok("POST", "/tenants", {"name": "keep"})
    api.ok("POST", "/initiators", {"id": IQN, "name": "keeper"})
    ai = api.ok("POST", "/app_instances", body("durable", size=7), tenant="/root/keep")
    si = f"{ai['path']}/storage_instances/storage-1"
    api.ok("PUT", f"{si}/acl_policy", {"initiators": [{"path": f"/initiators/{IQN}"}]}, tenant="/root/keep")
    api.ok("PUT", f"{si}/auth", {"type": "chap", "target_user_name": "tuser", "target_pswd": "persist-secret"},
           tenant="/root/keep")
    snap = api.ok("POST", f"{si}/volumes/volume-1/snapshots", {"uuid": "5f0e0a6e-0000-4000-8000-000000000009"},
                  tenant="/root/keep")
    api.ok("PUT", f"{ai['path']}/metadata", {"host": "h1"}, tenant="/root/keep")
    gone = api.ok("POST", "/app_instances", body("deleted-before-restart"))
    api.ok("DELETE", gone["path"], {"force": True})
    before = first.dump()
    first.stop()

    second = make_sim(data_dir=data)
    assert second.dump() == before
    api2 = new_api(base_url=second.http_url)  # sessions are not persisted: a new login
    got = api2.ok("GET", ai["path"], tenant="/root/keep")
    s = got["storage_instances"][0]
    assert s["access"]["iqn"] == ai["storage_instances"][0]["access"]["iqn"]
    assert s["auth"]["target_user_name"] == "tuser"
    assert [x["path"] for x in s["acl_policy"]["initiators"]] == [f"/initiators/{IQN}"]
    assert s["volumes"][0]["snapshots"][0]["timestamp"] == snap["timestamp"]
    assert api2.ok("GET", f"{ai['path']}/metadata", tenant="/root/keep") == {"host": "h1"}
    assert api2.ok("GET", "/app_instances") == []
    assert (data / "dsp-sim.sqlite3").exists()
    second.reset()  # reset empties the file too
    second.stop()
    third = make_sim(data_dir=data)
    assert third.summary()["app_instances"] == 0 and third.summary()["tenants"] == 1


class Recorder:
    """A data plane that records what the store tells it."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def si_changed(self, tenant: str, ai_entity: dict[str, Any], si_entity: dict[str, Any]) -> None:
        self.events.append(("changed", tenant, ai_entity["name"], si_entity["name"],
                            si_entity["admin_state"], si_entity["auth"]["target_pswd"],
                            [i["path"] for i in si_entity["acl_policy"]["initiators"]],
                            si_entity["volumes"][0]["size"] if si_entity["volumes"] else None))

    def si_deleted(self, tenant: str, ai_id: str, si_name: str) -> None:
        self.events.append(("deleted", tenant, ai_id, si_name))


class Broken:
    def si_changed(self, *a: Any) -> None:
        raise RuntimeError("tgtd is down")

    def si_deleted(self, *a: Any) -> None:
        raise RuntimeError("tgtd is down")


def test_dataplane_hook_sees_state_acl_auth_size_and_deletes(make_sim, new_api, body) -> None:
    """Create, offline, ACL, CHAP (real secret), resize and delete each call the hook once."""
    rec = Recorder()
    sim = make_sim(dataplane=rec)
    api = new_api(base_url=sim.http_url)
    api.ok("POST", "/initiators", {"id": IQN, "name": "hooked"})
    ai = api.ok("POST", "/app_instances", body("hooked", size=3))
    si = f"{ai['path']}/storage_instances/storage-1"
    api.ok("PUT", f"{si}/acl_policy", {"initiators": [{"path": f"/initiators/{IQN}"}]})
    api.ok("PUT", f"{si}/auth", {"type": "chap", "target_user_name": "tuser", "target_pswd": "hook-secret-1"})
    api.ok("PUT", f"{si}/volumes/volume-1", {"size": 4})
    api.ok("PUT", ai["path"], {"admin_state": "offline", "force": True})
    api.ok("GET", ai["path"])  # reads never call the hook
    api.ok("DELETE", ai["path"])
    assert rec.events == [
        ("changed", "/root", "hooked", "storage-1", "online", "", [], 3),
        ("changed", "/root", "hooked", "storage-1", "online", "", [f"/initiators/{IQN}"], 3),
        ("changed", "/root", "hooked", "storage-1", "online", "hook-secret-1", [f"/initiators/{IQN}"], 3),
        ("changed", "/root", "hooked", "storage-1", "online", "hook-secret-1", [f"/initiators/{IQN}"], 4),
        ("changed", "/root", "hooked", "storage-1", "offline", "hook-secret-1", [f"/initiators/{IQN}"], 4),
        ("deleted", "/root", ai["id"], "storage-1"),
    ]
    assert "hook-secret-1" not in repr(sim.request_log())


def test_a_failing_dataplane_does_not_fail_the_api(make_sim, new_api, body) -> None:
    """The API state stays authoritative when the hook raises."""
    sim = make_sim(dataplane=Broken())
    api = new_api(base_url=sim.http_url)
    ai = api.ok("POST", "/app_instances", body("still-fine"))
    api.ok("DELETE", ai["path"], {"force": True})


def test_cli_serve_prints_urls_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`datera-iac dsp serve` on free ports answers, then exits 0 on SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "datera_iac.cli", "dsp", "serve", "--http-port", "0", "--https-port", "0",
         "--data", str(tmp_path / "d"), "--sw-version", "3.2.1.0", "--password", "pass_word1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("https:" in ln for ln in lines):
            lines.append(proc.stdout.readline())
        http = next(ln.split()[1] for ln in lines if ln.strip().startswith("http:"))
        assert "pass_word1" not in "".join(lines)
        key = requests.put(f"{http}/v2.1/login", json={"name": "admin", "password": "pass_word1"},
                           timeout=5).json()["key"]
        system = requests.get(f"{http}/v2.1/system", headers={"Auth-Token": key}, timeout=5).json()
        assert system["data"]["sw_version"] == "3.2.1.0"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert (tmp_path / "d" / "dsp-sim.sqlite3").exists()


def test_serve_tunes_its_own_garbage_collection(monkeypatch) -> None:
    """``dsp serve`` (its own process) moves its start-up objects out of the collector's
    sight and makes young collections rarer, so full collections stop stalling the event
    loop under load; the settings are set by the serve command only, never by an embedded
    SimServer in someone else's process."""
    import gc

    from datera_iac.sim import cli as sim_cli

    before = gc.get_threshold()
    made: list[Any] = []
    monkeypatch.setattr(gc, "freeze", lambda: made.append("freeze"))
    try:
        sim_cli._tune_gc()
        assert made == ["freeze"]
        assert gc.get_threshold() == sim_cli.GC_THRESHOLD
    finally:
        gc.set_threshold(*before)


def test_an_embedded_simulator_leaves_the_host_gc_alone(make_sim) -> None:
    import gc

    before = gc.get_threshold(), gc.get_freeze_count()
    make_sim()
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
