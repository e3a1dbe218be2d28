"""The Volume kind on an older product (3.2: placement_mode, /metadata, no template
override), on API v2.1, and with the simulator's asynchronous states (bounded waits)."""

from __future__ import annotations

import pytest

from datera_iac.errors import WaitTimeout
from datera_iac.resources import KINDS
from tests.resources.conftest import make_ctx

VOLUME = KINDS["Volume"]
SNAPSHOT = KINDS["Snapshot"]


def spec(**kw):
    return VOLUME.spec_from({"name": "vol-a", "size": 10, **kw})


def test_product_32_uses_placement_mode_and_legacy_metadata(make_sim):
    """Before 3.3 the volume carries placement_mode (no placement_policy), metadata lives
    under /metadata, and an extend takes the driver's offline flip."""
    old = make_sim(sw_version="3.2.0.0")
    ctx = make_ctx(old)
    s = spec(extra_specs={"placement_mode": "all_flash", "total_iops_max": 50},
             metadata={"team": "blue"})
    obs = VOLUME.create(ctx, s)
    counts = old.counters()
    assert counts["POST /v2.2/app_instances"] == 1
    assert counts["PUT /v2.2/app_instances/:id/metadata"] == 1
    vol = ctx.client.get(obs.outputs.volume_path)
    assert vol["placement_mode"] == "all_flash"
    assert VOLUME.read(ctx, obs.id).spec.metadata == {"team": "blue"}
    assert not VOLUME.diff(VOLUME.read(ctx, obs.id).spec, s).changed
    grown = spec(size=15, extra_specs={"placement_mode": "all_flash", "total_iops_max": 50},
                 metadata={"team": "blue"})
    before = old.counters().get("PUT /v2.2/app_instances/:id", 0)
    upd = VOLUME.update(ctx, obs.id, s, grown)
    assert upd.spec.size == 15 and upd.outputs.admin_state == "online"
    assert old.counters()["PUT /v2.2/app_instances/:id"] - before == 2  # offline, online


def test_api_21(make_sim):
    """With api_version 2.1 forced, create, read and the bulk read still round-trip."""
    sim21 = make_sim()
    ctx = make_ctx(sim21, api_version="2.1")
    s = spec(extra_specs={"total_iops_max": 70})
    obs = VOLUME.create(ctx, s)
    assert sim21.counters()["POST /v2.1/app_instances"] == 1
    assert not VOLUME.diff(VOLUME.read(ctx, obs.id).spec, s).changed
    assert not VOLUME.diff(VOLUME.read_many(ctx, [obs.id])[obs.id].spec, s).changed


def test_waits_for_storage_and_clone(make_sim):
    """With a storage instance that takes time to come online and a slow clone, create
    returns only once the volume is available."""
    slow = make_sim(si_online_delay=0.3, clone_delay=0.3)
    ctx = make_ctx(slow)
    src = VOLUME.create(ctx, spec(name="src-1"))
    assert src.outputs.op_state == "available"
    clone = VOLUME.create(ctx, spec(name="clone-1", clone_of=src.id))
    assert clone.outputs.op_state == "available"
    assert ctx.client.get(clone.outputs.path).get("op_state") != "cloning"


def test_wait_is_bounded(make_sim):
    """A storage instance that never comes online within the create timeout raises
    WaitTimeout naming the volume; the volume is kept (the DSP is still building it) and
    find() returns it, so the engine records its id and the next run resumes (user-needs
    2.8) instead of re-creating it."""
    stuck = make_sim(si_online_delay=60)
    ctx = make_ctx(stuck)
    ctx.timeouts = type(ctx.timeouts)(create=0.3)
    with pytest.raises(WaitTimeout) as e:
        VOLUME.create(ctx, spec())
    assert "'vol-a'" in str(e.value) and "available" in str(e.value)
    [ai] = list(ctx.client.list("/app_instances"))
    found = VOLUME.find(ctx, spec())
    assert found is not None and found.id.endswith(ai["id"])
