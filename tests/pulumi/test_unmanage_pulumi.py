"""Unmanage instead of delete in the Pulumi provider, over gRPC against the simulator
(issue 18). Pulumi's own ``retainOnDelete`` never calls the provider's Delete, so it cannot
rename; the Volume's ``unmanageOnDelete`` input can: Delete then only releases the volume
(``rename``: ``UNMANAGED-<name>``, the Cinder driver's unmanage; ``keep``: as it is) and
never deletes it or its snapshots."""

from __future__ import annotations

import pytest

from datera_iac.pulumi.testing import plain

V = "datera:index:Volume"


def _writes(sim) -> dict[str, int]:
    return {k: n for k, n in sim.counters().items()
            if k.split()[0] in ("POST", "PUT", "DELETE") and "/v2." in k and "login" not in k}


@pytest.mark.parametrize("how, name", [("rename", "UNMANAGED-data-p"), ("keep", "data-p")])
def test_delete_unmanages(plugin, sim, dsp, how, name):
    from datera_iac.pulumi._codec import Secret

    rpc, _ = plugin
    rpc.configure(endpoint=sim.http_url, sanLogin="admin",
                  sanPassword=Secret(sim.users["admin"]), datera503Timeout=5)
    vol = rpc.create(V, "data", plain(rpc.check(V, "data", {"name": "data-p", "size": 1}).inputs))
    state = plain(vol.properties)
    news = plain(rpc.check(V, "data", {"name": "data-p", "size": 1, "unmanageOnDelete": how},
                           olds=state).inputs)
    before = _writes(sim)
    upd = rpc.update(V, "data", vol.id, state, news)
    assert _writes(sim) == before  # recorded, never sent
    state = plain(upd.properties)
    assert state["unmanageOnDelete"] == how
    url = f"/app_instances/{state['aiId']}/storage_instances/storage-1/volumes/volume-1/snapshots"
    dsp.post(url, {"uuid": "3f0c1a2b-4d5e-4f60-8a7b-9c0d1e2f3a4c"})  # made elsewhere
    rpc.delete(V, "data", vol.id, state)
    assert [a["name"] for a in dsp.list("/app_instances")] == [name]
    assert len(list(dsp.list(url))) == 1
