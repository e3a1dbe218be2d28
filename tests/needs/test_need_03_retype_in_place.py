"""user-needs §2.3: retype (QoS, placement, replica, ip_pool, template) without replacement
or detach.

Acceptance: switch ``volume_type`` gold→silver on an attached volume: the plan shows
update-in-place, the apply issues no DELETE and no offline flip (no admin_state PUT on the
app_instance), and the node's multipath map keeps all its paths (same sessions, no logout).
An ip_pool change is checked on the kind itself: one storage-instance PUT, the volume stays
online (the DSP wants ``force`` for an online ip_pool change; the Cinder driver's flip cut
every session instead).
"""

from __future__ import annotations

from needkit import app_instances, delta, engine_ws, sim_fabric_node, writes_of

from datera_iac.resources.volume import Volume

HEAD = """\
name: need03
runtime: yaml
resources:
  gold:
    type: datera:index:VolumeType
    properties:
      name: gold
      replicaCount: 2
      placementMode: hybrid
      totalIopsMax: 1000
  silver:
    type: datera:index:VolumeType
    properties:
      name: silver
      replicaCount: 3
      placementMode: single_flash
      totalIopsMax: 500
"""


# Pulumi YAML has no conditionals: the stack is written per type instead
def stack(type_: str) -> str:
    return HEAD + f"""  v:
    type: datera:index:Volume
    properties:
      name: retype-vol
      size: 4
      volumeType: ${{{type_}.name}}
      extraSpecs: ${{{type_}.extraSpecs}}
  a:
    type: datera:index:NodeAttachment
    properties:
      volumeId: ${{v.id}}
"""


def _vol(dsp):
    [ai] = app_instances(dsp)
    return ai, ai["storage_instances"][0]["volumes"][0]


def test_gold_to_silver_on_attached_volume(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "node", dsp)
    ws = lambda t: engine_ws(sim, tmp_path / "stack", stack(t), runner=node)
    _, result = ws("gold").up()
    assert result.ok, result.failures
    ai, vol = _vol(dsp)
    assert vol["replica_count"] == 2
    sessions = dict(node.sessions)
    assert len(sessions) == 2

    plan = ws("silver").preview()
    assert not plan.errors
    assert {s.name: s.action for s in plan.changes} == {"v": "update"}
    before = writes_of(sim)
    node.commands.clear()
    _, result = ws("silver").up()
    assert result.ok, result.failures
    sent = delta(writes_of(sim), before)
    assert not any(k.startswith("DELETE") for k in sent), sent
    assert not any(k.startswith("POST /v2.2/app_instances") and k.count("/") <= 3 for k in sent)
    assert "PUT /v2.2/app_instances/:id" not in sent, f"offline flip: {sent}"  # admin_state
    ai2, vol2 = _vol(dsp)
    assert ai2["id"] == ai["id"] and ai2["admin_state"] == "online"
    assert vol2["replica_count"] == 3 and vol2["placement_mode"] == "single_flash"
    # the node: same sessions, nothing logged out, the map untouched
    assert node.sessions == sessions
    assert not any("--logout" in c or "-u" in c for c in node.commands), node.commands
    assert not any(c[:2] == ["multipath", "-f"] for c in node.commands)
    # and the next plan is empty
    assert not ws("silver").preview().changes


def test_ip_pool_change_stays_online(sim, dsp):
    from needkit import client_for

    from datera_iac.config import DateraConfig
    from datera_iac.resources.base import Context

    dsp.post("/access_network_ip_pools", {
        "name": "pool-b", "network_paths": [
            {"name": "b-1", "start_ip": "172.28.1.10", "netmask": 24, "range": 6}]})
    kind = Volume()
    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                     "san_password": "password"}, use_env=False)
    ctx = Context(client=client_for(sim), config=cfg)
    old = kind.spec_from({"name": "pool-vol", "size": 1, "extra_specs": {"DF:ip_pool": "default"}})
    made = kind.create(ctx, old)
    new = kind.spec_from({"name": "pool-vol", "size": 1, "extra_specs": {"ip_pool": "pool-b"}})
    d = kind.diff(old, new)
    assert d.changed and not d.replace
    before = writes_of(sim)
    got = kind.update(ctx, made.id, old, new)
    sent = delta(writes_of(sim), before)
    assert sent == {"PUT /v2.2/app_instances/:id/storage_instances/:storage_instance_name": 1}, sent
    assert got.spec.extra_specs["DF:ip_pool"] == "pool-b"
    assert got.outputs.admin_state == "online"
