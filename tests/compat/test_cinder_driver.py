"""The OpenStack Cinder Datera driver (cinder 29.0.0 + dfs-sdk 1.2.27), unchanged, runs its
whole volume lifecycle against the bundled simulator.

The driver runs in its own virtualenv (see ``tests/compat/cinder_venv.py``).

dfs-sdk always connects to ports 7717/7718, so each run gets a simulator on a loopback
address of its own (127.0.x.y) instead of patching the SDK.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from datera_iac.sim import SimServer
from tests.compat.cinder_venv import PY, require_venv

HERE = Path(__file__).parent
@pytest.fixture
def sim_on_7718():
    """A simulator on the SDK's fixed ports, on a loopback address no other test uses."""
    last: Exception | None = None
    for _ in range(20):
        host = f"127.0.{random.randint(100, 250)}.{random.randint(2, 250)}"
        try:
            server = SimServer(host=host, http_port=7717, https_port=7718).start()
        except OSError as e:  # address in use: try another
            last = e
            continue
        try:
            yield server
        finally:
            server.stop()
        return
    raise RuntimeError(f"no free loopback address for 7717/7718: {last}")


def _run(sim: SimServer, tenant_mode: str) -> dict:
    proc = subprocess.run(
        [str(PY), str(HERE / "cinder_driver_lifecycle.py"), sim.host, "admin", "password",
         tenant_mode],
        capture_output=True, text=True, timeout=240,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root"),
             # the SDK caches the /api schema on disk; keep it per run
             "TMPDIR": str(sim.cert_path.parent) if sim.cert_path else "/tmp"},
    )
    assert proc.returncode == 0, f"driver run failed:\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout)


@pytest.mark.parametrize("tenant_mode", ["None", "Map"])
def test_cinder_driver_whole_lifecycle(sim_on_7718: SimServer, tenant_mode: str) -> None:
    """Setup and stats, create with QoS, extend, snapshot, volume from snapshot, clone,
    export/attach, detach, retype, unmanage, list manageable, manage, delete: every step
    succeeds through the real driver and leaves the DSP in the state Cinder expects."""
    require_venv()
    sim = sim_on_7718
    out = _run(sim, tenant_mode)
    project = "0123456789abcdef0123456789abcdef"
    tenant = "/root" if tenant_mode == "None" else f"/root/OS-{project}"

    assert out["apiv"] == "2.2"
    assert out["stats"]["vendor_name"] == "Datera"
    assert out["stats"]["storage_protocol"] == "iSCSI"
    assert out["stats"]["total_capacity_gb"] > 0

    c = out["create"]
    assert c["tenant"] == tenant and c["name"].startswith("OS-")
    assert c["size"] == 10 and c["replica_count"] == 3  # driver default replica_count
    # extra spec + QoS spec both land in the volume's performance policy
    assert c["performance_policy"]["write_iops_max"] == 5000
    assert c["performance_policy"]["read_iops_max"] == 2000

    assert out["extend"]["size"] == 20
    assert out["from_snapshot"]["size"] == 20
    # A driver bug the simulator reproduces faithfully: _create_cloned_volume_2_2 calls
    # _extend_volume_2_2(volume, volume['size']), whose "size >= new_size" guard makes it
    # a no-op, so a clone larger than its source keeps the source's size (20, not 25).
    # datera-iac's Volume kind does not copy this (tests/resources cover clone + grow).
    assert out["clone"]["size"] == 20

    conn = out["attach"]["connection"]
    assert conn["driver_volume_type"] == "iscsi"
    data = conn["data"]
    assert data["target_iqn"].startswith("iqn.2013-05.com.daterainc:")
    assert len(data["target_portals"]) >= 2 and all(p.endswith(":3260") for p in data["target_portals"])
    assert out["attach"]["volume"]["admin_state"] == "online"
    assert out["attach"]["volume"]["acl"] == ["/initiators/iqn.1993-08.org.debian:01:compat0001"]

    assert out["detach"]["acl"] == [] and out["detach"]["admin_state"] == "offline"

    assert out["retype_result"] is True
    assert out["retype"]["replica_count"] == 4
    # clear_old=True: the old type's limits are gone, the new one's set
    assert out["retype"]["performance_policy"]["total_iops_max"] == 9000
    assert out["retype"]["performance_policy"].get("write_iops_max", 0) == 0
    assert out["retype"]["size"] == 20

    unmanaged = [ref for ref, safe in out["manageable"] if ref.startswith("UNMANAGED-")]
    assert len(unmanaged) == 1 and dict(out["manageable"])[unmanaged[0]] is True
    managed_by_cinder = [safe for ref, safe in out["manageable"] if ref.startswith("OS-")]
    assert managed_by_cinder and not any(managed_by_cinder)

    assert out["manage_size"] == 20
    assert out["manage"]["name"].startswith("OS-") and out["manage"]["size"] == 20

    assert out["done"] is True
    # everything the driver made it also deleted
    assert sim.summary()["app_instances"] == 0
