"""user-needs §3: attach / multipath failure modes, through the NodeAttachment kind against
the simulator (control plane real, node a FakeNode: no kernel iSCSI, dm-multipath or udev
on CI machines). Modes whose whole behaviour is in the node helper are tested there with
exact command sequences; docs/user-needs.md maps every mode (A1-A17) to its test or says
why it cannot be tested here.
"""

from __future__ import annotations

import os

import pytest
from needkit import app_instances, client_for, engine_ws, sim_fabric_node

from datera_iac.config import DateraConfig
from datera_iac.errors import NodeError
from datera_iac.resources.base import Context, Timeouts, kind_for

ATT = kind_for("NodeAttachment")
VOL = kind_for("Volume")


def _ctx(sim, runner):
    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                     "san_password": "password"}, use_env=False)
    return Context(client=client_for(sim), config=cfg, runner=runner,
                   timeouts=Timeouts(create=10, update=10, delete=10, read=10))


def _volume(ctx, name="fm-vol"):
    return VOL.create(ctx, VOL.spec_from({"name": name, "size": 1})).id


def _acl(dsp, name="fm-vol"):
    ai = next(a for a in app_instances(dsp) if a["name"] == name)
    return [i["path"].rsplit("/", 1)[-1] for i in ai["storage_instances"][0]["acl_policy"]["initiators"]]


def _portals(node):
    node.sync()
    [t] = node.targets.values()
    return t


def test_a1_one_portal_unreachable_attaches_degraded_and_reports_it(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "n", dsp)
    ctx = _ctx(sim, node)
    vid = _volume(ctx)
    t = _portals(node)
    node.unreachable[t.portals[1]] = 4  # one VIP black-holed
    obs = ATT.create(ctx, ATT.spec_from({"volume_id": vid}))
    assert obs.outputs.paths_up == 1 < len(obs.outputs.portals) == 2
    assert node.now < 30  # bounded (the fake clock): no 144 s stall per dead portal
    # degraded is success, and drift: the plan keeps offering the repair (a login there)
    assert obs.outputs.repair_needed.startswith("paths_up 1 of 2") and t.portals[1] in (
        obs.outputs.repair_needed)
    # a node that reaches only one of the portal networks says so: healthy with one path
    one = ATT.spec_from({"volume_id": vid, "min_paths": 1})
    assert ATT.read_known(ctx, obs.id, one).outputs.repair_needed is None


def test_a2_initiator_outside_acl_names_the_acl(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "n", dsp)
    ctx = _ctx(sim, node)
    vid = _volume(ctx)
    t = _portals(node)
    t.acl = {"iqn.2000-01.com.example:someone-else"}  # the target refuses this initiator
    with pytest.raises(NodeError, match="(?i)acl|not allowed|authoriz"):
        ATT.create(ctx, ATT.spec_from({"volume_id": vid}))
    assert node.sessions == {} and _acl(dsp) == []  # the failed create undid its ACL entry


def test_a3_a5_late_devices_are_waited_for_until_paths_equal_portals(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "n", dsp)
    ctx = _ctx(sim, node)
    vid = _volume(ctx)
    node.device_delay = 4
    obs = ATT.create(ctx, ATT.spec_from({"volume_id": vid}))
    assert obs.outputs.paths_up == len(obs.outputs.portals) == 2


def _never_appears(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "n", dsp)
    ctx = _ctx(sim, node)
    vid = _volume(ctx)
    node.device_delay = None
    with pytest.raises(Exception, match="timed out"):
        ATT.create(ctx, ATT.spec_from({"volume_id": vid}))
    assert _acl(dsp) == []
    return node


def test_a3_device_never_appears_is_bounded_and_the_acl_undone(sim, dsp, tmp_path):
    _never_appears(sim, dsp, tmp_path)


def test_a3_device_never_appears_leaves_no_session(sim, dsp, tmp_path):
    assert _never_appears(sim, dsp, tmp_path).sessions == {}


def test_a4_multipathd_down_single_path_or_refused(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "n", dsp, multipathd=False)
    ctx = _ctx(sim, node)
    vid = _volume(ctx)
    with pytest.raises(NodeError, match="multipath"):
        ATT.create(ctx, ATT.spec_from({"volume_id": vid, "enforce_multipath": True}))
    assert _acl(dsp) == []
    obs = ATT.create(ctx, ATT.spec_from({"volume_id": vid}))
    assert "/disk/by-id/scsi-" in obs.outputs.device_path and obs.outputs.map_name is None


def test_a8_detach_of_one_of_three_volumes_keeps_the_others(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "n", dsp)
    ctx = _ctx(sim, node)
    ids = [ATT.create(ctx, ATT.spec_from({"volume_id": _volume(ctx, f"fm-vol{i}")})).id
           for i in range(3)]
    assert len(node.sessions) == 6
    ATT.delete(ctx, ids[0])
    assert len(node.sessions) == 4
    assert all(ATT.read(ctx, i) is not None for i in ids[1:])
    assert ATT.read(ctx, ids[0]) is None
    ATT.delete(ctx, ids[0])  # idempotent: already gone


def test_a16_initiator_already_in_the_acl_is_success(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "n", dsp)
    ctx = _ctx(sim, node)
    vid = _volume(ctx)
    obs = ATT.create(ctx, ATT.spec_from({"volume_id": vid}))
    again = ATT.create(ctx, ATT.spec_from({"volume_id": vid}))  # a retried attach
    assert again.id == obs.id and _acl(dsp) == [node.initiator_iqn]


def test_a17_a_failed_path_shows_in_read(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "n", dsp)
    ctx = _ctx(sim, node)
    vid = _volume(ctx)
    obs = ATT.create(ctx, ATT.spec_from({"volume_id": vid}))
    assert obs.outputs.paths_up == 2
    # one path dies: its session drops (the kernel logs it out after the replacement timeout)
    dead = next(k for k in node.sessions if k[0] == obs.outputs.portals[1])
    node.sessions.pop(dead)
    node.unreachable[dead[0]] = 8
    seen = ATT.read(ctx, obs.id)
    assert seen is not None and seen.outputs.paths_up == 1  # degraded is visible, as an output
    # ... and as drift: the kind says it needs repair, naming the dead portal
    why = ATT.needs_repair(seen.outputs)
    assert why is not None and why.startswith("paths_up 1 of 2") and dead[0] in why


A17_STACK = """\
name: a17
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: a17-vol
      size: 1
  a:
    type: datera:index:NodeAttachment
    properties:
      volumeId: ${v.id}
      filesystem: ext4
      mountPoint: /mnt/a17
"""


def test_a17_a_dead_path_is_drift_and_up_logs_it_back_into_the_map(sim, dsp, tmp_path):
    """A path of a mounted multipath attachment dies: the plan shows a repair naming the
    portal; while the portal stays unreachable ``up`` still succeeds (degraded, bounded)
    and the drift stays visible; once it is back, ``up`` logs in again on that portal
    only - the map, the mount and the other session are kept - and the plan is empty."""
    node = sim_fabric_node(tmp_path / "n", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", A17_STACK, runner=node)
    assert ws().up()[1].ok
    mounted = dict(node.mounts)
    out = ws().load_state().resources["a"].outputs
    assert out["paths_up"] == 2 and out["repair_needed"] is None
    dead = next(k for k in node.sessions if k[0] == out["portals"][1])
    # the path dies: its session is dropped (the kernel gives up after the replacement
    # timeout; udev removes its device) and the portal stays unreachable
    node.run(["iscsiadm", "-m", "node", "-T", dead[1], "-p", dead[0], "--logout"])
    node.unreachable[dead[0]] = 8

    (step,) = ws().preview().changes
    assert step.action == "update" and "paths_up 1 of 2" in step.reason and dead[0] in step.reason
    _, result = ws().up()
    assert result.ok, result.failures  # degraded is success (A1), not a failed run
    assert ws().load_state().resources["a"].outputs["repair_needed"].startswith("paths_up 1 of 2")
    assert [s.name for s in ws().preview().changes] == ["a"]  # still drift

    del node.unreachable[dead[0]]
    node.commands.clear()
    _, result = ws().up()
    assert result.ok, result.failures
    logins = [c for c in node.commands if "--login" in c]
    assert logins and all(dead[0] in c for c in logins), logins
    assert not [c for c in node.commands if c[:1] in (["umount"], ["mkfs.ext4"])
                or c[:2] in (["multipath", "-f"], ["multipathd", "disablequeueing"])]
    assert len(node.sessions) == 2 and node.mounts == mounted
    out = ws().load_state().resources["a"].outputs
    assert out["paths_up"] == 2 and out["repair_needed"] is None
    assert not ws().preview().changes


def test_a17_one_path_by_design_is_not_degraded(sim, dsp, tmp_path):
    """multipathd was not running: the attachment uses one path on purpose (no map). It
    is healthy, not drift - the second portal having no session is expected."""
    node = sim_fabric_node(tmp_path / "n", dsp, multipathd=False)
    ws = lambda: engine_ws(sim, tmp_path / "stack", A17_STACK, runner=node)
    assert ws().up()[1].ok
    out = ws().load_state().resources["a"].outputs
    assert out["paths_up"] == 1 and out["map_name"] is None and out["repair_needed"] is None
    assert not ws().preview().changes


SHARED_IQN = "iqn.1993-08.org.debian:01:cloned-image"


def _initiator(dsp, iqn=SHARED_IQN):
    return dsp.get(f"/initiators/{iqn}", tenant="/root")


def test_a12_a_second_host_with_the_same_iqn_is_refused(sim, dsp, tmp_path):
    """Two VMs cloned from one image share an initiator name. The first attaches; the
    second (another machine id) is refused before anything changes - no ACL entry, no
    session, the registration untouched - with the fix in the message. The first host
    attaching another volume is fine."""
    first = sim_fabric_node(tmp_path / "a", dsp, iqn=SHARED_IQN, machine_id="a" * 32)
    second = sim_fabric_node(tmp_path / "b", dsp, iqn=SHARED_IQN, machine_id="b" * 32)
    ctx1, ctx2 = _ctx(sim, first), _ctx(sim, second)
    v1, v2, v3 = (_volume(ctx1, n) for n in ("dup-1", "dup-2", "dup-3"))
    ATT.create(ctx1, ATT.spec_from({"volume_id": v1}))
    name = _initiator(dsp)["name"]
    with pytest.raises(NodeError, match="already in use by another host") as e:
        ATT.create(ctx2, ATT.spec_from({"volume_id": v2}))
    assert "iscsi-iname" in str(e.value) and "nothing was changed" in str(e.value).lower()
    assert _acl(dsp, "dup-2") == [] and second.sessions == {}
    assert _initiator(dsp)["name"] == name
    assert ATT.create(ctx1, ATT.spec_from({"volume_id": v3})).outputs.paths_up == 2


def test_a12_a_stale_or_older_registration_is_taken_over(sim, dsp, tmp_path):
    """A registration no ACL lists any more (the other host detached) is taken over; one
    made before registrations carried the node (no fingerprint) is claimed by the node
    attaching; a node without /etc/machine-id is not checked."""
    from datera_iac.resources.attachment import _initiator_name

    node = sim_fabric_node(tmp_path / "a", dsp, iqn=SHARED_IQN, machine_id="a" * 32)
    ctx = _ctx(sim, node)
    dsp.post("/initiators", {"id": SHARED_IQN, "name": _initiator_name(SHARED_IQN, "0badf00d")},
             tenant="/root")
    ATT.create(ctx, ATT.spec_from({"volume_id": _volume(ctx, "stale-1")}))
    assert _initiator(dsp)["name"] == _initiator_name(SHARED_IQN, node.helper().host_id())

    other = "iqn.1993-08.org.debian:01:older"
    dsp.post("/initiators", {"id": other, "name": _initiator_name(other)}, tenant="/root")
    old = sim_fabric_node(tmp_path / "b", dsp, iqn=other, machine_id="b" * 32)
    ATT.create(_ctx(sim, old), ATT.spec_from({"volume_id": _volume(ctx, "stale-2")}))
    assert _initiator(dsp, other)["name"] == _initiator_name(other, old.helper().host_id())

    bare = sim_fabric_node(tmp_path / "c", dsp, iqn=SHARED_IQN, machine_id=None)
    assert bare.helper().host_id() is None
    ATT.create(_ctx(sim, bare), ATT.spec_from({"volume_id": _volume(ctx, "stale-3")}))


def test_a17_a_session_without_its_device_is_repaired_by_a_rescan(sim, dsp, tmp_path):
    """A path whose session is up but whose SCSI device the kernel dropped is degraded
    too; the repair rescans that session (nothing is logged out): the device comes back
    and rejoins the map, the mount and both sessions are kept."""
    node = sim_fabric_node(tmp_path / "n", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", A17_STACK, runner=node)
    assert ws().up()[1].ok
    mounted, sessions = dict(node.mounts), dict(node.sessions)
    out = ws().load_state().resources["a"].outputs
    t = _portals(node)
    sd = os.path.basename(os.path.realpath(node.helper().by_path(out["portals"][1], t.iqn, 0)))
    node._remove_sd(sd)  # the kernel deleted the path's device; its session stays
    (step,) = ws().preview().changes
    assert "paths_up 1 of 2" in step.reason and "no block device" in step.reason
    node.commands.clear()
    _, result = ws().up()
    assert result.ok, result.failures
    rescans = [c for c in node.commands if "--rescan" in c]
    assert len(rescans) == 1 and str(sessions[next(k for k in sessions
                                                   if k[0] == out["portals"][1])]) in rescans[0]
    assert not [c for c in node.commands if "--logout" in c or "--login" in c]
    assert node.sessions == sessions and node.mounts == mounted
    assert ws().load_state().resources["a"].outputs["paths_up"] == 2
    assert not ws().preview().changes


def _lose_second_path(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "n", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", A17_STACK, runner=node)
    assert ws().up()[1].ok
    out = ws().load_state().resources["a"].outputs
    dead = next(k for k in node.sessions if k[0] == out["portals"][1])
    node.run(["iscsiadm", "-m", "node", "-T", dead[1], "-p", dead[0], "--logout"])
    node.commands.clear()
    return node, ws, out


def _untouched(node, mounted, out):
    assert not [c for c in node.commands
                if c[:2] in (["multipathd", "disablequeueing"], ["multipath", "-f"])
                or "--logout" in c or c[:1] in (["umount"], ["mount"])
                or c[0].startswith("mkfs")], node.commands
    assert node.mounts == mounted
    assert any(k[0] == out["portals"][0] for k in node.sessions)


def test_a17_a_repair_whose_path_shows_no_device_keeps_the_mounted_map(sim, dsp, tmp_path):
    """The repair logs in again but the path's device never appears: the map in use, the
    mount and the surviving session stay exactly as they were, the update succeeds
    degraded (nothing to probe: the filesystem is mounted) and the drift stays."""
    node, ws, out = _lose_second_path(sim, dsp, tmp_path)
    mounted = dict(node.mounts)
    node.device_delay = None
    _, result = ws().up()
    assert result.ok, result.failures
    _untouched(node, mounted, out)
    assert ws().load_state().resources["a"].outputs["repair_needed"] is not None


def test_a17_a_repair_that_fails_never_flushes_the_mounted_map(sim, dsp, tmp_path, monkeypatch):
    """The repair's new path ends unusable (here: its WWID check fails): the update fails,
    but nothing of the map in use is undone - no disablequeueing, no flush, no logout of
    the surviving session, no unmount (a fresh attach would clean everything up)."""
    from datera_iac.node.iscsi import IscsiHelper

    node, ws, out = _lose_second_path(sim, dsp, tmp_path)
    mounted = dict(node.mounts)

    def refuse(self, t, devices):
        raise NodeError("the device's WWID does not match the volume (test)")

    monkeypatch.setattr(IscsiHelper, "_verify_wwid", refuse)
    _, result = ws().up()
    assert [f.name for f in result.failures] == ["a"] and "WWID" in result.failures[0].message
    _untouched(node, mounted, out)


def test_a12_clones_registering_at_the_same_instant(sim, dsp, tmp_path, monkeypatch):
    """Two clones attach in one `up`: (1) the second's POST loses the race to the first
    (409) - it re-reads the registration and is refused since the first is in an ACL;
    (2) the other clone claims the registration right after this node's ACL add - this
    node sees the registration no longer names it, backs its ACL entry out and fails."""
    from datera_iac.resources.attachment import NodeAttachment, _initiator_name

    first = sim_fabric_node(tmp_path / "a", dsp, iqn=SHARED_IQN, machine_id="a" * 32)
    second = sim_fabric_node(tmp_path / "b", dsp, iqn=SHARED_IQN, machine_id="b" * 32)
    ctx1, ctx2 = _ctx(sim, first), _ctx(sim, second)
    v1, v2 = _volume(ctx1, "race-1"), _volume(ctx1, "race-2")
    fp1 = first.helper().host_id()

    # (1) between the second node's GET (not found) and its POST, the first clone
    # registers the IQN and is put in a volume's ACL (its attach, seen from the DSP)
    real_post = type(ctx2.client).post
    v1_ai = v1.rsplit("/", 1)[1]

    def post_after_the_first(self, url, body, **kw):
        if url == "/initiators" and body.get("id") == SHARED_IQN:
            monkeypatch.setattr(type(ctx2.client), "post", real_post)
            dsp.post("/initiators", {"id": SHARED_IQN, "name": _initiator_name(SHARED_IQN, fp1)},
                     tenant="/root")
            dsp.put(f"/app_instances/{v1_ai}/storage_instances/storage-1/acl_policy/initiators",
                    {"op": "add", "path": f"/initiators/{SHARED_IQN}"}, tenant="/root")
        return real_post(self, url, body, **kw)

    monkeypatch.setattr(type(ctx2.client), "post", post_after_the_first)
    with pytest.raises(NodeError, match="already in use by another host"):
        ATT.create(ctx2, ATT.spec_from({"volume_id": v2}))
    assert _acl(dsp, "race-2") == [] and second.sessions == {}
    assert _initiator(dsp)["name"] == _initiator_name(SHARED_IQN, fp1)

    # (2) the registration is claimed by the other clone right after this node's ACL add
    dsp.put(f"/app_instances/{v1_ai}/storage_instances/storage-1/acl_policy/initiators",
            {"op": "remove", "path": f"/initiators/{SHARED_IQN}"}, tenant="/root")
    real_add = NodeAttachment._acl_add

    def add_then_lose_the_claim(self, ctx, tenant, ai, si, iqn):
        added = real_add(self, ctx, tenant, ai, si, iqn)
        dsp.put(f"/initiators/{SHARED_IQN}", {"name": _initiator_name(SHARED_IQN, fp1)},
                tenant="/root")
        return added

    monkeypatch.setattr(NodeAttachment, "_acl_add", add_then_lose_the_claim)
    with pytest.raises(NodeError, match="just registered by another host"):
        ATT.create(ctx2, ATT.spec_from({"volume_id": v2}))
    assert _acl(dsp, "race-2") == [] and second.sessions == {}


def test_a17_min_paths_holds_through_the_engines_fast_refresh(sim, dsp, tmp_path):
    """A node that reaches one portal network declares min_paths: 1. The engine's default
    (fast) refresh reads the attachment with its recorded spec, so the one-path attachment
    is healthy there too: an empty plan, not a repair on every run."""
    node = sim_fabric_node(tmp_path / "n", dsp)
    node.unreachable["127.0.0.2:3260"] = 4  # the simulator's second portal
    text = A17_STACK.replace("      mountPoint: /mnt/a17\n", "      mountPoint: /mnt/a17\n      minPaths: 1\n")
    ws = lambda: engine_ws(sim, tmp_path / "stack", text, runner=node)
    assert ws().up()[1].ok
    assert ws().load_state().resources["a"].outputs["paths_up"] == 1
    assert not ws().preview().changes
    assert not ws().preview(refresh="full").changes


def test_a17_a_path_in_kernel_recovery_is_drift_and_the_repair_waits(sim, dsp, tmp_path):
    """How a real kernel shows a lost portal: the session stays (in recovery) and the
    path's SCSI device stays, blocked and then transport-offline. That path is down
    (drift, naming the device state); the repair changes nothing on the node - the kernel
    brings the path back when the portal returns - and the plan is empty again then."""
    node = sim_fabric_node(tmp_path / "n", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", A17_STACK, runner=node)
    assert ws().up()[1].ok
    out = ws().load_state().resources["a"].outputs
    t = _portals(node)
    sd = os.path.basename(os.path.realpath(node.helper().by_path(out["portals"][1], t.iqn, 0)))
    state = tmp_path / "n" / "sys" / "block" / sd / "device" / "state"
    state.write_text("transport-offline\n")
    (step,) = ws().preview().changes
    assert "paths_up 1 of 2" in step.reason and "device transport-offline" in step.reason
    sessions, mounts = dict(node.sessions), dict(node.mounts)
    node.commands.clear()
    _, result = ws().up()
    assert result.ok, result.failures
    changing = [c for c in node.commands if c[0] in ("multipath", "mount", "umount")
                or c[:2] == ["multipathd", "disablequeueing"] or c[:2] == ["multipathd", "add"]
                or any(a in c for a in ("--login", "--logout", "--rescan", "--op"))]
    assert changing == [], changing
    assert node.sessions == sessions and node.mounts == mounts
    assert ws().load_state().resources["a"].outputs["repair_needed"] is not None
    state.write_text("running\n")  # the portal came back: the kernel recovered the path
    assert not ws().preview().changes


def test_a_single_path_attachment_is_repaired_single_path(sim, dsp, tmp_path):
    """An attachment made over one path (multipathd was down) whose session dropped while
    its filesystem stayed mounted is repaired in its own shape - one login on the first
    portal, no map put over the mounted device - even once multipathd runs."""
    node = sim_fabric_node(tmp_path / "n", dsp, multipathd=False)
    ws = lambda: engine_ws(sim, tmp_path / "stack", A17_STACK, runner=node)
    assert ws().up()[1].ok
    out = ws().load_state().resources["a"].outputs
    assert out["map_name"] is None and out["paths_up"] == 1
    mounted = dict(node.mounts)
    (portal, iqn), = node.sessions
    node.run(["iscsiadm", "-m", "node", "-T", iqn, "-p", portal, "--logout"])
    node.multipathd = True
    node.commands.clear()
    _, result = ws().up()
    assert result.ok, result.failures
    logins = [c for c in node.commands if "--login" in c]
    assert len(logins) == 1 and portal in logins[0], logins
    assert not [c for c in node.commands if c[:1] == ["multipath"] or c[:2] == ["multipathd", "add"]]
    assert node.mounts == mounted and len(node.sessions) == 1
