"""The tgtd data plane wired into the simulator: ``SimServer.reset`` empties it, a restart
over a data directory serves the surviving volumes' targets (and their data) again, and
``datera-iac dsp serve --tgt`` runs and stops tgtd with the API. Checked with the real
libiscsi userspace initiator over loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from datera_iac.node.userspace import IscsiLun, LibIscsi
from datera_iac.sim import SimServer
from datera_iac.sim.dataplane import DATA_LUN, TgtDataPlane
from tests.tools import needs

pytestmark = pytest.mark.tgt
_needs = needs("tgtd", "tgtadm", "iscsi-ls", "iscsi-inq", "iscsi-readcapacity16")

INIT = "iqn.2024-01.org.example:plane-server"
PORTALS = ["127.0.0.1", "127.0.0.2"]


def _api(base: str) -> dict[str, str]:
    key = requests.put(f"{base}/v2.2/login", json={"name": "admin", "password": "password"},
                       timeout=10).json()["key"]
    return {"Auth-Token": key, "tenant": "/root"}


def _online_volume(base: str, name: str) -> dict[str, Any]:
    """An app_instance whose storage-1 lets INIT in; returns its storage instance."""
    h = _api(base)
    body = {"name": name, "create_mode": "openstack", "access_control_mode": "deny_all",
            "storage_instances": [{"name": "storage-1",
                                   "ip_pool": {"path": "/access_network_ip_pools/default"},
                                   "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1,
                                                "snapshot_policies": []}]}]}
    r = requests.post(f"{base}/v2.2/app_instances", json=body, headers=h, timeout=10)
    assert r.status_code == 200, r.text
    ai = r.json()["data"]
    si = f"{base}/v2.2/app_instances/{ai['id']}/storage_instances/storage-1"
    r = requests.post(f"{base}/v2.2/initiators", json={"id": INIT, "name": "plane"}, headers=h, timeout=10)
    assert r.status_code in (200, 409), r.text
    r = requests.put(f"{si}/acl_policy", json={"initiators": [{"path": f"/initiators/{INIT}"}]},
                     headers=h, timeout=10)
    assert r.status_code == 200, r.text
    return requests.get(si, headers=h, timeout=10).json()["data"] | {"ai_id": ai["id"]}


def _lun(plane: TgtDataPlane, si: dict[str, Any]) -> IscsiLun:
    return IscsiLun(plane.portals[0], si["access"]["iqn"], DATA_LUN, INIT, None)


def test_reset_and_restart_keep_the_plane_in_step(tmp_path: Path) -> None:
    li = LibIscsi(timeout=15)
    data = tmp_path / "dsp"
    payload = os.urandom(1 << 20)
    src, back = tmp_path / "src.raw", tmp_path / "back.raw"
    src.write_bytes(payload)

    plane = TgtDataPlane(portals=PORTALS, data_dir=data / "luns").start()
    server = SimServer(dataplane=plane, portals=PORTALS, data_dir=data).start()
    try:
        si = _online_volume(server.http_url, "kept")
        li.write_image(str(src), _lun(plane, si))
    finally:
        server.stop()
        plane.stop()

    # a restart over the same data directory: the target is served again, with its data
    plane = TgtDataPlane(portals=PORTALS, data_dir=data / "luns").start()
    server = SimServer(dataplane=plane, portals=PORTALS, data_dir=data).start()
    try:
        assert plane.target_of(si["ai_id"]) is not None, "the surviving volume has no target"
        li.read_image(_lun(plane, si), str(back), size=1 << 20)
        assert back.read_bytes() == payload
        # an emptied store leaves no target and no LUN file behind
        server.reset()
        assert plane.target_of(si["ai_id"]) is None
        assert not plane.lun_path(si["ai_id"]).exists()
        assert si["access"]["iqn"] not in li.discover(plane.portals[0], INIT)
    finally:
        server.stop()
        plane.stop()


def test_cli_serve_tgt_serves_targets_and_stops_tgtd(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "datera_iac.cli", "dsp", "serve", "--http-port", "0", "--no-https",
         "--tgt", "--iscsi-port", "0", "--portal", "127.0.0.1", "--data", str(tmp_path / "d")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("iSCSI:" in ln for ln in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        iscsi = next((ln for ln in lines if "iSCSI:" in ln), None)
        assert iscsi is not None, "".join(lines) + proc.stderr.read()
        tgtd_pid = int(iscsi.split("pid")[1].split()[0])
        portal = iscsi.rsplit(" ", 1)[1].strip()
        http = next(ln.split()[1] for ln in lines if ln.strip().startswith("http:"))
        si = _online_volume(http, "cli")
        li = LibIscsi(timeout=15)
        assert si["access"]["iqn"] in li.discover(portal, INIT)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(tgtd_pid, 0)  # tgtd stopped with the simulator
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
