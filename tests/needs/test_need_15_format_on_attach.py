"""user-needs §2.15: format-on-attach that cannot destroy data.

Acceptance (engine ``up`` of a NodeAttachment with ``filesystem: ext4``, fake node): a
volume that already carries a filesystem is never given to ``mkfs`` (its own ext4 is
mounted as is, another one is refused); the probe runs only after the device has settled
(every path's device present, ``udevadm settle`` first when udev exists), also when the
devices show up late; a probe error is an error, never a reason to format, and leaves
nothing behind. The real tools (blkid/wipefs/mkfs.ext4 on image files) are
tests/node/test_fs.py.
"""

from __future__ import annotations

from needkit import app_instances, engine_ws, sim_fabric_node

HEAD = "name: need15\nruntime: yaml\nresources:\n  v:\n    type: datera:index:Volume\n" \
       "    properties:\n      name: data-vol\n      size: 1\n"
ATT = "  a:\n    type: datera:index:NodeAttachment\n    properties:\n      volumeId: ${v.id}\n" \
      "      filesystem: ext4\n      mountPoint: /mnt/data\n"

INSTALLED = ("iscsiadm", "multipath", "multipathd", "blkid", "wipefs", "mkfs.ext4", "mkfs.xfs",
             "blockdev", "mount", "umount", "udevadm")


def _node(tmp_path, dsp):
    return sim_fabric_node(tmp_path / "node", dsp, installed=INSTALLED)


def _lun(node):
    node.sync()
    [t] = node.targets.values()
    return t.luns[0]


def _mkfs(node):
    return [c for c in node.commands if c[0].startswith("mkfs")]


def test_existing_filesystem_is_never_formatted(sim, dsp, tmp_path):
    node = _node(tmp_path, dsp)
    ws = lambda t: engine_ws(sim, tmp_path / "s", t, runner=node)
    assert ws(HEAD).up()[1].ok
    _lun(node).signature = "ext4"  # data written by a previous user of the volume
    node.device_delay = 2  # devices appear a few polls after login
    _, result = ws(HEAD + ATT).up()
    assert result.ok, result.failures
    assert _mkfs(node) == []
    assert node.mounts  # mounted as it is
    cmds = node.commands
    probe = next(i for i, c in enumerate(cmds) if c[0] in ("blkid", "wipefs"))
    settle = next(i for i, c in enumerate(cmds) if c[:2] == ["udevadm", "settle"])
    size_read = next(i for i, c in enumerate(cmds) if c[:2] == ["blockdev", "--getsize64"])
    logins = [i for i, c in enumerate(cmds) if "--login" in c]
    assert len(logins) == 2 and max(logins) < size_read < settle < probe


def test_other_filesystem_is_refused_and_nothing_left(sim, dsp, tmp_path):
    node = _node(tmp_path, dsp)
    ws = lambda t: engine_ws(sim, tmp_path / "s", t, runner=node)
    assert ws(HEAD).up()[1].ok
    _lun(node).signature = "xfs"
    _, result = ws(HEAD + ATT).up()
    assert not result.ok
    assert "refusing to format" in str(result.failures)
    assert _mkfs(node) == [] and node.sessions == {} and not node.mounts
    assert app_instances(dsp)[0]["storage_instances"][0]["acl_policy"]["initiators"] == []


def test_probe_error_is_an_error_never_a_format(sim, dsp, tmp_path):
    node = _node(tmp_path, dsp)
    ws = lambda t: engine_ws(sim, tmp_path / "s", t, runner=node)
    assert ws(HEAD).up()[1].ok
    node.probe_error = True
    _, result = ws(HEAD + ATT).up()
    assert not result.ok and "blkid" in str(result.failures)
    assert _mkfs(node) == [] and node.sessions == {}


def test_blank_volume_is_formatted_once(sim, dsp, tmp_path):
    node = _node(tmp_path, dsp)
    ws = lambda t: engine_ws(sim, tmp_path / "s", t, runner=node)
    assert ws(HEAD + ATT).up()[1].ok
    assert [c[0] for c in _mkfs(node)] == ["mkfs.ext4"]
    assert ws(HEAD).up()[1].ok  # detach
    node.commands.clear()
    assert ws(HEAD + ATT).up()[1].ok  # re-attach: the ext4 it made is kept
    assert _mkfs(node) == []


def test_another_disk_at_the_mount_point_is_refused_and_nothing_left(sim, dsp, tmp_path):
    """Something else is mounted where the attachment would mount the volume: the attach
    is refused naming it (nothing mounted over it, nothing formatted), and what the attach
    did is undone. It used to report the attachment as mounted there."""
    node = _node(tmp_path, dsp)
    ws = lambda t: engine_ws(sim, tmp_path / "s", t, runner=node)
    assert ws(HEAD).up()[1].ok
    node.run(["mount", "/dev/sdz", "/mnt/data"])
    node.commands.clear()
    _, result = ws(HEAD + ATT).up()
    assert not result.ok and "/dev/sdz is mounted at /mnt/data" in str(result.failures)
    assert _mkfs(node) == [] and node.sessions == {}
    assert node.mounts == {"/mnt/data": "/dev/sdz"}
    assert app_instances(dsp)[0]["storage_instances"][0]["acl_policy"]["initiators"] == []


def test_a_re_run_create_never_undoes_an_attachment_in_use(sim, dsp, tmp_path):
    """The volume is attached and mounted on the node but the state lost it (a create runs
    again): when that create fails, the map, the mount and the sessions in use stay."""
    from datera_iac.errors import NodeError
    from datera_iac.node.iscsi import IscsiHelper

    node = _node(tmp_path, dsp)
    ws = lambda t: engine_ws(sim, tmp_path / "s", t, runner=node)
    assert ws(HEAD + ATT).up()[1].ok
    mounted, sessions = dict(node.mounts), dict(node.sessions)
    import json
    from pathlib import Path
    # the state forgets the attachment
    state_file = next(Path(tmp_path / "s" / ".datera-iac").glob("*/dev.json"))
    doc = json.loads(state_file.read_text())
    doc["resources"] = [r for r in doc["resources"] if r["name"] != "a"]
    state_file.write_text(json.dumps(doc))
    node.commands.clear()
    real = IscsiHelper._verify_wwid

    def refuse(self, t, devices):
        raise NodeError("WWID check failed (test)")

    IscsiHelper._verify_wwid = refuse
    try:
        _, result = ws(HEAD + ATT).up()
    finally:
        IscsiHelper._verify_wwid = real
    assert [f.action for f in result.failures] == ["create"], result.failures
    assert not [c for c in node.commands
                if c[:2] in (["multipathd", "disablequeueing"], ["multipath", "-f"])
                or "--logout" in c or c[:1] == ["umount"]], node.commands
    assert node.mounts == mounted and node.sessions == sessions
