"""user-needs §2.8: timeouts and retry policy as first-class settings.

Acceptance: the simulator answers 503 to the first 5 calls of each operation (tenant
create, volume create, snapshot create, volume update: armed one operation at a time with
the simulator's ``only`` filter) → the apply succeeds with no duplicate objects, the 503s
were really served, and the retry interval is the ``datera_503_interval`` setting; with
``timeouts.create = 1 s`` and a slow simulator (storage instances come online after 4 s)
the apply fails naming the resource, and the state still records the id that was created,
so the next run resumes instead of making a twin. Timeouts given in Terraform reach
Context.timeouts: tests/terraform/test_sim_e2e.py / test_provider_unit.py.
"""

from __future__ import annotations

import threading
import time

from needkit import app_instances, engine_ws

from datera_iac.resources.base import Timeouts

STACK = """\
name: need08
runtime: yaml
config:
  size: {type: integer, default: 1}
resources:
  t:
    type: datera:index:Tenant
    properties:
      name: retry-team
  v:
    type: datera:index:Volume
    properties:
      name: retry-vol
      size: ${size}
      tenant: ${t.name}
  s:
    type: datera:index:Snapshot
    properties:
      volumeId: ${v.id}
"""

OPS = [r"^POST /v2\.\d/tenants$", r"^POST /v2\.\d/app_instances$",
       r"^POST /v2\.\d/app_instances/[^/]+/storage_instances/[^/]+/volumes/[^/]+/snapshots$"]


def _arm_each(sim, ops, stop):
    """Arm a 5-request 503 burst for each operation in turn (the simulator's ``only``
    filter applies it to that operation); the next one is armed once those 5 were served."""
    for n, op in enumerate(ops, 1):
        sim.set_faults(fail_503_burst=5, only=op)
        while not stop.is_set() and sum(r["status"] == 503 for r in sim.request_log()) < 5 * n:
            time.sleep(0.005)
    sim.set_faults(fail_503_burst=0, only=None)


def test_five_503s_per_operation_converge_without_twins(sim, dsp, tmp_path):
    ws = lambda **c: engine_ws(sim, tmp_path / "s", STACK, config=c,
                               dsp_config={"datera_503_interval": 0.05,
                                           "datera_503_timeout": 20})
    stop = threading.Event()
    armer = threading.Thread(target=_arm_each, args=(sim, OPS, stop), daemon=True)
    armer.start()
    try:
        _, result = ws().up()
    finally:
        stop.set()
        armer.join(10)
        sim.set_faults(fail_503_burst=0, only=None)
    assert result.ok, result.failures
    refused = [r for r in sim.request_log() if r["status"] == 503]
    assert len(refused) == 15, [(r["method"], r["path"]) for r in refused]
    assert {r["method"] + " " + r["template"] for r in refused} == {
        "POST /v2.2/tenants", "POST /v2.2/app_instances",
        ("POST /v2.2/app_instances/:id/storage_instances/:storage_instance_name/volumes/"
         ":volume_name/snapshots")}
    # no duplicates: one volume, one snapshot, one tenant
    [ai] = app_instances(dsp, "/root/retry-team")
    vol = ai["storage_instances"][0]["volumes"][0]
    snaps = dsp.get(f"{vol['path']}/snapshots", tenant="/root/retry-team")
    assert len(snaps) == 1
    assert [t["name"] for t in dsp.list("/tenants") if t["name"] == "retry-team"] == ["retry-team"]

    # an update (PUT) under the same storm
    sim.set_faults(fail_503_burst=5, only=r"^PUT /v2\.\d/app_instances/[^/]+/storage_instances")
    try:
        _, result = ws(size="2").up()
    finally:
        sim.set_faults(fail_503_burst=0, only=None)
    assert result.ok, result.failures
    assert sum(1 for r in sim.request_log() if r["status"] == 503) == 20


def test_create_timeout_names_resource_and_state_keeps_the_id(make_sim, tmp_path):
    slow = make_sim(si_online_delay=4.0)
    text = STACK.split("  s:\n")[0]
    ws = lambda: engine_ws(slow, tmp_path / "s", text,
                           timeouts=Timeouts(create=1, update=5, delete=5, read=5))
    t0 = time.monotonic()
    _, result = ws().up()
    assert not result.ok
    assert time.monotonic() - t0 < 4  # bounded by the 1 s create timeout, not the DSP
    text_fail = " ".join(str(f) for f in result.failures.values()) if isinstance(
        result.failures, dict) else " ".join(map(str, result.failures))
    assert "v" in text_fail and ("timed out" in text_fail or "timeout" in text_fail.lower()), text_fail
    state = ws().load_state().resources
    assert "v" in state and state["v"].id, "the created volume's id must be in state"
    from needkit import client_for

    c = client_for(slow)
    [ai] = app_instances(c, "/root/retry-team")
    assert state["v"].id.endswith(ai["id"])
    time.sleep(3.2)  # the DSP finishes; the next run resumes without a twin
    _, result = ws().up()
    assert result.ok, result.failures
    assert len(app_instances(c, "/root/retry-team")) == 1
    c.close()
