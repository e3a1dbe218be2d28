"""Consistency groups from a YAML stack against the simulator (issue 18): a group (one
app_instance holding several volumes), a group snapshot (every member at one instant), a
clone of the group from that snapshot, a revert of the group to it (a plan-visible update:
offline, PUT restore_point on the app_instance, online), and deletion: a group with a
snapshot made outside the stack is refused, naming it, unless ``cascade``."""

from __future__ import annotations

import json

from datera_iac.cli import main

STACK = """
name: groups
runtime: yaml
resources:
  g:
    type: datera:index:ConsistencyGroup
    properties:
      name: app-g
%(g)s
  s:
    type: datera:index:ConsistencyGroupSnapshot
    properties:
      groupId: ${g.id}
%(clone)s
"""
CLONE = """
  c:
    type: datera:index:ConsistencyGroup
    properties:
      name: app-g-clone
      volumes:
        data: 3
        log: 1
      snapshotId: ${s.id}
"""
AI_PUT = "PUT /v2.2/app_instances/:id"


def _write(path, g: str = "", clone: str = "", vols: str = "data: 2\nlog: 1") -> list[str]:
    g = "volumes:\n" + "\n".join("  " + ln for ln in vols.splitlines()) + "\n" + g
    path.write_text(STACK % {"g": "\n".join("      " + ln for ln in g.splitlines()),
                             "clone": clone})
    return ["-f", str(path)]


def _ais(dsp) -> dict[str, dict]:
    return {a["name"]: a for a in dsp.list("/app_instances")}


def test_group_snapshot_clone_restore_delete(sim, dsp_client, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    f = tmp_path / "Pulumi.yaml"
    common = ["--endpoint", sim.http_url]
    assert main(["up", *_write(f, clone=CLONE), *common, "--yes"]) == 0
    ais = _ais(dsp_client)
    g, c = ais["app-g"], ais["app-g-clone"]
    vols = {v["name"]: v["size"] for v in g["storage_instances"][0]["volumes"]}
    assert vols == {"data": 2, "log": 1}
    [snap] = g["snapshots"]
    ts = str(snap["timestamp"])
    assert c["clone_src"]["path"].endswith(f"/snapshots/{ts}")
    assert {v["name"]: v["size"] for v in c["storage_instances"][0]["volumes"]} == {
        "data": 3, "log": 1}
    capsys.readouterr()
    assert main(["preview", *_write(f, clone=CLONE), *common, "--detailed-exitcode"]) == 0

    # revert the whole group to its snapshot: an update the plan shows
    args = _write(f, f"restorePoint: '{ts}'", CLONE)
    capsys.readouterr()
    assert main(["preview", *args, *common, "--detailed-exitcode", "--json"]) == 2
    acts = [(a["name"], a["action"], [ch["field"] for ch in a["changes"]])
            for a in json.loads(capsys.readouterr().out)["actions"]]
    assert acts == [("g", "update", ["restore_point"])], acts
    before = dict(sim.counters())
    assert main(["up", *args, *common, "--yes"]) == 0
    puts = sim.counters().get(AI_PUT, 0) - before.get(AI_PUT, 0)
    assert puts == 3  # offline, restore_point, online
    g = _ais(dsp_client)["app-g"]
    assert g["restore_point"] == ts and g["admin_state"] == "online"
    assert main(["preview", *args, *common, "--detailed-exitcode"]) == 0

    # in use: a revert is refused before any write unless forced
    theirs = str(dsp_client.post(f"{g['path']}/snapshots",
                                 {"uuid": "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"})["timestamp"])
    iqn = "iqn.1993-08.org.debian:01:app"
    sim.log_in(g["id"], iqn, tenant="/root")
    args = _write(f, f"restorePoint: '{theirs}'", CLONE)
    capsys.readouterr()
    before = dict(sim.counters())
    assert main(["up", *args, *common, "--yes"]) != 0
    err = capsys.readouterr().err
    assert "in use" in err and iqn in err and "force_restore" in err, err
    assert sim.counters().get(AI_PUT, 0) == before.get(AI_PUT, 0)
    args = _write(f, f"restorePoint: '{theirs}'\nforceRestore: true", CLONE)
    assert main(["up", *args, *common, "--yes"]) == 0
    assert _ais(dsp_client)["app-g"]["restore_point"] == theirs

    # members grow and are added in place; one cannot be removed or shrunk
    vols = "data: 4\nlog: 1\nidx: 1"
    assert main(["up", *_write(f, f"restorePoint: '{theirs}'", CLONE, vols), *common,
                 "--yes"]) == 0
    g = _ais(dsp_client)["app-g"]
    assert {v["name"]: v["size"] for v in g["storage_instances"][0]["volumes"]} == {
        "data": 4, "log": 1, "idx": 1}
    capsys.readouterr()
    assert main(["preview", *_write(f, "", CLONE, "data: 4\nidx: 1"), *common]) != 0
    out = capsys.readouterr()
    assert "volumes.log" in out.out + out.err and "delete their data" in out.out + out.err
    assert main(["preview", *_write(f, "", CLONE, "data: 3\nlog: 1\nidx: 1"), *common]) != 0
    assert "cannot shrink member data" in "".join(capsys.readouterr())

    # delete: the snapshot made outside the stack refuses it; cascade lets it go
    assert main(["up", *_write(f, "", "", vols), *common, "--yes"]) == 0  # the clone leaves
    assert "app-g-clone" not in _ais(dsp_client)
    f.write_text("name: groups\nruntime: yaml\nresources: {}\n")
    capsys.readouterr()
    assert main(["up", "-f", str(f), *common, "--yes"]) != 0
    out = capsys.readouterr()
    assert f"{theirs} of group app-g" in out.out + out.err, out
    assert "cascade" in out.out + out.err
    assert "app-g" in _ais(dsp_client)
    assert main(["up", *_write(f, "cascade: true", "", vols), *common, "--yes"]) == 0
    f.write_text("name: groups\nruntime: yaml\nresources: {}\n")
    assert main(["up", "-f", str(f), *common, "--yes"]) == 0
    assert _ais(dsp_client) == {}
