"""VolumeTypes through the engine (YAML stack) on the simulator: a second up has no drift
(Cinder-side fields are not mistaken for drift), out-of-band template edits are drift,
destroy removes only what was materialized."""

from __future__ import annotations

import pytest

from datera_iac.engine.core import Workspace
from datera_iac.errors import NotFound

STACK = """\
name: vt
runtime: yaml
resources:
  gold:
    type: datera:index:VolumeType
    properties:
      name: gold
      description: fast tier
      replicaCount: 2
      roundRobin: true
      iopsPerGb: 10
      materialize: true
  plain:
    type: datera:index:VolumeType
    properties:
      name: datera_iops
      writeIopsMax: 5000
"""


@pytest.fixture
def ws(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    (tmp_path / "Pulumi.yaml").write_text(STACK)
    made = []

    def make():
        w = Workspace(stack_file=tmp_path / "Pulumi.yaml", endpoint=sim.http_url, embedded=False)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def _template_calls(sim):
    return {k: n for k, n in sim.counters().items() if "app_templates" in k and n}


def test_up_twice_then_drift_then_destroy(ws, sim, ctx):
    """up creates one template (the plain type costs nothing); a second up is empty;
    an out-of-band replica change is drift on that field alone; destroy deletes it."""
    plan, result = ws().up()
    assert result.ok and plan.counts()["create"] == 2
    assert _template_calls(sim) == {"POST /v2.2/app_templates": 1}  # the answer is the read
    state = ws().load_state()
    assert state.resources["plain"].id == "datera_iops"
    assert state.resources["gold"].id == "/app_templates/gold"

    plan2, _ = ws().up()
    assert not plan2.changes and not plan2.drift

    ctx.client.put("/app_templates/gold", {"storage_templates": [{
        "name": "storage-1", "volume_templates": [{"name": "volume-1", "size": 1,
                                                   "replica_count": 3}]}]})
    plan3, result3 = ws().up()
    assert [(d.name, d.fields) for d in plan3.drift] == [("gold", ("replica_count",))]
    assert result3.ok
    got = ctx.client.get("/app_templates/gold")
    assert got["storage_templates"][0]["volume_templates"][0]["replica_count"] == 2

    deletes_before = sim.counters().get("DELETE /v2.2/app_templates/:name", 0)
    _, result4 = ws().up(destroy=True)
    assert result4.ok and not ws().load_state().resources
    assert sim.counters()["DELETE /v2.2/app_templates/:name"] == deletes_before + 1
    with pytest.raises(NotFound):
        ctx.client.get("/app_templates/gold")
