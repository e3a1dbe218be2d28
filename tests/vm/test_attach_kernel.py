"""NodeAttachment against a real Linux kernel: the engine drives the node helper over
SSH (the production ``ssh://`` path) into a qemu guest whose kernel logs in with
iscsi_tcp to the simulator's tgtd, udev names the disks and multipathd builds the map.

Each scenario asserts on what the guest's kernel reports (``iscsiadm -m session``,
``multipath -ll``, sysfs, /proc/mounts), not on what the helper says it did.
"""

from __future__ import annotations


from vmkit import kernel_state, stack

def test_boot_attach_use_detach(guest, vm_ws, dsp, vm_lab):
    """Boot, attach (two portals, multipath, ext4, mount), write through the kernel,
    destroy: nothing of the volume is left in the kernel or the ACL."""
    ws = vm_ws(stack(guest, "e2e", filesystem="ext4", mountPoint="/mnt/e2e"))
    _, result = ws.up()
    assert result is not None and result.ok, result.failures
    out = ws.load_state().resources["a"].outputs
    wwid = out["wwid"]
    assert out["paths_up"] == 2 and out["repair_needed"] is None
    assert out["device_path"] == f"/dev/disk/by-id/dm-uuid-mpath-{wwid}"
    assert out["size_bytes"] == 1 << 30
    k = kernel_state(guest)
    assert len(k["sessions"]) == 2, k
    assert {s.split()[2].rsplit(",", 1)[0] for s in k["sessions"]} == {
        "10.0.2.100:3260", "10.0.2.101:3260"}
    assert k["maps"] == [out["map_name"]], k
    ll = guest.sh(f"multipath -ll {out['map_name']}")
    assert ll.count("active ready running") == 2, ll
    assert "DATERA,IBLOCK" in ll, ll
    assert guest.sh("findmnt -n -o SOURCE,FSTYPE /mnt/e2e").split()[1] == "ext4"
    guest.sh("echo written-by-the-guest > /mnt/e2e/proof && sync")
    [ai] = list(dsp.list("/app_instances", tenant="/root"))
    lun_file = vm_lab.plane.lun_path(ai["id"])
    data = lun_file.read_bytes()
    assert data[1080:1082] == b"\x53\xef", "no ext4 superblock in the LUN's backing file"
    assert b"written-by-the-guest" in data

    _, result = ws.up(destroy=True)
    assert result is not None and result.ok, result.failures
    k = kernel_state(guest)
    assert k == {"sessions": [], "disks": [], "maps": [], "mounts": []}, k
    assert not list(dsp.list("/app_instances", tenant="/root"))
