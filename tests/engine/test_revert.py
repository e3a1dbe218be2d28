"""Revert a volume to one of its snapshots in place (the DSP's restore point), from a YAML
stack: the revert is an update the plan shows (``restore_point``), applied as the DSP
wants it (app_instance offline, PUT restore_point on the volume, online again), refused
before any write while initiators are logged in unless ``forceRestore`` is set, and a
trigger: the same value again plans nothing."""

from __future__ import annotations

import json

from datera_iac.cli import main

STACK = """
name: revert
runtime: yaml
resources:
  t:
    type: datera:index:Tenant
    properties:
      name: team-r
  v:
    type: datera:index:Volume
    properties:
      name: db-r
      size: 2
      tenant: ${t.id}
%(extra)s
  s1:
    type: datera:index:Snapshot
    properties:
      volumeId: ${v.id}
  s2:
    type: datera:index:Snapshot
    properties:
      volumeId: ${v.id}
    options:
      dependsOn:
        - ${s1}
"""
TENANT = "/root/team-r"
VOL_PUT = "PUT /v2.2/app_instances/:id/storage_instances/:storage_instance_name/volumes/:volume_name"
AI_PUT = "PUT /v2.2/app_instances/:id"


def _stack(path, extra: str = "") -> str:
    path.write_text(STACK % {"extra": "\n".join("      " + ln for ln in extra.splitlines())})
    return str(path)


def _volume(dsp, ai_id: str) -> tuple[dict, dict]:
    ai = dsp.get(f"/app_instances/{ai_id}", tenant=TENANT)
    return ai, ai["storage_instances"][0]["volumes"][0]


def _puts(sim, before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in sim.counters().items()
            if k.split()[0] in ("PUT", "POST", "DELETE") and "login" not in k
            and n != before.get(k, 0)}


def test_revert_is_planned_applied_offline_and_refused_in_use(sim, sim_ws, dsp_client, tmp_path,
                                                              capsys):
    f = tmp_path / "Pulumi.yaml"
    common = ["--endpoint", sim.http_url]
    ws = sim_ws(STACK % {"extra": ""})
    plan, result = ws.up()
    assert result.ok, result.failures
    state = ws.load_state().resources
    ai_id = state["v"].id.rsplit("/", 1)[1]
    ts1 = state["s1"].id.rsplit("/", 1)[1]
    ts2 = state["s2"].id.rsplit("/", 1)[1]
    _ai, vol = _volume(dsp_client, ai_id)
    assert vol["restore_point"] == ""

    # declared: the plan shows the revert as an update of restore_point
    _stack(f, f"restorePoint: '{ts1}'")
    capsys.readouterr()
    assert main(["preview", "-f", str(f), *common, "--detailed-exitcode", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    acts = [(a["name"], a["action"], [c["field"] for c in a["changes"]]) for a in doc["actions"]]
    assert acts == [("v", "update", ["restore_point"])], acts
    before = sim.counters()
    assert main(["up", "-f", str(f), *common, "--yes"]) == 0
    ai, vol = _volume(dsp_client, ai_id)
    assert vol["restore_point"] == ts1 and ai["admin_state"] == "online"
    puts = _puts(sim, before)
    assert puts == {VOL_PUT: 1, AI_PUT: 2}, puts  # offline, restore, online
    capsys.readouterr()
    # a trigger: the same restore point again is no change
    assert main(["preview", "-f", str(f), *common, "--detailed-exitcode"]) == 0

    # in use: an initiator is logged in; the revert is refused before any write
    iqn = "iqn.1993-08.org.debian:01:app"
    sim.log_in(ai_id, iqn, tenant=TENANT)
    _stack(f, f"restorePoint: '{state['v'].id}/{ts2}'")  # the snapshot id form
    before = sim.counters()
    assert main(["up", "-f", str(f), *common, "--yes"]) != 0
    err = capsys.readouterr().err
    assert "in use" in err and iqn in err and "force_restore" in err, err
    assert _puts(sim, before) == {}
    ai, vol = _volume(dsp_client, ai_id)
    assert vol["restore_point"] == ts1 and ai["storage_instances"][0]["active_initiators"]

    # forced: reverted under the initiator (the offline flip drops its session)
    _stack(f, f"restorePoint: '{state['v'].id}/{ts2}'\nforceRestore: true")
    assert main(["up", "-f", str(f), *common, "--yes"]) == 0
    ai, vol = _volume(dsp_client, ai_id)
    assert vol["restore_point"] == ts2 and ai["admin_state"] == "online"
    assert ai["storage_instances"][0]["active_initiators"] == []
    capsys.readouterr()
    assert main(["preview", "-f", str(f), *common, "--detailed-exitcode"]) == 0


def test_revert_refusals_name_the_field(sim, sim_ws, tmp_path, capsys):
    """A restore point on a volume being created, a snapshot of another volume, and a
    timestamp the volume has no snapshot for: each one clear error, no revert."""
    f = tmp_path / "Pulumi.yaml"
    common = ["--endpoint", sim.http_url]
    _stack(f, "restorePoint: '1446076293.118600738'")
    assert main(["up", "-f", str(f), *common, "--yes"]) != 0
    err = capsys.readouterr().err
    assert "restore_point" in err and "being created" in err, err

    ws = sim_ws(STACK % {"extra": ""})
    assert ws.up()[1].ok
    vid = ws.load_state().resources["v"].id
    _stack(f, "restorePoint: '1446076293.118600738'")
    assert main(["up", "-f", str(f), *common, "--yes"]) != 0
    err = capsys.readouterr().err
    assert "no snapshot 1446076293.118600738" in err and "ls snapshots" in err, err
    ts = ws.load_state().resources["s1"].id.rsplit("/", 1)[1]
    _stack(f, f"restorePoint: '/root/team-r/00000000-1111-2222-3333-444444444444/{ts}'")
    assert main(["up", "-f", str(f), *common, "--yes"]) != 0
    assert "another volume" in capsys.readouterr().err
    _stack(f, "restorePoint: 'yesterday'")
    assert main(["preview", "-f", str(f), *common]) != 0
    out = capsys.readouterr()
    assert "restore_point" in out.out + out.err
    assert "neither a snapshot timestamp" in out.out + out.err
    assert vid
