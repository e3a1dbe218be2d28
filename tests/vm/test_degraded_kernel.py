"""Real-kernel degraded multipath: a lost portal and a dropped session (see
test_attach_kernel.py for the setting).

What the timings depend on (measured in the guest, Debian 12 defaults): the shipped
multipath.conf's ``fast_io_fail_tmo 5`` is what multipathd writes to each iSCSI session's
``recovery_tmo`` (iscsid.conf's ``replacement_timeout`` of 120 s is overridden), so I/O on
a lost path fails over after about 5 s; iscsid retries the reconnect every few seconds for
as long as the session exists, and multipathd's path checker (``polling_interval`` 5 s)
reinstates the path once the session is back. Unloaded, the path is back about 20 s after
the portal returns; under a load of 25 on 2 cores, TCG slows all of that several times,
so the test waits on the condition with generous bounds instead of a fixed sleep.
"""

from __future__ import annotations

import os
import sys
import time

from vmkit import map_paths, outputs, stack, up_ok

from datera_iac.sim.dataplane import DATA_LUN

#: Bounds of the waits on the guest's kernel (generous: the machine may be loaded).
SEE_LOSS = 180.0
COME_BACK = 300.0


def _healthy(guest, map_name: str) -> bool:
    paths = map_paths(guest, map_name)
    return len(paths) == 2 and all("active ready running" in p for p in paths)


def test_degraded_path_detected_and_repaired(guest, vm_ws, vm_lab):
    """A portal lost under a mounted multipath attachment: the kernel fails the path over
    (writes with fsync complete on the other path), a refresh reads the attachment
    degraded naming the portal, and when the portal returns the kernel brings the path
    back into the same map by itself (empty plan). A session dropped out of band reads as
    drift too; ``up`` logs in again on that portal only and the path rejoins the map under
    the mount."""
    ws = vm_ws(stack(guest, "degr", filesystem="ext4", mountPoint="/mnt/degr"))
    up_ok(ws)
    out = outputs(ws)
    name = out["map_name"]
    # multipathd applied fast_io_fail_tmo to the sessions: the failover below relies on it
    tmo = guest.sh("cat /sys/class/iscsi_session/session*/recovery_tmo").split()
    assert tmo == ["5", "5"], tmo
    b_dev = guest.sh(f"readlink -f /dev/disk/by-path/ip-10.0.2.101:3260-iscsi-"
                     f"{out['iqn']}-lun-{DATA_LUN}").strip().rsplit("/", 1)[1]
    times: dict[str, float] = {}
    t0 = time.monotonic()
    try:
        guest.cut("10.0.2.101")
        vm_lab.wait_for(lambda: guest.sh(f"cat /sys/block/{b_dev}/device/state").strip()
                        != "running", SEE_LOSS, "the kernel to see the lost portal")
        times["loss seen"] = time.monotonic() - t0
        guest.sh("dd if=/dev/urandom of=/mnt/degr/blob bs=64k count=16 conv=fsync 2>&1",
                 timeout=SEE_LOSS)
        times["write done"] = time.monotonic() - t0
        assert "failed faulty" in " ".join(map_paths(guest, name)), map_paths(guest, name)
        [step] = ws.preview().changes
        assert step.action == "update", step
        reason = step.reason or ""
        assert "paths_up 1 of 2" in reason and "10.0.2.101:3260" in reason, reason
    finally:
        guest.restore("10.0.2.101")
    t1 = time.monotonic()
    try:
        vm_lab.wait_for(lambda: _healthy(guest, name), COME_BACK, "the path to come back")
    except AssertionError as e:
        raise AssertionError(f"{e}; guest: " + guest.sh(
            f"multipath -ll {name}; iscsiadm -m session -P1; ps ax | grep -c [s]ocat; "
            "dmesg | tail -25", timeout=120) + f"; host: forwarders of 10.0.2.101 "
            f"{guest.forwarders('10.0.2.101')}, files {sorted(p.name for p in guest.dir.iterdir())}"
            ) from None
    times["path back after restore"] = time.monotonic() - t1
    print(f"degraded path timings (load {os.getloadavg()[0]:.1f}): "
          + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()), file=sys.stderr)
    assert not ws.preview().changes
    assert guest.sh("md5sum < /mnt/degr/blob").split()[0] == \
        guest.sh("sync; echo 3 > /proc/sys/vm/drop_caches; md5sum < /mnt/degr/blob").split()[0]

    # a session dropped out of band: `up` repairs it in place
    guest.sh(f"iscsiadm -m node -T {out['iqn']} -p 10.0.2.101:3260 --logout")
    vm_lab.wait_for(lambda: len(map_paths(guest, name)) == 1, SEE_LOSS,
                    "the logged-out path to leave the map")
    plan = ws.preview()
    assert [c.action for c in plan.changes] == ["update"], plan.changes
    up_ok(ws)
    after = outputs(ws)
    assert after["paths_up"] == 2 and after["repair_needed"] is None
    assert after["map_name"] == name
    vm_lab.wait_for(lambda: _healthy(guest, name), COME_BACK, "the repaired path to be used")
    assert guest.sh("findmnt -n -o TARGET /mnt/degr").strip() == "/mnt/degr"
    assert not ws.preview().changes
    _, result = ws.up(destroy=True)
    assert result is not None and result.ok, result.failures
