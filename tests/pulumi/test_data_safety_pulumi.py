"""Issue 16 in the Pulumi provider, over gRPC against the simulator: a volume's Delete
never takes snapshots with it that the stack did not delete first (case 5), and a tenant's
Delete names what it still holds instead of failing with the DSP's 409 (case 10)."""

from __future__ import annotations

import grpc
import pytest

from datera_iac.pulumi.testing import plain

V = "datera:index:Volume"
S = "datera:index:Snapshot"
T = "datera:index:Tenant"


@pytest.fixture
def dsp(sim):
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    return DspClient(DateraConfig.from_mapping({
        "endpoint": sim.http_url, "san_login": "admin", "san_password": sim.users["admin"]},
        use_env=False))


def _configure(rpc, sim):
    from datera_iac.pulumi._codec import Secret

    rpc.configure(endpoint=sim.http_url, sanLogin="admin",
                  sanPassword=Secret(sim.users["admin"]), datera503Timeout=5)


def _writes(sim) -> int:
    return sum(n for k, n in sim.counters().items()
               if k.split()[0] in ("POST", "PUT", "DELETE") and "/v2." in k and "login" not in k)


def test_case5_volume_delete_refuses_snapshots_made_elsewhere(plugin, sim, dsp):
    """Pulumi deletes the stack's snapshot first; the one made with the DSP's API stays,
    so the volume's Delete is refused, naming it, with no write (main deleted both). With
    cascade recorded in the volume's state, the Delete goes ahead."""
    rpc, _ = plugin
    _configure(rpc, sim)
    vol = rpc.create(V, "data", plain(rpc.check(V, "data", {"size": 2}).inputs))
    vstate = plain(vol.properties)
    snap = rpc.create(S, "snap", plain(rpc.check(S, "snap", {"volumeId": vol.id}).inputs))
    url = (f"/app_instances/{vstate['aiId']}/storage_instances/storage-1/volumes/volume-1/"
           "snapshots")
    theirs = str(dsp.post(url, {"uuid": "3f0c1a2b-4d5e-4f60-8a7b-9c0d1e2f3a4b"})["timestamp"])
    rpc.delete(S, "snap", snap.id, plain(snap.properties))
    before = _writes(sim)
    with pytest.raises(grpc.RpcError) as e:
        rpc.delete(V, "data", vol.id, vstate)
    msg = e.value.details()
    assert f"Snapshot {theirs} of volume data" in msg and "cascade" in msg
    assert "Traceback" not in msg
    assert _writes(sim) == before
    assert [str(s["timestamp"]) for s in dsp.list(url)] == [theirs]
    rpc.delete(V, "data", vol.id, {**vstate, "cascade": True})
    assert list(dsp.list("/app_instances")) == []


def test_case10_tenant_delete_names_what_it_holds(plugin, sim, dsp):
    """A tenant still holding a volume someone else made: the Delete names it (no 409)."""
    rpc, _ = plugin
    _configure(rpc, sim)
    t = rpc.create(T, "team", plain(rpc.check(T, "team", {"name": "team-p"}).inputs))
    dsp.post("/app_instances", {"name": "their-vol", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1}]}]},
        tenant="/root/team-p")
    before = _writes(sim)
    with pytest.raises(grpc.RpcError) as e:
        rpc.delete(T, "team", t.id, plain(t.properties))
    assert "Volume their-vol" in e.value.details() and "state rm" in e.value.details()
    assert _writes(sim) == before


def test_case9c_clone_below_its_sources_live_size_is_refused_at_preview(plugin, sim, dsp):
    """A clone declared smaller than its source's live size is refused by the preview's
    Create (what `pulumi preview`/`up` runs first), naming the live size, before any write;
    a Create without preview (`up --skip-preview`) refuses it before its POST too."""
    rpc, _ = plugin
    _configure(rpc, sim)
    ai = dsp.post("/app_instances", {"name": "pu-src", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 2, "replica_count": 1}]}]})
    dsp.put(ai["storage_instances"][0]["volumes"][0]["path"], {"size": 4})  # grown since
    inputs = plain(rpc.check(V, "clone", {"name": "pu-clone", "size": 3,
                                          "cloneOf": f"/root/{ai['id']}"}).inputs)
    before = _writes(sim)
    for preview in (True, False):
        with pytest.raises(grpc.RpcError) as e:
            rpc.create(V, "clone", inputs, preview=preview)
        assert f"source volume /root/{ai['id']} is 4 GiB, the clone declares 3 GiB" in \
            e.value.details(), e.value.details()
    assert _writes(sim) == before


def test_case1_an_object_of_another_dsp_is_refused(plugin, sim):
    """A volume made on one DSP records it in its outputs; with the provider pointed at
    another DSP, a refresh (Read), a diff, an update and a delete of it refuse, naming both
    DSPs, with 0 writes (before: the refresh read it as gone and `pulumi up --refresh`
    created it again on the other DSP)."""
    from datera_iac.sim import SimServer

    rpc, _ = plugin
    _configure(rpc, sim)
    inputs = plain(rpc.check(V, "v", {"name": "dsp-bound", "size": 1}).inputs)
    made = rpc.create(V, "v", inputs)
    state = plain(made.properties)
    assert state["__dsp"]["endpoint"].rstrip("/") == sim.http_url.rstrip("/")
    other = SimServer(name="other-dsp").start()
    try:
        _configure(rpc, other)
        before = (_writes(sim), _writes(other))
        bigger = {**inputs, "size": 2}
        for call in (lambda: rpc.read(V, "v", made.id, state, inputs),
                     lambda: rpc.diff(V, "v", made.id, state, bigger, old_inputs=inputs),
                     lambda: rpc.update(V, "v", made.id, state, bigger, old_inputs=inputs),
                     lambda: rpc.delete(V, "v", made.id, state)):
            with pytest.raises(grpc.RpcError) as e:
                call()
            assert "belongs to another DSP" in e.value.details() and \
                other.http_url.rstrip("/") in e.value.details(), e.value.details()
        assert (_writes(sim), _writes(other)) == before
    finally:
        other.stop()
    _configure(rpc, sim)  # its own DSP: read as before
    assert plain(rpc.read(V, "v", made.id, state, inputs).properties)["size"] == 1
    rpc.delete(V, "v", made.id, state)


def test_bench_foreign_objects_section_pulumi():
    """The fault report's Pulumi figures (bench/foreign_objects.py, the real Pulumi CLI and
    YAML programs): same-named Tenant, Volume, VolumeType and Snapshot of someone else
    neither adopted nor deleted; `pulumi up` and `pulumi up --refresh` against another DSP
    refused with 0 writes; `pulumi destroy` without --yes on a non-TTY stdin refused."""
    import sys

    from tests.pulumi.cli import ROOT

    sys.path.insert(0, str(ROOT / "bench"))
    from foreign_objects import measure_pulumi

    fig = measure_pulumi(1)
    for kind in ("Tenant", "Volume", "VolumeType", "Snapshot"):
        assert fig["objects"][kind] == {"adopted": 0, "deleted": 0, "trials": 1}, fig
    assert fig["refused"]["wrong_dsp"] == [2, 2, 0], fig
    assert fig["refused"]["non_tty_destroy"] == [1, 1], fig
    assert fig["refused"]["live_lock"].startswith("n/a: "), fig
