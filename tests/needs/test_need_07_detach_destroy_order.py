"""user-needs §2.7: safe, idempotent detach and destroy order.

Acceptance: destroying a stack with a mounted, attached volume runs unmount → flush map →
delete SCSI devices → logout → ACL removal → volume delete, in that order (node commands
and DSP requests on one timeline); a destroy interrupted in the middle (a logout that fails,
in-process: a SIGKILL of ``destroy`` cannot be driven against a fake node, whose kernel
state lives in the test process) and re-run exits 0 with no sessions, no dm maps, no ACL
entries and no volume left. The same half-detached attachment under ``up`` is planned as a
repair (an update saying why: ``paths_up 0 of 2``) that re-attaches and re-mounts it, and
under the Terraform and Pulumi providers reads as present, plans a repair, and deletes
cleanly. A fully detached attachment reads as gone (None). SIGKILL of ``up`` is
tests/engine/test_crash.py and tests/fault/test_sigkill.py.
"""

from __future__ import annotations

import os

import jsonschema

from needkit import app_instances, engine_ws, sim_fabric_node

from datera_iac.engine.render import plan_json, plan_schema, render_plan

STACK = """\
name: need07
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: det-vol
      size: 2
  a:
    type: datera:index:NodeAttachment
    properties:
      volumeId: ${v.id}
      filesystem: ext4
      mountPoint: /mnt/data
"""


class Timeline(list):
    """node.commands that also note how many DSP requests had been served at each one."""

    def __init__(self, sim):
        super().__init__()
        self.sim, self.events = sim, []

    def append(self, argv):
        super().append(argv)
        self.events.append((len(self.sim.request_log()), list(argv)))


def _first(events, pred):
    return next(i for i, (_, argv) in enumerate(events) if pred(argv))


def test_destroy_order_and_interrupted_destroy_rerun(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", STACK, runner=node)
    _, result = ws().up()
    assert result.ok, result.failures
    assert node.mounts and len(node.sessions) == 2
    wwid = ws().load_state().resources["a"].outputs["wwid"]

    # 1) an interrupted destroy: the node fails at logout (after unmount and map flush)
    node.fail = {"--logout": (8, "iscsiadm: connection timed out\n")}
    _, result = ws().up(destroy=True)
    assert result is not None and not result.ok
    assert app_instances(dsp), "the volume must not be deleted while the node is attached"
    node.fail = {}

    # 2) the re-run, on a fresh timeline
    node.commands = Timeline(sim)
    start = len(sim.request_log())
    _, result = ws().up(destroy=True)
    assert result is not None and result.ok, result.failures
    ev = node.commands.events
    log = sim.request_log()
    logout = _first(ev, lambda a: "--logout" in a)
    assert not node.mounts and node.sessions == {} and node.records == {}
    assert not os.path.exists(f"{node.dev_root}/disk/by-id/dm-uuid-mpath-{wwid}")
    acl_req = next(i for i, r in enumerate(log) if i >= start and r["method"] in ("PUT", "POST")
                   and "acl_policy" in r["path"])
    del_req = next(i for i, r in enumerate(log) if i >= start and r["method"] == "DELETE"
                   and r["template"].endswith("/app_instances/:id"))
    # node side before any ACL change; ACL removal before the volume delete
    assert ev[logout][0] <= acl_req < del_req
    assert app_instances(dsp) == []


def test_fresh_destroy_exact_order(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", STACK, runner=node)
    assert ws().up()[1].ok
    node.commands = Timeline(sim)
    start = len(sim.request_log())
    _, result = ws().up(destroy=True)
    assert result is not None and result.ok, result.failures
    ev = node.commands.events
    umount = _first(ev, lambda a: a[0] == "umount")
    flush = _first(ev, lambda a: a[:2] == ["multipath", "-f"])
    sd_del = _first(ev, lambda a: a[0] == "write" and a[1].endswith("/device/delete"))
    logout = _first(ev, lambda a: "--logout" in a)
    assert umount < flush < sd_del < logout
    log = sim.request_log()
    acl_req = next(i for i, r in enumerate(log) if i >= start and r["method"] in ("PUT", "POST")
                   and "acl_policy" in r["path"])
    del_req = next(i for i, r in enumerate(log) if i >= start and r["method"] == "DELETE"
                   and r["template"].endswith("/app_instances/:id"))
    assert ev[logout][0] <= acl_req < del_req
    assert app_instances(dsp) == [] and node.sessions == {}


def _interrupt_destroy(ws, node, dsp):
    """An engine destroy that fails at logout: unmounted, map flushed, SCSI devices
    deleted, sessions and node records still there, ACL entry still there."""
    node.fail = {"--logout": (8, "iscsiadm: connection timed out\n")}
    _, result = ws().up(destroy=True)
    node.fail = {}
    assert result is not None and not result.ok
    assert app_instances(dsp) and len(node.sessions) == 2 and not node.mounts
    assert not [n for n in os.listdir(f"{node.dev_root}/disk/by-path")]


def test_interrupted_destroy_then_up_repairs(sim, dsp, tmp_path):
    """After a destroy interrupted at logout, `up` (not destroy) shows an update whose
    reason says why (paths_up 0 of 2, what is left), re-attaches on both paths and
    re-mounts; the next preview is empty. The repaired attachment then destroys cleanly."""
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", STACK, runner=node)
    assert ws().up()[1].ok
    _interrupt_destroy(ws, node, dsp)

    # a drift check (refresh-only) reports it: no declared field differs, the object is degraded
    drift = ws().preview(refresh_only=True)
    assert drift.has_changes  # `preview --refresh-only --detailed-exitcode` exits 2
    (d,) = drift.drift
    assert (d.name, d.status, d.fields) == ("a", "degraded", ())
    assert "paths_up 0 of 2" in d.reason and f"needs repair: {d.reason}" in render_plan(drift)
    doc = plan_json(drift)
    jsonschema.validate(doc, plan_schema())
    assert doc["drift"][0]["reason"] == d.reason

    plan = ws().preview()
    (step,) = plan.changes
    assert (step.name, step.action, step.changes) == ("a", "update", ())
    assert "paths_up 0 of 2" in step.reason and "2 sessions" in step.reason
    assert "paths_up 0 of 2" in render_plan(plan)
    assert plan_json(plan)["actions"][0]["reason"] == step.reason
    ws().refresh()  # the refreshed state records why
    state = ws().load_state().resources["a"]
    assert state.outputs["paths_up"] == 0 and "paths_up 0 of 2" in state.outputs["repair_needed"]

    _, result = ws().up()
    assert result.ok, result.failures
    assert len(node.sessions) == 2 and node.mounts.get("/mnt/data")
    out = ws().load_state().resources["a"].outputs
    assert out["paths_up"] == 2 and out["repair_needed"] is None
    assert out["device_path"].endswith(f"dm-uuid-mpath-{out['wwid']}")
    assert not ws().preview().changes

    _, result = ws().up(destroy=True)
    assert result.ok, result.failures
    assert node.sessions == {} and node.records == {} and app_instances(dsp) == []


def test_fully_detached_reads_as_gone_and_half_detached_does_not(sim, dsp, tmp_path):
    """The kind's read: None once delete finished every step; while anything is left
    (sessions without devices, then only the ACL entry) an Observed that needs repair."""
    from datera_iac.resources import kind_for

    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", STACK, runner=node)
    assert ws().up()[1].ok
    att_id = ws().load_state().resources["a"].id
    kind, ctx = kind_for("NodeAttachment"), ws().ctx
    healthy = kind.read(ctx, att_id)
    assert healthy is not None and kind.needs_repair(healthy.outputs) is None

    node.fail = {"--logout": (8, "iscsiadm: connection timed out\n")}
    try:
        kind.delete(ctx, att_id)
    except Exception as e:  # noqa: BLE001 - the interruption under test
        assert "--logout" in str(e)
    node.fail = {}
    half = kind.read(ctx, att_id)
    assert half is not None and half.outputs.paths_up == 0 and half.outputs.device_path is None
    assert half.spec.mount_point == "/mnt/data"  # part of the repair, not drift
    why = kind.needs_repair(half.outputs)
    assert why.startswith("paths_up 0 of 2 (left: 2 sessions, 2 node records")

    # only the ACL entry left (node side cleaned by hand): still present, still needs repair
    helper = node.helper()
    from datera_iac.node.iscsi import Target
    si = dsp.get(f"/app_instances/{att_id.split(':')[0].rsplit('/', 1)[-1]}"
                 "/storage_instances/storage-1")
    helper.detach(Target(si["access"]["iqn"], [f"{ip}:3260" for ip in si["access"]["ips"]], 0))
    acl_only = kind.read(ctx, att_id)
    assert acl_only is not None and "the initiator in the volume's ACL" in acl_only.outputs.repair_needed

    kind.delete(ctx, att_id)
    assert kind.read(ctx, att_id) is None
    kind.delete(ctx, att_id)  # again: nothing left to do, still success
    assert kind.read(ctx, att_id) is None


# ---- the same scenario through the Terraform and Pulumi providers (in-process RPCs) ----

ATT_PROPS = {"filesystem": "ext4", "mount_point": "/mnt/data"}


def test_terraform_provider_interrupted_destroy_reads_repairs_and_reruns(sim, dsp, tmp_path):
    """datera_node_attachment over the provider's RPCs with a fake node: a destroy failing
    at logout leaves a resource that ReadResource keeps (paths_up 0, repair_needed), whose
    plan is an in-place update with a warning saying why; applying it re-attaches and
    re-mounts; a second interrupted destroy re-run then leaves nothing."""
    from tf.gen import tfplugin_pb2 as pb
    from tf.types import Unknown
    from tf.utils import read_dynamic_value, to_dynamic_value

    from datera_iac_tf.provider import DateraProvider
    from datera_iac_tf.servicer import Servicer

    node = sim_fabric_node(tmp_path / "node", dsp)
    app = DateraProvider(runner=node)
    app.configure({"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"})
    svc = Servicer(app)

    def cfg_of(type_name, **values):
        cfg = {f.name: None for f in app.adapters[type_name].schema.fields()}
        cfg.update(values)
        return cfg

    def plan(type_name, prior, cfg):
        return svc.PlanResourceChange(pb.PlanResourceChange.Request(
            type_name=type_name, prior_state=to_dynamic_value(prior),
            proposed_new_state=to_dynamic_value(cfg), config=to_dynamic_value(cfg)), None)

    def apply(type_name, prior, planned, cfg):
        resp = svc.ApplyResourceChange(pb.ApplyResourceChange.Request(
            type_name=type_name, prior_state=to_dynamic_value(prior), planned_state=planned,
            config=to_dynamic_value(cfg)), None)
        state = read_dynamic_value(resp.new_state) if resp.new_state.msgpack else None
        return state, list(resp.diagnostics)

    def read(type_name, state):
        resp = svc.ReadResource(pb.ReadResource.Request(
            type_name=type_name, current_state=to_dynamic_value(state)), None)
        assert not [d for d in resp.diagnostics if d.severity == d.ERROR]
        return read_dynamic_value(resp.new_state) if resp.new_state.msgpack else None

    def destroy(type_name, state):
        return apply(type_name, state, to_dynamic_value(None), None)

    V, A = "datera_volume", "datera_node_attachment"
    vcfg = cfg_of(V, name="tf-det", size=1)
    vol, diags = apply(V, None, plan(V, None, vcfg).planned_state, vcfg)
    assert not diags and vol is not None
    acfg = cfg_of(A, volume_id=vol["id"], **ATT_PROPS)
    att, diags = apply(A, None, plan(A, None, acfg).planned_state, acfg)
    assert not diags, [d.detail for d in diags]
    assert att["paths_up"] == 2 and att["repair_needed"] is None and node.mounts

    def interrupted_destroy(state):
        node.fail = {"--logout": (8, "iscsiadm: connection timed out\n")}
        left, diags = destroy(A, state)
        node.fail = {}
        assert diags and "--logout" in diags[0].detail
        assert len(node.sessions) == 2 and not node.mounts
        seen = read(A, state)
        assert seen is not None, "ReadResource must keep a half-detached attachment"
        assert seen["paths_up"] == 0 and seen["repair_needed"].startswith("paths_up 0 of 2")
        return seen

    seen = interrupted_destroy(att)
    p = plan(A, seen, acfg)
    warnings = [d for d in p.diagnostics if d.severity == d.WARNING]
    assert not [d for d in p.diagnostics if d.severity == d.ERROR]
    assert list(p.requires_replace) == [] and "paths_up 0 of 2" in warnings[0].detail
    planned = read_dynamic_value(p.planned_state)
    assert planned["id"] == seen["id"] and planned["paths_up"] is Unknown
    fixed, diags = apply(A, seen, p.planned_state, acfg)
    assert not [d for d in diags if d.severity == d.ERROR], [d.detail for d in diags]
    assert fixed["paths_up"] == 2 and fixed["repair_needed"] is None
    assert len(node.sessions) == 2 and node.mounts.get("/mnt/data")
    p = plan(A, read(A, fixed), acfg)
    assert not list(p.diagnostics) and read_dynamic_value(p.planned_state) == read(A, fixed)

    seen = interrupted_destroy(fixed)
    gone, diags = destroy(A, seen)  # the re-run
    assert not diags and gone is None
    assert node.sessions == {} and node.records == {} and not node.mounts
    si = dsp.get(f"/app_instances/{vol['ai_id']}/storage_instances/storage-1")
    assert si["acl_policy"]["initiators"] == []
    assert read(A, seen) is None  # fully detached: gone
    _, diags = destroy(V, vol)
    assert not diags and app_instances(dsp) == []


def test_pulumi_provider_interrupted_destroy_reads_repairs_and_reruns(sim, dsp, tmp_path):
    """pulumirpc over real gRPC (in-process server, fake node): after a Delete failing at
    logout, Read returns the resource (not an empty id), Diff says DIFF_SOME on
    repairNeeded (not an input), Update repairs it; a re-run Delete after a second
    interruption leaves nothing and Read then returns an empty id."""
    import grpc
    from pulumi.runtime.proto import provider_pb2 as ppb

    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient
    from datera_iac.pulumi.provider import DateraProvider, serve
    from datera_iac.pulumi.testing import Rpc, plain
    from datera_iac.resources.base import Context

    node = sim_fabric_node(tmp_path / "node", dsp)

    def factory(config):
        cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                         "san_password": "password"}, use_env=False)
        return Context(client=DspClient(cfg), config=cfg, runner=node)

    server, port = serve(DateraProvider(context_factory=factory))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    rpc = Rpc(channel)
    V, A = "datera:index:Volume", "datera:index:NodeAttachment"
    try:
        rpc.configure(endpoint=sim.http_url)
        vol = rpc.create(V, "v", plain(rpc.check(V, "v", {"name": "pu-det", "size": 1}).inputs))
        news = plain(rpc.check(A, "a", {"volumeId": vol.id, "filesystem": "ext4",
                                        "mountPoint": "/mnt/data"}).inputs)
        created = rpc.create(A, "a", news)
        state = plain(created.properties)
        assert state["pathsUp"] == 2 and state.get("repairNeeded") is None

        def interrupted_delete(state):
            node.fail = {"--logout": (8, "iscsiadm: connection timed out\n")}
            try:
                rpc.delete(A, "a", created.id, state)
                raise AssertionError("the delete should have failed at logout")
            except grpc.RpcError as e:
                assert "--logout" in e.details()
            finally:
                node.fail = {}
            got = rpc.read(A, "a", created.id, state, news)
            assert got.id == created.id, "Read must keep a half-detached attachment"
            seen = plain(got.properties)
            assert seen["pathsUp"] == 0 and seen["repairNeeded"].startswith("paths_up 0 of 2")
            return seen

        seen = interrupted_delete(state)
        d = rpc.diff(A, "a", created.id, seen, news)
        assert d.changes == ppb.DiffResponse.DIFF_SOME and list(d.replaces) == []
        assert dict(d.detailedDiff)["repairNeeded"].inputDiff is False
        fixed = plain(rpc.update(A, "a", created.id, seen, news).properties)
        assert fixed["pathsUp"] == 2 and fixed.get("repairNeeded") is None
        assert len(node.sessions) == 2 and node.mounts.get("/mnt/data")
        again = plain(rpc.read(A, "a", created.id, fixed, news).properties)
        assert rpc.diff(A, "a", created.id, again, news).changes == ppb.DiffResponse.DIFF_NONE

        seen = interrupted_delete(fixed)
        rpc.delete(A, "a", created.id, seen)  # the re-run
        assert node.sessions == {} and node.records == {} and not node.mounts
        assert rpc.read(A, "a", created.id, seen, news).id == ""
        rpc.delete(V, "v", vol.id, plain(vol.properties))
        assert app_instances(dsp) == []
    finally:
        channel.close()
        server.stop(grace=None)


def test_paths_lost_under_a_mounted_filesystem_are_repaired_without_a_flush(sim, dsp, tmp_path):
    """Every session logged out behind our back while the filesystem stays mounted: the
    map (queueing the writes) and the mount remain. The repair logs in again so the paths
    rejoin that map; it never turns queueing off or flushes the map (that would fail the
    queued writes), and the mount is left as it is."""
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", STACK, runner=node)
    assert ws().up()[1].ok
    mounted = dict(node.mounts)
    for portal, iqn in list(node.sessions):
        node.run(["iscsiadm", "-m", "node", "-T", iqn, "-p", portal, "--logout"])
    assert not node.sessions and node.mounts == mounted
    (step,) = ws().preview().changes
    assert step.action == "update" and "paths_up 0 of 2" in step.reason

    node.commands.clear()
    _, result = ws().up()
    assert result.ok, result.failures
    flushes = [c for c in node.commands if c[:2] in (["multipathd", "disablequeueing"], ["multipath", "-f"])]
    assert flushes == [], flushes
    assert not [c for c in node.commands if c and c[0] in ("umount", "mount", "mkfs.ext4")]
    assert len(node.sessions) == 2 and node.mounts == mounted
    out = ws().load_state().resources["a"].outputs
    assert out["paths_up"] == 2 and out["repair_needed"] is None
    assert not ws().preview().changes


def test_destroy_leaves_another_filesystem_at_the_mount_point_alone(sim, dsp, tmp_path):
    """The volume's filesystem was unmounted behind our back and another disk mounted at
    the attachment's mount point: destroy detaches the volume (map, logout, ACL) but never
    unmounts that other filesystem."""
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", STACK, runner=node)
    assert ws().up()[1].ok
    node.run(["umount", "/mnt/data"])
    node.run(["mount", "/dev/sdz", "/mnt/data"])  # someone else's disk, mounted since
    node.commands.clear()
    _, result = ws().up(destroy=True)
    assert result.ok, result.failures
    assert not [c for c in node.commands if c[:1] == ["umount"]], node.commands
    assert node.mounts == {"/mnt/data": "/dev/sdz"}
    assert node.sessions == {} and app_instances(dsp) == []


def test_destroy_refuses_a_map_still_mounted_elsewhere_and_changes_nothing(sim, dsp, tmp_path):
    """The volume's map is mounted at a path the attachment does not know (or held by a
    device on top of it): destroy stops before touching it - no disablequeueing (which
    would fail the writes it queues), no flush, no logout - naming what holds it; the
    volume stays."""
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda: engine_ws(sim, tmp_path / "stack", STACK, runner=node)
    assert ws().up()[1].ok
    device = ws().load_state().resources["a"].outputs["device_path"]
    node.run(["mount", device, "/srv/elsewhere"])
    sessions = dict(node.sessions)
    node.commands.clear()
    _, result = ws().up(destroy=True)
    assert [f.name for f in result.failures] == ["a"]
    assert "in use (mounted at /srv/elsewhere)" in result.failures[0].message
    assert not [c for c in node.commands
                if c[:2] in (["multipathd", "disablequeueing"], ["multipath", "-f"])
                or "--logout" in c], node.commands
    assert node.sessions == sessions and len(app_instances(dsp)) == 1
