"""user-needs §2.2: grow in place, refuse shrink at plan time, extend while attached.

Acceptance: 10→20 GiB on an attached volume plans "update in place", sends one extend
request, keeps the app_instance id and the node session (and the node sees the new size);
20→10 fails at plan with a message and 0 write requests. Engine end to end; the Terraform
and Pulumi front ends use the same Kind.diff (their shrink/extend tests:
tests/terraform/test_sim_e2e.py::test_replace_shrink_and_out_of_band_delete,
tests/pulumi/test_lifecycle_sim.py::test_volume_lifecycle) and the Pulumi diff is checked here.
"""

from __future__ import annotations

import pytest
from needkit import (
    app_instances,
    configure,
    delta,
    engine_ws,
    sim_fabric_node,
    writes_of,
)

STACK = """\
name: need02
runtime: yaml
config:
  size: {type: integer, default: 10}
resources:
  v:
    type: datera:index:Volume
    properties:
      name: grow-vol
      size: ${size}
  a:
    type: datera:index:NodeAttachment
    properties:
      volumeId: ${v.id}
      volumeSize: ${v.size}
"""


def test_extend_attached_in_place_and_refuse_shrink(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda **c: engine_ws(sim, tmp_path / "stack", STACK, runner=node, config=c)
    _, result = ws().up()
    assert result.ok, result.failures
    [ai] = app_instances(dsp)
    sessions = dict(node.sessions)
    assert len(sessions) == 2

    grow = ws(size="20").preview()
    acts = {s.name: s.action for s in grow.changes}
    assert acts["v"] == "update" and set(acts.values()) == {"update"}, acts
    before = writes_of(sim)
    _, result = ws(size="20").up()
    assert result.ok, result.failures
    sent = delta(writes_of(sim), before)
    # exactly one extend (a PUT of the volume's size); no POST, no DELETE, no offline flip
    assert sent == {"PUT /v2.2/app_instances/:id/storage_instances/:storage_instance_name"
                    "/volumes/:volume_name": 1}, sent
    [ai2] = app_instances(dsp)
    assert ai2["id"] == ai["id"] and ai2["storage_instances"][0]["volumes"][0]["size"] == 20
    assert node.sessions == sessions  # no logout/login

    before = writes_of(sim)
    shrink = ws(size="10").preview()
    assert shrink.errors and "shrink" in " ".join(map(str, shrink.errors))
    _, result = ws(size="10").up()
    assert writes_of(sim) == before  # 0 write requests
    assert app_instances(dsp)[0]["storage_instances"][0]["volumes"][0]["size"] == 20


def test_engine_up_rescans_the_node(sim, dsp, tmp_path):
    """After the extend, the attachment's node sees the new size (size_bytes): the
    attachment's volumeSize: ${v.size} re-plans and rescans every path."""
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda **c: engine_ws(sim, tmp_path / "stack", STACK, runner=node, config=c)
    assert ws().up()[1].ok
    assert ws(size="20").up()[1].ok
    assert ws().load_state().resources["a"].outputs["size_bytes"] == 20 << 30


def test_pulumi_diff_grow_update_shrink_check_failure(plugin, sim):
    from pulumi.runtime.proto import provider_pb2 as pb

    from datera_iac.pulumi.testing import plain

    V = "datera:index:Volume"
    configure(plugin, sim)
    inputs = plain(plugin.check(V, "grow-p", {"size": 10}).inputs)
    made = plugin.create(V, "grow-p", inputs)
    state = plain(made.properties)
    d = plugin.diff(V, "grow-p", made.id, state, {**inputs, "size": 20})
    assert d.changes == pb.DiffResponse.DIFF_SOME and list(d.replaces) == []
    state = plain(plugin.update(V, "grow-p", made.id, state, {**inputs, "size": 20}).properties)
    before = writes_of(sim)
    # the engine checks the new inputs against the last ones before any diff: a shrink
    # stops preview and up there (Diff itself reports it as an update, because the
    # engine's refresh calls Diff with the sides swapped)
    shrink = plugin.check(V, "grow-p", {**inputs, "size": 10}, olds={**inputs, "size": 20})
    assert [f.property for f in shrink.failures] == ["size"]
    assert "shrink" in shrink.failures[0].reason
    assert writes_of(sim) == before


FS_STACK = STACK.replace("      volumeSize: ${v.size}\n",
                         "      volumeSize: ${v.size}\n      filesystem: ext4\n"
                         "      mountPoint: /mnt/grow\n")


def _lun(node):
    node.sync()
    [t] = node.targets.values()
    return t.luns[0]


def test_a15_the_mounted_filesystem_grows_online_after_the_rescan(sim, dsp, tmp_path):
    """user-needs A15: after the extend, every path is rescanned and the map resized, the
    node's new size verified, and only then the mounted ext4 grown online (resize2fs on
    the stable device); sessions and the mount are kept, nothing is formatted."""
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda **c: engine_ws(sim, tmp_path / "stack", FS_STACK, runner=node, config=c)
    assert ws().up()[1].ok
    lun = _lun(node)
    assert lun.fs_size == 10 << 30
    sessions, mounts = dict(node.sessions), dict(node.mounts)
    node.commands.clear()
    _, result = ws(size="20").up()
    assert result.ok, result.failures
    grows = [i for i, c in enumerate(node.commands) if c[0] == "resize2fs"]
    resizes = [i for i, c in enumerate(node.commands) if c[:2] == ["multipathd", "resize"]]
    assert len(grows) == 1 and resizes and resizes[-1] < grows[0], node.commands
    assert node.commands[grows[0]][-1] == node.mounts["/mnt/grow"]  # the mounted device
    assert lun.fs_size == 20 << 30
    assert node.sessions == sessions and node.mounts == mounts
    assert not [c for c in node.commands if c[0].startswith("mkfs") or c[0] in ("umount", "mount")]
    assert not ws(size="20").preview().changes


def test_a15_grow_filesystem_false_only_rescans(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "node", dsp)
    text = FS_STACK.replace("      mountPoint: /mnt/grow\n",
                            "      mountPoint: /mnt/grow\n      growFilesystem: false\n")
    ws = lambda **c: engine_ws(sim, tmp_path / "stack", text, runner=node, config=c)
    assert ws().up()[1].ok
    node.commands.clear()
    assert ws(size="20").up()[1].ok
    assert not [c for c in node.commands if c[0] == "resize2fs"]
    assert _lun(node).fs_size == 10 << 30
    assert ws().load_state().resources["a"].outputs["size_bytes"] == 20 << 30


def test_a15_a_failed_grow_names_the_fix_and_the_next_up_finishes_it(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda **c: engine_ws(sim, tmp_path / "stack", FS_STACK, runner=node, config=c)
    assert ws().up()[1].ok
    node.fail["resize2fs"] = (1, "resize2fs: Permission denied to resize filesystem\n")
    _, result = ws(size="20").up()
    (failure,) = result.failures
    assert failure.name == "a" and "Permission denied" in failure.message
    assert "grow it by hand" in failure.message
    assert _lun(node).fs_size == 10 << 30
    del node.fail["resize2fs"]
    (step,) = ws(size="20").preview().changes  # still planned: nothing was recorded as done
    assert step.name == "a"
    assert ws(size="20").up()[1].ok
    assert _lun(node).fs_size == 20 << 30
    assert not ws(size="20").preview().changes


def test_a15_another_disk_at_the_mount_point_is_not_grown(sim, dsp, tmp_path):
    """The volume's filesystem was unmounted behind our back and another disk mounted at
    the mount point: the volume grows, but no grow runs on that other filesystem, nothing
    is mounted over it, and the run says what is in the way (the attachment's re-mount)."""
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda **c: engine_ws(sim, tmp_path / "stack", FS_STACK, runner=node, config=c)
    assert ws().up()[1].ok
    node.run(["umount", "/mnt/grow"])
    node.run(["mount", "/dev/sdz", "/mnt/grow"])
    assert ws().load_state().resources["a"].outputs["mounted_at"] == "/mnt/grow"
    node.commands.clear()
    _, result = ws(size="20").up()
    assert [(f.name, "/dev/sdz is mounted at /mnt/grow" in f.message)
            for f in result.failures] == [("a", True)], result.failures
    assert not [c for c in node.commands if c[0] in ("resize2fs", "xfs_growfs", "btrfs")]
    assert not [c for c in node.commands if c[0] in ("mount", "umount")]
    assert node.mounts == {"/mnt/grow": "/dev/sdz"}
