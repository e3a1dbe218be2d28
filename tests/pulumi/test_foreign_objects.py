"""Ownership in the Pulumi provider (issue 16, case 4): a Create whose name (a Snapshot:
its uuid) is taken by an object someone else made fails with a conflict naming how to
import it; nothing is adopted, so nothing of theirs can reach Pulumi's state or a later
`pulumi destroy`. (The provider keeps no crash journal: after a killed `pulumi up` the
Pulumi engine reports the pending create and asks for `pulumi refresh`/import; nothing is
looked up by name.)"""

from __future__ import annotations

import grpc
import pytest

from datera_iac.pulumi._codec import Secret
from datera_iac.pulumi.testing import plain

UUID = "0b1c6a2e-1111-4222-8333-444455556666"


def configure(rpc, sim):
    return rpc.configure(endpoint=sim.http_url, sanLogin="admin",
                         sanPassword=Secret(sim.users["admin"]), datera503Timeout=5)


@pytest.fixture
def dsp(sim):
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    return DspClient(DateraConfig.from_mapping({
        "endpoint": sim.http_url, "san_login": "admin", "san_password": sim.users["admin"]}))


def _theirs(dsp, kind):
    """Make the foreign object; returns (token, inputs, a read of it)."""
    if kind == "Tenant":
        dsp.post("/tenants", {"name": "theirs-t", "descr": "theirs"}, tenant="/root")
        return ("datera:index:Tenant", {"name": "theirs-t"},
                lambda: dsp.get("/tenants/root/theirs-t", tenant="/root"))
    if kind == "VolumeType":
        dsp.post("/app_templates", {"name": "theirs_vt", "descr": "theirs", "storage_templates": [
            {"name": "storage-1", "volume_templates": [
                {"name": "volume-1", "size": 1, "replica_count": 2}]}]})
        return ("datera:index:VolumeType", {"name": "theirs_vt", "materialize": True,
                                            "replicaCount": 2},
                lambda: dsp.get("/app_templates/theirs_vt"))
    body = {"name": "theirs-v", "storage_instances": [{"name": "storage-1", "volumes": [
        {"name": "volume-1", "size": 1, "replica_count": 1}]}]}
    ai = dsp.post("/app_instances", body)
    if kind == "Volume":
        return ("datera:index:Volume", {"name": "theirs-v", "size": 1},
                lambda: dsp.get(f"/app_instances/{ai['id']}"))
    vol = ai["storage_instances"][0]["volumes"][0]
    dsp.post(f"{vol['path']}/snapshots", {"uuid": UUID})
    return ("datera:index:Snapshot", {"volumeId": f"/root/{ai['id']}", "uuid": UUID},
            lambda: list(dsp.list(f"{vol['path']}/snapshots")))


@pytest.mark.parametrize("kind", ["Snapshot", "Tenant", "Volume", "VolumeType"])
def test_create_over_a_same_named_foreign_object_is_a_conflict(plugin, sim, dsp, kind):
    rpc, _ = plugin
    configure(rpc, sim)
    token, props, look = _theirs(dsp, kind)
    before = look()
    inputs = plain(rpc.check(token, "mine", props).inputs)
    with pytest.raises(grpc.RpcError) as e:
        rpc.create(token, "mine", inputs)
    detail = e.value.details()
    assert "import" in detail and ("this create did not make it" in detail
                                   or "already exists" in detail or "taken" in detail), detail
    assert look() == before  # theirs, untouched
