"""``pulumi-resource-datera`` over gRPC against the simulator, as the Pulumi engine drives it.

The plugin runs as a subprocess that prints its port (the engine's handshake); each test
configures it with the simulator's URL and walks one lifecycle through
``pulumirpc.ResourceProvider``, checking the DSP's side through the simulator's request
counters and a separate DspClient (out-of-band changes)."""

from __future__ import annotations

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2 as pb

from datera_iac.pulumi._codec import UNKNOWN, Secret
from datera_iac.pulumi.testing import plain

V = "datera:index:Volume"
S = "datera:index:Snapshot"
T = "datera:index:Tenant"
CHAP = "s3cr3t-chap-12"


def configure(rpc, sim, **extra):
    return rpc.configure(
        endpoint=sim.http_url, sanLogin="admin", sanPassword=Secret(sim.users["admin"]),
        datera503Timeout=5, **extra,
    )


def writes(sim):
    """Requests that changed something on the DSP (POST/PUT/DELETE under /v2.x)."""
    return sum(n for k, n in sim.counters().items()
               if k.split()[0] in ("POST", "PUT", "DELETE") and "/v2." in k)


@pytest.fixture
def dsp(sim):
    """A client for out-of-band changes, as an operator would make them."""
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    return DspClient(DateraConfig.from_mapping({
        "endpoint": sim.http_url, "san_login": "admin", "san_password": sim.users["admin"]}))


def test_volume_lifecycle(plugin, sim, dsp):
    """Check, preview, create, diff (none/update/replace), update, drift, delete, gone."""
    rpc, proc = plugin
    assert configure(rpc, sim).acceptSecrets

    bad = rpc.check(V, "data", {"size": 0})
    assert [f.property for f in bad.failures] == ["size"]
    typo = rpc.check(V, "data", {"size": 1, "sizeGb": 2})
    assert typo.failures[0].property == "sizeGb"

    inputs = plain(rpc.check(V, "data", {"size": 10, "chapUser": "chapuser", "chapSecret": CHAP}).inputs)
    assert inputs["name"] == "data" and inputs["chapSecret"] == Secret(CHAP)

    before = writes(sim)
    pre = rpc.create(V, "data", inputs, preview=True)
    assert pre.id == "" and plain(pre.properties)["iqn"] == UNKNOWN
    assert writes(sim) == before  # preview made no change on the DSP

    made = rpc.create(V, "data", inputs)
    vid, state = made.id, plain(made.properties)
    assert vid and state["iqn"].startswith("iqn.") and state["size"] == 10
    assert state["chapSecret"] == Secret(CHAP)  # kept from the input, and secret
    ai = dsp.get(f"/app_instances/{state['aiId']}")
    assert ai["name"] == "data"

    same = rpc.diff(V, "data", vid, state, inputs)
    assert same.changes == pb.DiffResponse.DIFF_NONE

    grown = {**inputs, "size": 12}
    d = rpc.diff(V, "data", vid, state, grown)
    assert d.changes == pb.DiffResponse.DIFF_SOME and list(d.replaces) == []
    assert d.detailedDiff["size"].kind == pb.PropertyDiff.UPDATE
    auth = sum(n for k, n in sim.counters().items() if k.startswith("PUT ") and k.endswith("/auth"))
    state = plain(rpc.update(V, "data", vid, state, grown).properties)
    assert state["size"] == 12
    # the unchanged CHAP secret is not written again
    assert sum(n for k, n in sim.counters().items() if k.startswith("PUT ") and k.endswith("/auth")) == auth
    assert dsp.get(f"/app_instances/{state['aiId']}")["storage_instances"][0]["volumes"][0]["size"] == 12

    moved = {**grown, "tenant": "/root/elsewhere"}
    r = rpc.diff(V, "data", vid, state, moved)
    assert list(r.replaces) == ["tenant"]
    assert r.detailedDiff["tenant"].kind in (pb.PropertyDiff.ADD_REPLACE, pb.PropertyDiff.UPDATE_REPLACE)

    shrink = rpc.check(V, "data", {**grown, "size": 4}, olds=grown)
    assert [f.property for f in shrink.failures] == ["size"]
    assert "cannot shrink" in shrink.failures[0].reason

    # drift: grown out of band to 20 GiB; refresh shows it and the next diff wants 12 back
    path = f"/app_instances/{state['aiId']}/storage_instances/storage-1/volumes/volume-1"
    dsp.put(path, {"size": 20})
    seen = rpc.read(V, "data", vid, state, grown)
    assert seen.id == vid and plain(seen.properties)["size"] == 20
    assert plain(seen.inputs)["size"] == 20 and plain(seen.inputs)["chapSecret"] == Secret(CHAP)
    # 20 -> 12 is a shrink: a clear plan error on the next preview's Check
    again = rpc.check(V, "data", grown, olds=plain(seen.inputs))
    assert [f.property for f in again.failures] == ["size"]
    assert "cannot shrink from 20 to 12" in again.failures[0].reason

    rpc.delete(V, "data", vid, state)
    assert rpc.read(V, "data", vid, state, grown).id == ""  # gone: dropped from state
    rpc.delete(V, "data", vid, state)  # deleting what is gone succeeds


def test_deleted_out_of_band_and_import(plugin, sim, dsp):
    """A volume deleted behind Pulumi's back reads as gone; an existing one imports by name."""
    rpc, proc = plugin
    configure(rpc, sim)
    inputs = plain(rpc.check(V, "logs", {"size": 3}).inputs)
    made = rpc.create(V, "logs", inputs)
    state = plain(made.properties)

    imp = rpc.read(V, "logs-imported", "logs")
    assert imp.id == made.id
    assert rpc.read(V, "logs-by-id", made.id).id == made.id  # by its id as well as its name
    imported = plain(imp.inputs)
    assert imported["name"] == "logs" and imported["size"] == 3
    checked = plain(rpc.check(V, "logs-imported", imported).inputs)
    assert rpc.diff(V, "logs-imported", imp.id, plain(imp.properties), checked).changes \
        == pb.DiffResponse.DIFF_NONE  # import then plan is empty

    dsp.put(f"/app_instances/{state['aiId']}", {"admin_state": "offline", "force": True})
    dsp.delete(f"/app_instances/{state['aiId']}")
    assert rpc.read(V, "logs", made.id, state, inputs).id == ""
    assert rpc.read(V, "x", "no-such-volume").id == ""  # import of nothing: not found


def test_snapshot_and_clone(plugin, sim, dsp):
    """A snapshot of a volume, and a volume made from it (the clone), through the provider."""
    rpc, proc = plugin
    configure(rpc, sim)
    vol = rpc.create(V, "src", plain(rpc.check(V, "src", {"size": 4}).inputs))
    snap_in = plain(rpc.check(S, "snap", {"volumeId": vol.id}).inputs)
    snap = rpc.create(S, "snap", snap_in)
    assert snap.id.startswith(vol.id + "/")
    assert plain(snap.properties)["opState"] == "available"
    imported = rpc.read(S, "snap-imported", snap.id)
    assert imported.id == snap.id and plain(imported.inputs)["volumeId"] == vol.id
    assert rpc.diff(S, "snap-imported", snap.id, plain(imported.properties), snap_in).changes \
        == pb.DiffResponse.DIFF_NONE

    clone_in = plain(rpc.check(V, "clone", {"size": 4, "snapshotId": snap.id}).inputs)
    clone = rpc.create(V, "clone", clone_in)
    cstate = plain(clone.properties)
    assert cstate["snapshotId"] == snap.id  # kept from the input
    assert rpc.diff(V, "clone", clone.id, cstate, clone_in).changes == pb.DiffResponse.DIFF_NONE

    with pytest.raises(grpc.RpcError) as e:  # a snapshot of a volume that does not exist
        rpc.create(S, "orphan", {"volumeId": "/root/00000000-0000-0000-0000-00000000dead"})
    assert e.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
    assert "Traceback" not in e.value.details()

    for rid, token, name, props in ((clone.id, V, "clone", cstate),
                                    (snap.id, S, "snap", plain(snap.properties)),
                                    (vol.id, V, "src", plain(vol.properties))):
        rpc.delete(token, name, rid, props)
    assert dsp.list("/app_instances") is not None and list(dsp.list("/app_instances")) == []


def test_errors_are_clear_and_secrets_stay_out(own_plugin, sim):
    """A wrong password fails the first real call with UNAUTHENTICATED and no secret in the
    message or the plugin's log."""
    rpc, proc = own_plugin
    rpc.configure(endpoint=sim.http_url, sanLogin="admin", sanPassword=Secret("wrong-pass-42"),
                  datera503Timeout=2)
    inputs = plain(rpc.check(V, "data", {"size": 1}).inputs)
    with pytest.raises(grpc.RpcError) as e:
        rpc.create(V, "data", inputs)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "datera:index:Volume 'data'" in e.value.details()
    assert "wrong-pass-42" not in e.value.details()
    assert "Traceback" not in e.value.details()
    configure(rpc, sim)  # reconfigured with the right password, the same call succeeds
    assert rpc.create(V, "data", {**inputs, "chapUser": "chapuser", "chapSecret": CHAP}).id
    from datera_iac.pulumi.testing import stop_plugin

    stop_plugin(proc)
    with open(proc.log_path) as f:
        log = f.read()
    assert "wrong-pass-42" not in log and CHAP not in log


def test_parallel_creates(plugin, sim, dsp):
    """The engine creates independent resources in parallel: six concurrent Creates on one
    plugin make six volumes, no twins, and delete cleanly in parallel too."""
    from concurrent.futures import ThreadPoolExecutor

    rpc, _ = plugin
    configure(rpc, sim)
    names = [f"par-{i}" for i in range(6)]
    inputs = {n: plain(rpc.check(V, n, {"size": 1}).inputs) for n in names}
    with ThreadPoolExecutor(6) as pool:
        made = dict(zip(names, pool.map(lambda n: rpc.create(V, n, inputs[n]), names), strict=True))
    assert len({m.id for m in made.values()}) == 6
    assert sorted(ai["name"] for ai in dsp.list("/app_instances")) == names
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda n: rpc.delete(V, n, made[n].id, plain(made[n].properties)), names))
    assert list(dsp.list("/app_instances")) == []


def test_refresh_keeps_a_declaration_only_volume_type(plugin, sim):
    """`pulumi refresh` of a VolumeType that is not materialized on the DSP keeps it, with
    no drift: Read passes the recorded spec to the kind (``read_known``), as the engine's
    refresh and the Terraform provider do, instead of reading the id alone (which cannot
    see a type that exists only as a Cinder declaration, and dropped it)."""
    rpc, _proc = plugin
    configure(rpc, sim)
    T = "datera:index:VolumeType"
    inputs = plain(rpc.check(T, "gold", {"name": "gold", "replicaCount": 2,
                                         "totalIopsMax": 5000}).inputs)
    made = rpc.create(T, "gold", inputs)
    state = plain(made.properties)
    seen = rpc.read(T, "gold", made.id, state, inputs)
    assert seen.id == made.id
    assert plain(seen.inputs)["replicaCount"] == 2
    assert rpc.diff(T, "gold", made.id, plain(seen.properties), inputs).changes \
        == pb.DiffResponse.DIFF_NONE


def test_removed_df_key_is_reset(plugin, sim, dsp):
    """A DF: key taken out of the program goes back to its default on the DSP: the engine's
    old_inputs (the last declaration) reach kind.declare_removed in Diff and Update, as the
    engine's own state does for `datera-iac up`."""
    rpc, _ = plugin
    configure(rpc, sim)
    specs = {"DF:write_iops_max": "5000", "DF:replica_count": "2"}
    inputs = plain(rpc.check(V, "qos", {"size": 2, "extraSpecs": specs}).inputs)
    made = rpc.create(V, "qos", inputs)
    vid, state = made.id, plain(made.properties)

    def policy():
        vol = dsp.get(f"/app_instances/{state['aiId']}")["storage_instances"][0]["volumes"][0]
        return {k: v for k, v in (vol.get("performance_policy") or {}).items()
                if k.endswith("_max") and v}

    assert policy() == {"write_iops_max": 5000}
    # the last QoS key goes: the performance policy must go with it
    news = plain(rpc.check(V, "qos", {"size": 2, "extraSpecs": {"DF:replica_count": "2"}}).inputs)
    d = rpc.diff(V, "qos", vid, state, news, old_inputs=inputs)
    assert d.changes == pb.DiffResponse.DIFF_SOME and list(d.replaces) == []
    state = plain(rpc.update(V, "qos", vid, state, news, old_inputs=inputs).properties)
    assert policy() == {}
    assert rpc.diff(V, "qos", vid, state, news, old_inputs=news).changes == pb.DiffResponse.DIFF_NONE


def test_a_refresh_wave_lists_the_tenant_once(plugin, sim):
    """`pulumi refresh` reads every resource with its own Read, a few at a time: 30 volumes
    read by 4 workers one after another make ONE list call (the provider's read batches
    share the wave's listing), with the same answers as before; a write through the
    provider drops the listing."""
    from concurrent.futures import ThreadPoolExecutor

    rpc, _ = plugin
    configure(rpc, sim)
    made = {}
    for i in range(30):
        n = f"wave-{i:02d}"
        inputs = plain(rpc.check(V, n, {"size": 1}).inputs)
        made[n] = (rpc.create(V, n, inputs), inputs)

    def refresh():
        before = dict(sim.counters())
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda n: rpc.read(V, n, made[n][0].id,
                                                   plain(made[n][0].properties), made[n][1]),
                                made))
        used = {k: v - before.get(k, 0) for k, v in sim.counters().items()
                if v != before.get(k, 0)}
        return got, used

    got, used = refresh()
    assert [g.id for g in got] == [m.id for m, _ in made.values()]
    assert [plain(g.inputs)["size"] for g in got] == [1] * 30
    assert used == {"GET /v2.2/app_instances": 1}, used
    rpc.delete(V, "wave-00", made["wave-00"][0].id, plain(made["wave-00"][0].properties))
    got, used = refresh()
    assert got[0].id == "" and all(g.id for g in got[1:])  # the delete is seen
    assert used.get("GET /v2.2/app_instances") == 1, used


def test_a_destroy_checks_snapshots_from_one_listing(plugin, sim, dsp):
    """Issue 21: `pulumi destroy` deletes each volume after its dependents check (issue
    16); 12 deletes by 4 workers share one listing of the tenant (a GET per volume before)
    and write twice each. An outside snapshot still refuses its volume, with nothing
    written; a snapshot deleted through the provider drops the listing, so its volume is
    not refused on a stale view."""
    from concurrent.futures import ThreadPoolExecutor

    rpc, _ = plugin
    configure(rpc, sim)
    made = {}
    for i in range(14):
        n = f"gone-{i:02d}"
        made[n] = rpc.create(V, n, plain(rpc.check(V, n, {"size": 1}).inputs))
    theirs = dsp.post(f"/app_instances/{made['gone-12'].id.rsplit('/', 1)[-1]}/"
                      "storage_instances/storage-1/volumes/volume-1/snapshots", {})["timestamp"]
    ours = rpc.create(S, "ours", plain(rpc.check(S, "ours", {"volumeId": made["gone-13"].id}).inputs))

    def used_by(fn):
        before = dict(sim.counters())
        out = fn()
        return out, {k: v - before.get(k, 0) for k, v in sim.counters().items()
                     if v != before.get(k, 0)}

    def delete(n):
        rpc.delete(V, n, made[n].id, plain(made[n].properties))

    gone = [f"gone-{i:02d}" for i in range(12)]
    with ThreadPoolExecutor(4) as pool:
        _, used = used_by(lambda: list(pool.map(delete, gone)))
    assert used == {"GET /v2.2/app_instances": 1, "PUT /v2.2/app_instances/:id": 12,
                    "DELETE /v2.2/app_instances/:id": 12}, used
    with pytest.raises(grpc.RpcError) as e:
        used_by(lambda: delete("gone-12"))
    assert str(theirs) in e.value.details()
    rpc.delete(S, "ours", ours.id, plain(ours.properties))
    _, used = used_by(lambda: delete("gone-13"))
    assert used.get("GET /v2.2/app_instances") == 1 and "GET /v2.2/app_instances/:id" not in used
    assert [a["name"] for a in dsp.list("/app_instances")] == ["gone-12"]


def test_revert_to_snapshot(plugin, sim, dsp):
    """restorePoint: Diff shows an in-place update of it, Update reverts the volume (the
    DSP's restore point), Read keeps it, the same value diffs empty; an in-use volume is
    refused with nothing written until forceRestore."""
    rpc, _ = plugin
    configure(rpc, sim)
    inputs = plain(rpc.check(V, "rv-db", {"size": 2}).inputs)
    made = rpc.create(V, "rv-db", inputs)
    vid, state = made.id, plain(made.properties)
    snap = rpc.create(S, "rv-snap", plain(rpc.check(S, "rv-snap", {"volumeId": vid}).inputs))
    ts = plain(snap.properties)["timestamp"]
    path = f"/app_instances/{state['aiId']}/storage_instances/storage-1/volumes/volume-1"

    want = plain(rpc.check(V, "rv-db", {**inputs, "restorePoint": ts}, olds=inputs).inputs)
    d = rpc.diff(V, "rv-db", vid, state, want)
    assert d.changes == pb.DiffResponse.DIFF_SOME and list(d.replaces) == []
    assert list(d.detailedDiff) == ["restorePoint"]
    before = sim.counters()
    state = plain(rpc.update(V, "rv-db", vid, state, want).properties)
    assert dsp.get(path)["restore_point"] == ts and state["restorePoint"] == ts
    puts = {k: n - before.get(k, 0) for k, n in sim.counters().items()
            if k.split()[0] in ("POST", "PUT", "DELETE") and "login" not in k
            and n != before.get(k, 0)}
    assert sorted(puts.values()) == [1, 2], puts  # offline + online, restore
    seen = rpc.read(V, "rv-db", vid, state, want)
    assert plain(seen.inputs)["restorePoint"] == ts
    assert rpc.diff(V, "rv-db", vid, plain(seen.properties), want).changes == pb.DiffResponse.DIFF_NONE

    sim.log_in(state["aiId"], "iqn.1993-08.org.debian:01:pu")
    ts2 = dsp.post(f"{path}/snapshots", {"uuid": "0b1c2d3e-0000-4000-8000-000000000003"})["timestamp"]
    again = {**want, "restorePoint": ts2}
    before = sim.counters()
    with pytest.raises(grpc.RpcError) as e:
        rpc.update(V, "rv-db", vid, state, again)
    assert "in use" in e.value.details() and "force_restore" in e.value.details()
    assert not [k for k, n in sim.counters().items() if k.split()[0] in ("POST", "PUT", "DELETE")
                and "login" not in k and n != before.get(k, 0)]
    forced = {**again, "forceRestore": True}
    state = plain(rpc.update(V, "rv-db", vid, state, forced).properties)
    assert dsp.get(path)["restore_point"] == ts2
    rpc.delete(S, "rv-snap", snap.id, plain(snap.properties))
    dsp.delete(f"{path}/snapshots/{ts2}")
    rpc.delete(V, "rv-db", vid, state)
