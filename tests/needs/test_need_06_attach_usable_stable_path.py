"""user-needs §2.6: attach returns only when the device is usable, and exposes a stable path.

Acceptance: after the attachment resource is created (engine ``up`` with a fake node whose
devices show up late), its ``device_path`` exists, is ``/dev/disk/by-id/dm-uuid-mpath-<wwid>``,
its WWID matches the volume's serial, the size was read through it (usable, not just
linked) and the session count equals the portal count. A device whose WWID is not the
volume's is refused (tests/node/test_iscsi.py::test_wwid_mismatch_refuses_device covers the
helper; here through the kind).
"""

from __future__ import annotations

import os

import pytest
from needkit import app_instances, engine_ws, sim_fabric_node

from datera_iac.node.iscsi import wwid_for_serial

STACK = """\
name: need06
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: att-vol
      size: 2
  a:
    type: datera:index:NodeAttachment
    properties:
      volumeId: ${v.id}
"""


def test_attach_waits_for_a_usable_by_id_device_matching_the_serial(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "node", dsp)
    node.device_delay = 3  # the kernel creates the sd devices a few polls after login
    ws = engine_ws(sim, tmp_path / "stack", STACK, runner=node)
    _, result = ws.up()
    assert result.ok, result.failures
    out = ws.load_state().resources["a"].outputs
    [ai] = app_instances(dsp)
    si = ai["storage_instances"][0]
    wwid = wwid_for_serial(si["volumes"][0]["uuid"])
    assert out["wwid"] == wwid
    assert out["device_path"] == f"{node.dev_root}/disk/by-id/dm-uuid-mpath-{wwid}"
    assert os.path.exists(out["device_path"])
    assert out["paths_up"] == len(si["access"]["ips"]) == len(out["portals"]) == len(node.sessions)
    # usable: its size was read through the stable path before create returned
    assert ["blockdev", "--getsize64", out["device_path"]] in node.commands
    assert out["size_bytes"] == 2 << 30


def _refused_attach(sim, dsp, tmp_path):
    """Attach to a volume whose LUN answers with another volume's WWID/serial; returns the
    node after the (expected) refusal."""
    from datera_iac.errors import NodeError

    node = sim_fabric_node(tmp_path / "node", dsp)
    node.device_delay = 0
    ws = engine_ws(sim, tmp_path / "stack", STACK.split("  a:\n")[0], runner=node)
    assert ws.up()[1].ok
    node.sync()
    for t in node.targets.values():  # a stale LUN (another volume's WWID) answers instead
        t.luns[0].wwid, t.luns[0].serial = wwid_for_serial("ffff" * 8), "ffff" * 8
    from datera_iac.resources.base import kind_for

    k = kind_for("NodeAttachment")
    ctx = ws.context()
    vid = ws.load_state().resources["v"].id
    with pytest.raises(NodeError, match="another volume"):
        k.create(ctx, k.spec_from({"volume_id": vid}))
    si = app_instances(dsp)[0]["storage_instances"][0]
    assert si["acl_policy"]["initiators"] == []
    return node


def test_wrong_wwid_is_refused_and_the_acl_is_undone(sim, dsp, tmp_path):
    _refused_attach(sim, dsp, tmp_path)


def test_wrong_wwid_leaves_no_session(sim, dsp, tmp_path):
    node = _refused_attach(sim, dsp, tmp_path)
    assert node.sessions == {}
