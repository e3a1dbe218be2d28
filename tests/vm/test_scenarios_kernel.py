"""Real-kernel NodeAttachment scenarios beyond the first attach/detach (see
test_attach_kernel.py for the setting)."""

from __future__ import annotations

import pytest
from vmkit import Recorder, destroy_ok, kernel_state, outputs, stack, up_ok

from datera_iac.sim.dataplane import DATA_LUN



def test_wwid_is_the_kernels_and_a_foreign_lun_is_refused(guest, vm_ws, dsp, vm_lab):
    """The WWID the attachment reports is the one udev and multipath name the disk by
    (its /dev/disk/by-id link), the unit serial the kernel read is the volume's; a LUN
    whose serial is not the volume's is refused after login and leaves no session, disk
    or map behind."""
    from datera_iac.errors import NodeError
    from datera_iac.node.iscsi import IscsiHelper, Target

    ws = vm_ws(stack(guest, "wwid"))
    up_ok(ws)
    out = outputs(ws)
    [ai] = list(dsp.list("/app_instances", tenant="/root"))
    si = ai["storage_instances"][0]
    serial = si["volumes"][0]["uuid"].replace("-", "")
    sd = guest.sh(f"readlink -f /dev/disk/by-path/ip-10.0.2.100:3260-iscsi-{out['iqn']}-lun-1"
                  ).strip()
    props = dict(line.split("=", 1) for line in guest.sh(
        f"udevadm info --query=property --name={sd}").splitlines() if "=" in line)
    assert props["ID_SERIAL"] == out["wwid"], props
    assert guest.sh(f"readlink -f /dev/disk/by-id/scsi-{out['wwid']}").strip() in (
        sd, guest.sh(f"readlink -f {out['device_path']}").strip())
    assert serial in guest.sh(f"cat /sys/block/{sd.rsplit('/', 1)[1]}/device/vpd_pg80")

    # the same target, but a helper that expects another volume's serial: refused after
    # login (the device is never handed out), and it removes the LUN's devices, map and
    # sessions; the attachment's own destroy then finds nothing left to do on the node
    target = Target(out["iqn"], out["portals"], DATA_LUN,
                    serial="ffffffff-ffff-ffff-ffff-ffffffffffff")
    with guest.runner() as r:
        with pytest.raises(NodeError, match="another volume"):
            IscsiHelper(r).attach(target)
    assert kernel_state(guest) == {"sessions": [], "disks": [], "maps": [], "mounts": []}
    destroy_ok(ws)


def test_format_on_attach_refuses_a_device_with_a_signature(guest, vm_ws, dsp):
    """A volume that already carries a signature (swap, written from the guest over a
    raw attachment) is not formatted by an attachment asking for ext4: the probe runs
    after the device settled, the create fails naming what it found, the node is left
    clean and the signature is still there."""
    raw = vm_ws(stack(guest, "sig"), name="raw")
    up_ok(raw)
    dev = outputs(raw)["device_path"]
    guest.sh(f"mkswap {dev} >/dev/null && sync")
    only_volume = stack(guest, "sig").split("  a:\n")[0]
    up_ok(vm_ws(only_volume, name="raw"))
    assert kernel_state(guest)["sessions"] == []

    fs = vm_ws(stack(guest, "sig", filesystem="ext4", mountPoint="/mnt/sig"), name="raw")
    _, result = fs.up()
    assert result is not None and not result.ok
    [failure] = result.failures
    assert "already carries swap" in failure.message, failure.message
    assert kernel_state(guest) == {"sessions": [], "disks": [], "maps": [], "mounts": []}
    # the data is untouched: attach raw again and probe
    up_ok(vm_ws(stack(guest, "sig"), name="raw"))
    dev = outputs(vm_ws(stack(guest, "sig"), name="raw"))["device_path"]
    assert guest.sh(f"blkid -p -o value -s TYPE {dev}").strip() == "swap"
    destroy_ok(vm_ws(stack(guest, "sig"), name="raw"))


def test_filesystem_grows_after_extend(guest, vm_ws):
    """Growing the volume grows the mounted ext4 online: every path rescanned, the map
    resized, resize2fs run; the sessions stay."""
    text = stack(guest, "grow", size=1, filesystem="ext4", mountPoint="/mnt/grow",
                 volumeSize="${v.size}")
    ws = vm_ws(text)
    up_ok(ws)
    before = outputs(ws)
    sessions = kernel_state(guest)["sessions"]
    assert int(guest.sh("df -B1 --output=size /mnt/grow | tail -1")) < 1 << 30
    ws = vm_ws(text.replace("size: 1\n", "size: 2\n", 1))
    up_ok(ws)
    after = outputs(ws)
    assert after["size_bytes"] == 2 << 30
    assert int(guest.sh(f"blockdev --getsize64 /dev/mapper/{before['map_name']}")) == 2 << 30
    assert int(guest.sh("df -B1 --output=size /mnt/grow | tail -1")) > (3 << 30) // 2
    assert kernel_state(guest)["sessions"] == sessions
    destroy_ok(ws)


def _first(events, pred) -> int:
    return next(i for i, (_, argv) in enumerate(events) if pred(argv))


def test_detach_order_and_an_interrupted_destroy_rerun(guest, vm_ws, dsp, vm_lab):
    """Destroy runs unmount -> flush this map -> delete the SCSI devices -> logout ->
    ACL removal (node commands and DSP requests on one timeline). A destroy whose SSH
    connection drops at the logout leaves the kernel with its sessions only; the
    attachment stays in state, and the re-run finishes: no session, disk, map, mount,
    ACL entry or volume left."""
    rec = Recorder(vm_lab.sim)
    text = stack(guest, "order", filesystem="ext4", mountPoint="/mnt/order")
    up_ok(vm_ws(text, rec))
    out = outputs(vm_ws(text, rec))

    rec.fail_at = "--logout"
    _, result = vm_ws(text, rec).up(destroy=True)
    assert result is not None and not result.ok
    assert "lost the connection" in result.failures[0].message
    k = kernel_state(guest)
    assert len(k["sessions"]) == 2 and k["disks"] == [] and k["maps"] == [] \
        and k["mounts"] == [], k
    assert list(dsp.list("/app_instances", tenant="/root")), "volume deleted too early"
    assert "a" in vm_ws(text, rec).load_state().resources

    rec.events.clear()
    start = len(vm_lab.sim.request_log())
    _, result = vm_ws(text, rec).up(destroy=True)
    assert result is not None and result.ok, result.failures
    assert kernel_state(guest) == {"sessions": [], "disks": [], "maps": [], "mounts": []}
    assert not list(dsp.list("/app_instances", tenant="/root"))
    for portal in out["portals"]:  # our records are gone (the ones sendtargets wrote for
        # the address tgtd names, 127.0.0.x inside the guest, are not ours to delete)
        assert guest.sh(f"iscsiadm -m node -T {out['iqn']} -p {portal} >/dev/null 2>&1; "
                        "echo $?").strip() == "21"
    ev = rec.events
    logout = _first(ev, lambda a: "--logout" in a)
    log = vm_lab.sim.request_log()[start:]
    acl = next(i for i, e in enumerate(log) if e["method"] == "PUT"
               and e["path"].endswith("/acl_policy/initiators"))
    assert ev[logout][0] - start <= acl, "the ACL was removed before the logout"

    # the full order, on a clean attach/destroy
    up_ok(vm_ws(text, rec))
    rec.events.clear()
    start = len(vm_lab.sim.request_log())
    destroy_ok(vm_ws(text, rec))
    ev = rec.events
    umount = _first(ev, lambda a: a[0] == "umount")
    flush = _first(ev, lambda a: a[:2] == ["multipath", "-f"])
    delete = _first(ev, lambda a: a[0] == "blockdev" and "--flushbufs" in a)
    logout = _first(ev, lambda a: "--logout" in a)
    assert umount < flush < delete < logout, [a for _, a in ev]
    assert ev[flush][1][2] == out["map_name"] or ev[flush][1][2].startswith("3")
    log = vm_lab.sim.request_log()[start:]
    acl = next(i for i, e in enumerate(log) if e["method"] == "PUT"
               and e["path"].endswith("/acl_policy/initiators"))
    assert ev[logout][0] - start <= acl
    assert kernel_state(guest) == {"sessions": [], "disks": [], "maps": [], "mounts": []}


@pytest.mark.parametrize("mutual", [False, True], ids=["one-way", "mutual"])
def test_chap_right_secret_logs_in_wrong_secret_refused(guest, vm_ws, dsp, mutual):
    """The kernel logs in with the volume's CHAP (one-way, or mutual: the initiator checks
    the target too). With the attachment gone and the volume's CHAP kept (its Volume does
    not declare CHAP, so it leaves it alone), an attachment with a wrong secret (ours, or
    the target's for mutual) is refused with the CHAP error and leaves no session, node
    record or ACL entry; the right secret then logs in again."""
    name = "chapm" if mutual else "chap1"
    props = {"chapUsername": "chapuser", "chapSecret": "Right-Secret-01"}
    if mutual:
        props |= {"chapMutualUsername": "targetuser", "chapMutualSecret": "Target-Secret-2"}
    ws = vm_ws(stack(guest, name, **props))
    up_ok(ws)
    assert len(kernel_state(guest)["sessions"]) == 2
    iqn = outputs(ws)["iqn"]
    up_ok(vm_ws(stack(guest, name).split("  a:\n")[0]))
    assert kernel_state(guest)["sessions"] == []
    [ai] = [a for a in dsp.list("/app_instances", tenant="/root") if a["name"] == name]
    auth = ai["storage_instances"][0]["auth"]
    assert auth["type"] == ("mchap" if mutual else "chap"), auth

    wrong = dict(props)
    wrong["chapMutualSecret" if mutual else "chapSecret"] = "Wrong-Secret-99"
    _, result = vm_ws(stack(guest, name, **wrong)).up()
    assert result is not None and not result.ok
    msg = result.failures[0].message
    assert "CHAP" in msg and "Wrong-Secret-99" not in msg, msg
    assert kernel_state(guest) == {"sessions": [], "disks": [], "maps": [], "mounts": []}
    for portal in ("10.0.2.100:3260", "10.0.2.101:3260"):
        assert guest.sh(f"iscsiadm -m node -T {iqn} -p {portal} >/dev/null 2>&1; "
                        "echo $?").strip() == "21"
    [ai] = [a for a in dsp.list("/app_instances", tenant="/root") if a["name"] == name]
    assert ai["storage_instances"][0]["acl_policy"]["initiators"] == []

    up_ok(vm_ws(stack(guest, name, **props)))
    assert len(kernel_state(guest)["sessions"]) == 2
    destroy_ok(vm_ws(stack(guest, name, **props)))
    assert kernel_state(guest) == {"sessions": [], "disks": [], "maps": [], "mounts": []}


def test_two_attachments_of_one_volume(guest, vm_lab, vm_ws, dsp):
    """One volume attached to two nodes (two guests, two initiators): both see the same
    disk (what one writes, the other reads, O_DIRECT); destroying one attachment leaves
    the other's sessions, map and ACL entry alone."""
    second = vm_lab.boot("node2") if len(vm_lab.guests) < 2 else vm_lab.guests[1]
    text = stack(guest, "shared") + (
        "  b:\n    type: datera:index:NodeAttachment\n    properties:\n"
        f"      volumeId: ${{v.id}}\n      node: \"{second.node}\"\n"
        f"      port: 3260\n      lun: {DATA_LUN}\n")
    ws = vm_ws(text)
    up_ok(ws)
    a, b = outputs(ws, "a"), outputs(ws, "b")
    assert a["wwid"] == b["wwid"] and a["initiator_iqn"] != b["initiator_iqn"]
    guest.sh(f"printf 'shared-block-0001' | dd of={a['device_path']} bs=4096 conv=sync "
             "oflag=direct 2>/dev/null")
    seen = second.sh(f"dd if={b['device_path']} bs=4096 count=1 iflag=direct 2>/dev/null")
    assert seen.startswith("shared-block-0001")
    ws = vm_ws(text.split("  b:\n")[0])  # drop b only
    up_ok(ws)
    assert kernel_state(second)["sessions"] == []
    assert len(kernel_state(guest)["sessions"]) == 2
    [ai] = [x for x in dsp.list("/app_instances", tenant="/root") if x["name"] == "shared"]
    acl = ai["storage_instances"][0]["acl_policy"]["initiators"]
    assert [i["path"].rsplit("/", 1)[1] for i in acl] == [a["initiator_iqn"]]
    assert ai["admin_state"] == "online"
    destroy_ok(ws)
