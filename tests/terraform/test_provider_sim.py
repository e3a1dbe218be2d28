"""The provider's RPCs against the simulator with the real kinds, without Terraform (fast):
timeouts reach the kind and a timeout is a diagnostic that says how to raise it (the kept
volume is recorded); batched refreshes answer exactly like single reads; a node attachment
with a fake node."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tf.gen import tfplugin_pb2 as pb
from tf.utils import read_dynamic_value, to_dynamic_value
from tfharness import SIM_PASSWORD, SIM_USER, servicer_on

from datera_iac_tf.provider import DateraProvider
from datera_iac_tf.servicer import Servicer

T = "datera_volume"


def _servicer(sim: Any) -> Servicer:
    return servicer_on(sim)


def _config(svc: Servicer, **values: Any) -> dict[str, Any]:
    cfg = {f.name: None for f in svc.app.adapters[T].schema.fields()}
    cfg.update(values)
    return cfg


def _create(svc: Servicer, cfg: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Any]]:
    plan = svc.PlanResourceChange(pb.PlanResourceChange.Request(
        type_name=T, prior_state=to_dynamic_value(None), proposed_new_state=to_dynamic_value(cfg),
        config=to_dynamic_value(cfg)), None)
    assert not list(plan.diagnostics)
    resp = svc.ApplyResourceChange(pb.ApplyResourceChange.Request(
        type_name=T, prior_state=to_dynamic_value(None), planned_state=plan.planned_state,
        config=to_dynamic_value(cfg)), None)
    state = read_dynamic_value(resp.new_state) if resp.new_state.msgpack else None
    return state, list(resp.diagnostics)


def test_create_timeout_is_a_diagnostic_and_the_volume_is_recorded(make_sim):
    """`timeouts = { create = "1s" }` bounds the wait for a slow storage instance: the
    apply fails naming the resource and the timeouts key, and the volume the kind kept is
    returned with the error, so Terraform records it (tainted) instead of losing it."""
    sim = make_sim(si_online_delay=5)
    svc = _servicer(sim)
    state, diags = _create(svc, _config(svc, name="slow-vol", size=1, timeouts={"create": "1s"}))
    assert len(diags) == 1 and diags[0].summary == "datera_volume create: timed out"
    assert "'slow-vol'" in diags[0].detail and 'timeouts = { create = "..." }' in diags[0].detail
    (ai,) = list(svc.app.client.list("/app_instances"))
    assert state is not None and state["id"].endswith(ai["id"]) and state["name"] == "slow-vol"


def test_batched_refresh_equals_single_reads(sim):
    """Twelve volumes refreshed concurrently (as Terraform does) give the same states as
    one-by-one reads, with a handful of list calls and no per-volume GET."""
    svc = _servicer(sim)
    svc.app.client.ensure_tenant("/root/team")
    states = []
    for i in range(12):
        st, diags = _create(svc, _config(svc, name=f"vol-{i:02d}", size=1, tenant="team",
                                         volume_type="gold", metadata={"i": str(i)}))
        assert not diags and st is not None
        states.append(st)
    adapter = svc.app.adapters[T]
    adapter.batcher.window = 1.0  # a loaded CI machine may start threads slowly
    before = dict(sim.counters())
    with ThreadPoolExecutor(10) as pool:
        got = list(pool.map(lambda st: adapter.read(svc.app.context, st), states))
    used = {k: n - before.get(k, 0) for k, n in sim.counters().items() if n != before.get(k, 0)}
    assert got == states  # user forms kept; nothing the bulk read cannot see is lost
    assert "GET /v2.2/app_instances/:id" not in used and used.get("GET /v2.2/app_instances", 0) <= 2


def _rpc_plan_apply(svc: Servicer, type_name: str, prior: Any, cfg: dict[str, Any]) -> tuple[Any, list[Any]]:
    plan = svc.PlanResourceChange(pb.PlanResourceChange.Request(
        type_name=type_name, prior_state=to_dynamic_value(prior),
        proposed_new_state=to_dynamic_value(cfg), config=to_dynamic_value(cfg)), None)
    if list(plan.diagnostics):
        return None, list(plan.diagnostics)
    resp = svc.ApplyResourceChange(pb.ApplyResourceChange.Request(
        type_name=type_name, prior_state=to_dynamic_value(prior),
        planned_state=plan.planned_state, config=to_dynamic_value(cfg)), None)
    state = read_dynamic_value(resp.new_state) if resp.new_state.msgpack else None
    return state, list(resp.diagnostics)


def test_node_attachment_through_the_provider(sim, tmp_path):
    """datera_node_attachment over the provider's RPCs, with a FakeNode as the node (kernel
    iSCSI cannot run here): create attaches and reports a stable device path, read is
    stable, import by the composite id then plan is empty, destroy detaches and empties the
    ACL."""
    from datera_iac.node.iscsi import wwid_for_serial
    from datera_iac.node.testing import FakeLun, FakeNode, FakeTarget

    node = FakeNode(tmp_path / "node", initiator_iqn="iqn.1993-08.org.debian:01:tfnode")
    app = DateraProvider(runner=node)
    app.configure({"endpoint": sim.http_url, "san_login": SIM_USER, "san_password": SIM_PASSWORD})
    svc = Servicer(app)
    vol, diags = _create(svc, _config(svc, name="att-vol", size=1))
    assert not diags
    si = app.client.get(f"/app_instances/{vol['ai_id']}/storage_instances/storage-1")
    serial = si["volumes"][0]["uuid"]
    node.add_target(FakeTarget(si["access"]["iqn"], [f"{ip}:3260" for ip in si["access"]["ips"]],
                               {0: FakeLun(wwid_for_serial(serial), serial.replace("-", ""))}))

    A = "datera_node_attachment"
    cfg = {f.name: None for f in app.adapters[A].schema.fields()}
    cfg.update(volume_id=vol["id"])
    state, diags = _rpc_plan_apply(svc, A, None, cfg)
    assert not diags, [d.detail for d in diags]
    assert "/dev/disk/by-id/dm-uuid-mpath-" in state["device_path"]  # under the fake root
    assert state["paths_up"] >= 1 and state["initiator_iqn"] is None  # unset stays unset
    read = svc.ReadResource(pb.ReadResource.Request(
        type_name=A, current_state=to_dynamic_value(state)), None)
    assert not list(read.diagnostics) and read_dynamic_value(read.new_state) == state

    imp = svc.ImportResourceState(pb.ImportResourceState.Request(type_name=A, id=state["id"]), None)
    assert not list(imp.diagnostics)
    imported = read_dynamic_value(imp.imported_resources[0].state)
    assert imported["id"] == state["id"] and imported["device_path"] == state["device_path"]
    plan = svc.PlanResourceChange(pb.PlanResourceChange.Request(
        type_name=A, prior_state=to_dynamic_value(imported),
        proposed_new_state=to_dynamic_value(cfg), config=to_dynamic_value(cfg)), None)
    assert not list(plan.diagnostics) and list(plan.requires_replace) == []  # import, then plan
    planned = read_dynamic_value(plan.planned_state)
    assert {k: planned[k] for k in cfg if cfg[k] is not None} == \
        {k: imported[k] for k in cfg if cfg[k] is not None}

    resp = svc.ApplyResourceChange(pb.ApplyResourceChange.Request(
        type_name=A, prior_state=to_dynamic_value(state), planned_state=to_dynamic_value(None),
        config=to_dynamic_value(None)), None)
    assert not list(resp.diagnostics) and not resp.new_state.msgpack
    si = app.client.get(f"/app_instances/{vol['ai_id']}/storage_instances/storage-1")
    assert si["acl_policy"]["initiators"] == [] and node.sessions == {}


def _read_rpc(svc: Servicer, state: dict[str, Any]) -> dict[str, Any] | None:
    resp = svc.ReadResource(pb.ReadResource.Request(
        type_name=T, current_state=to_dynamic_value(state)), None)
    assert not list(resp.diagnostics), list(resp.diagnostics)
    return read_dynamic_value(resp.new_state) if resp.new_state.msgpack else None


def test_a_refresh_wave_lists_the_tenant_once(sim):
    """Terraform refreshes with at most -parallelism reads in flight, each starting when
    one ends: 40 volumes read by 4 workers one after another make ONE list call (the
    batches share the wave's listing), not one per batch; a write through the provider
    drops the listing, so the next refresh sees it."""
    svc = _servicer(sim)
    states = []
    for i in range(40):
        st, diags = _create(svc, _config(svc, name=f"wave-{i:02d}", size=1))
        assert not diags and st is not None
        states.append(st)
    svc.app.listings.forget()  # as in a new provider process

    def refresh() -> tuple[list[Any], dict[str, int]]:
        before = dict(sim.counters())
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda st: _read_rpc(svc, st), states))
        used = {k: n - before.get(k, 0) for k, n in sim.counters().items()
                if n != before.get(k, 0)}
        return got, used

    got, used = refresh()
    assert got == states
    assert used == {"GET /v2.2/app_instances": 1}, used

    # a write through the provider: the wave's listing is not used after it
    grown = _config(svc, name="wave-07", size=3)
    plan = svc.PlanResourceChange(pb.PlanResourceChange.Request(
        type_name=T, prior_state=to_dynamic_value(states[7]),
        proposed_new_state=to_dynamic_value(grown), config=to_dynamic_value(grown)), None)
    resp = svc.ApplyResourceChange(pb.ApplyResourceChange.Request(
        type_name=T, prior_state=to_dynamic_value(states[7]), planned_state=plan.planned_state,
        config=to_dynamic_value(grown)), None)
    assert not list(resp.diagnostics)
    states[7] = read_dynamic_value(resp.new_state)
    got, used = refresh()
    assert got[7]["size"] == 3 and got == states
    assert used == {"GET /v2.2/app_instances": 1}, used


def _destroy_rpc(svc: Servicer, type_name: str, state: dict[str, Any], plan: bool) -> list[Any]:
    """A destroy's PlanResourceChange (``plan``) or ApplyResourceChange for ``state``."""
    if plan:
        return list(svc.PlanResourceChange(pb.PlanResourceChange.Request(
            type_name=type_name, prior_state=to_dynamic_value(state),
            proposed_new_state=to_dynamic_value(None), config=to_dynamic_value(None)),
            None).diagnostics)
    return list(svc.ApplyResourceChange(pb.ApplyResourceChange.Request(
        type_name=type_name, prior_state=to_dynamic_value(state),
        planned_state=to_dynamic_value(None), config=to_dynamic_value(None)), None).diagnostics)


def test_a_destroy_checks_snapshots_from_one_listing(sim):
    """Issue 21: a destroy's dependents checks (at plan time and again before each delete)
    read no volume alone: 19 planned deletes make one list call, 18 deletes one list call
    plus their two writes each (without the listing: a GET per volume at each stage). Not
    weaker (issue 16): a snapshot made outside is still named and its volume kept, and a
    snapshot deleted through the provider drops the listing, so the volume that held it is
    not refused on a stale view."""
    svc = _servicer(sim)
    client = svc.app.client
    vols = []
    for i in range(20):
        st, diags = _create(svc, _config(svc, name=f"gone-{i:02d}", size=1))
        assert not diags and st is not None
        vols.append(st)
    theirs = client.post(f"/app_instances/{vols[5]['ai_id']}/storage_instances/storage-1/"
                         "volumes/volume-1/snapshots", {})["timestamp"]
    S = "datera_snapshot"
    snap_cfg = {f.name: None for f in svc.app.adapters[S].schema.fields()}
    snap_cfg.update(volume_id=vols[6]["id"])
    ours, diags = _rpc_plan_apply(svc, S, None, snap_cfg)
    assert not diags and ours is not None
    svc.app.listings.forget()  # as in a new provider process

    def used_by(fn: Any) -> tuple[Any, dict[str, int]]:
        before = dict(sim.counters())
        out = fn()
        return out, {k: n - before.get(k, 0) for k, n in sim.counters().items()
                     if n != before.get(k, 0)}

    planned = [v for i, v in enumerate(vols) if i != 6]
    with ThreadPoolExecutor(4) as pool:
        diags, used = used_by(lambda: list(pool.map(
            lambda st: _destroy_rpc(svc, T, st, plan=True), planned)))
    assert used == {"GET /v2.2/app_instances": 1}, used
    refused = [(st["name"], d.detail) for st, ds in zip(planned, diags) for d in ds]
    assert len(refused) == 1 and refused[0][0] == "gone-05" and str(theirs) in refused[0][1]

    gone = [v for i, v in enumerate(vols) if i not in (5, 6)]
    with ThreadPoolExecutor(4) as pool:
        diags, used = used_by(lambda: list(pool.map(
            lambda st: _destroy_rpc(svc, T, st, plan=False), gone)))
    assert diags == [[]] * len(gone)
    assert used == {"GET /v2.2/app_instances": 1, "PUT /v2.2/app_instances/:id": 18,
                    "DELETE /v2.2/app_instances/:id": 18}, used

    # planned before the snapshot was made: the delete's own check still refuses it
    diags, used = used_by(lambda: _destroy_rpc(svc, T, vols[5], plan=False))
    assert len(diags) == 1 and str(theirs) in diags[0].detail, diags
    assert set(used) <= {"GET /v2.2/app_instances"}, used  # nothing written

    # our snapshot's delete is a write of another kind: the volume's check lists again
    diags, _ = used_by(lambda: _destroy_rpc(svc, S, ours, plan=False))
    assert not diags
    diags, used = used_by(lambda: _destroy_rpc(svc, T, vols[6], plan=False))
    assert not diags, [d.detail for d in diags]
    assert used == {"GET /v2.2/app_instances": 1, "PUT /v2.2/app_instances/:id": 1,
                    "DELETE /v2.2/app_instances/:id": 1}, used
    left = [a["name"] for a in client.list("/app_instances")]
    assert left == ["gone-05"]
