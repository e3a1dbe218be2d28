"""user-needs §2.14: several attachments per volume, parallel-safe, each removable alone.

Acceptance: 3 attachment resources for one volume applied by the engine with parallelism
10 → the ACL holds 3 initiators and each node sees the LUN (a usable multipath device of
the volume's WWID); removing one attachment from the stack leaves the other two logged in,
their devices present and the volume online. "Writable" is the kernel's business here: the
node side is a fake (no kernel iSCSI on CI); writing through a live target is
tests/node/test_attachment.py::test_live_target_chap_acl_detach (tgt).
"""

from __future__ import annotations

import os

from needkit import app_instances, engine_ws, sim_fabric_node

NODES = [f"ssh://root@node{i}:22" for i in range(3)]


def _stack(nodes):
    text = ("name: need14\nruntime: yaml\nresources:\n  v:\n    type: datera:index:Volume\n"
            "    properties:\n      name: shared-vol\n      size: 1\n")
    for i, n in enumerate(NODES):
        if n in nodes:
            text += (f"  a{i}:\n    type: datera:index:NodeAttachment\n    properties:\n"
                     f"      volumeId: ${{v.id}}\n      node: {n}\n")
    return text


def test_three_attachments_in_parallel_then_remove_one(sim, dsp, tmp_path):
    fakes = {n: sim_fabric_node(tmp_path / f"n{i}", dsp, iqn=f"iqn.2024-01.org.example:n{i}")
             for i, n in enumerate(NODES)}
    ws = lambda nodes: engine_ws(sim, tmp_path / "s", _stack(nodes), runner=fakes,
                                 parallel=10)
    _, result = ws(NODES).up()
    assert result.ok, result.failures
    [ai] = app_instances(dsp)
    si = ai["storage_instances"][0]
    acl = sorted(i["path"].rsplit("/", 1)[-1] for i in si["acl_policy"]["initiators"])
    assert acl == sorted(f.initiator_iqn for f in fakes.values())
    state = ws(NODES).load_state().resources
    for i, f in enumerate(fakes.values()):
        out = state[f"a{i}"].outputs
        assert len(f.sessions) == 2 and os.path.exists(out["device_path"])
        assert out["paths_up"] == 2
    _, result = ws(NODES[1:]).up()
    assert result.ok, result.failures
    first, *rest = fakes.values()
    assert first.sessions == {}
    assert all(len(f.sessions) == 2 for f in rest)
    for i in (1, 2):
        assert os.path.exists(state[f"a{i}"].outputs["device_path"])
    [ai] = app_instances(dsp)
    si = ai["storage_instances"][0]
    assert ai["admin_state"] == "online"
    assert sorted(i["path"].rsplit("/", 1)[-1] for i in si["acl_policy"]["initiators"]) == \
        sorted(f.initiator_iqn for f in rest)
    assert not ws(NODES[1:]).preview().changes
