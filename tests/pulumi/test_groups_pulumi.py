"""Consistency groups in the Pulumi provider, over gRPC against the simulator (issue 18):
Check/Create a group of two volumes, a group snapshot, a clone from it; Diff shows a
revert (restorePoint) as an in-place update and Update reverts the whole group; Delete of
a group with a snapshot made outside the stack is refused with nothing written, unless
the recorded declaration has cascade."""

from __future__ import annotations

import grpc
import pytest

from datera_iac.pulumi.testing import plain

G = "datera:index:ConsistencyGroup"
GS = "datera:index:ConsistencyGroupSnapshot"


def _writes(sim) -> int:
    return sum(n for k, n in sim.counters().items()
               if k.split()[0] in ("POST", "PUT", "DELETE") and "/v2." in k and "login" not in k)


def test_group_lifecycle_pulumi(plugin, sim, dsp):
    from datera_iac.pulumi._codec import Secret
    from pulumi.runtime.proto import provider_pb2 as pb

    rpc, _ = plugin
    rpc.configure(endpoint=sim.http_url, sanLogin="admin",
                  sanPassword=Secret(sim.users["admin"]), datera503Timeout=5)
    inputs = plain(rpc.check(G, "g", {"name": "pu-group",
                                      "volumes": {"data": 2, "log": 1}}).inputs)
    made = rpc.create(G, "g", inputs)
    gid, state = made.id, plain(made.properties)
    snap = rpc.create(GS, "s", plain(rpc.check(GS, "s", {"groupId": gid}).inputs))
    ts = plain(snap.properties)["timestamp"]
    clone = rpc.create(G, "c", plain(rpc.check(G, "c", {
        "name": "pu-group-clone", "volumes": {"data": 2, "log": 1},
        "snapshotId": snap.id}).inputs))
    ais = {a["name"]: a for a in dsp.list("/app_instances")}
    assert ais["pu-group-clone"]["clone_src"]["path"].endswith(f"/snapshots/{ts}")

    want = plain(rpc.check(G, "g", {**inputs, "restorePoint": ts}, olds=inputs).inputs)
    d = rpc.diff(G, "g", gid, state, want)
    assert d.changes == pb.DiffResponse.DIFF_SOME and list(d.replaces) == []
    assert list(d.detailedDiff) == ["restorePoint"]
    state = plain(rpc.update(G, "g", gid, state, want).properties)
    assert dsp.get(f"/app_instances/{state['aiId']}")["restore_point"] == ts

    rpc.delete(G, "c", clone.id, plain(clone.properties))
    rpc.delete(GS, "s", snap.id, plain(snap.properties))
    theirs = str(dsp.post(f"/app_instances/{state['aiId']}/snapshots",
                          {"uuid": "8c1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"})["timestamp"])
    before = _writes(sim)
    with pytest.raises(grpc.RpcError) as e:
        rpc.delete(G, "g", gid, state)
    assert f"{theirs} of group pu-group" in e.value.details() and "cascade" in e.value.details()
    assert _writes(sim) == before
    rpc.delete(G, "g", gid, {**state, "cascade": True})
    assert list(dsp.list("/app_instances")) == []
