"""Workspace.up warms the DSP session up while it plans a first run (issue #4).

What must not change: the requests a run makes (one probe, one login, one GET /system
only when a Volume is created), none for an `up` that plans nothing or is declined.
"""

from __future__ import annotations

import threading

import pytest

from tests.fault.conftest import wait_until

pytestmark = pytest.mark.timeout(60)

VOLUMES = """name: warm
runtime: yaml
resources:
  v1:
    type: datera:index:Volume
    properties:
      name: warm-1
      size: 1
  v2:
    type: datera:index:Volume
    properties:
      name: warm-2
      size: 1
"""

TENANT = """name: warm
runtime: yaml
resources:
  team:
    type: datera:index:Tenant
    properties:
      name: warm-team
"""

SETUP = ("GET /api_versions", "PUT /v2.2/login", "GET /v2.2/system")


def setup_counts(sim):
    c = sim.counters()
    return {k: c.get(k, 0) for k in SETUP}


def test_first_up_sets_up_once_and_next_up_adds_nothing(sim, sim_ws):
    """A first up: one probe, one login, one GET /system, whoever asks first. The next up
    (a state now: no warm-up, the refresh logs in) plans nothing and reads no /system."""
    _, res = sim_ws(VOLUMES).up(quiet=True)
    assert res is not None and res.ok, res
    assert setup_counts(sim) == dict.fromkeys(SETUP, 1)
    assert sim.counters()["POST /v2.2/app_instances"] == 2
    before = sim.counters()
    plan, _ = sim_ws(VOLUMES).up(quiet=True)
    assert not plan.changes
    after = sim.counters()
    grew = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert grew.get("GET /api_versions") == 1 and grew.get("PUT /v2.2/login") == 1, grew
    assert "GET /v2.2/system" not in grew and not any(k.startswith("POST") for k in grew), grew


def test_no_system_read_without_a_volume(sim, sim_ws):
    """A stack without volumes does not need the product version: no GET /system for it.
    The one GET /system left is the state recording which DSP it belongs to (its uuid,
    issue 16), once, after the first apply; the next up reads none."""
    _, res = sim_ws(TENANT).up(quiet=True)
    assert res is not None and res.ok
    assert setup_counts(sim) == {"GET /api_versions": 1, "PUT /v2.2/login": 1,
                                 "GET /v2.2/system": 1}
    assert sim_ws(TENANT).load_state().dsp["uuid"]
    _, res = sim_ws(TENANT).up(quiet=True)
    assert setup_counts(sim)["GET /v2.2/system"] == 1


def test_declined_up_makes_no_request(sim, sim_ws):
    """An interactive up the user declines talked to nobody before, and still does not."""
    plan, res = sim_ws(VOLUMES).up(quiet=True, confirm=lambda p: False)
    assert res is None and len(plan.changes) == 2
    assert sim.counters() == {}


def test_set_up_overlaps_planning(sim, sim_ws, monkeypatch):
    """The set-up runs while the engine plans: here it may only start once planning has,
    and planning only ends once the DSP has seen all of it (probe + login together, then
    GET /system, each answer 150 ms away), so an up that set up before planning, after it
    or at its first create fails with a timeout. Events, not the wall-clock window it
    had (0.65 <= wall < 1.05 s), which a correct up left on a loaded machine."""
    from datera_iac.dsp import DspClient
    from datera_iac.engine import core

    planning = threading.Event()
    real_warm_up, real_plan = DspClient.warm_up, core.make_plan

    def warm_up_while_planning(self, **kw):
        assert planning.wait(10), "the set-up ran before planning started"
        return real_warm_up(self, **kw)

    def plan_until_set_up(*a, **k):
        planning.set()
        wait_until(lambda: all(setup_counts(sim).values()), 10, "the set-up while planning")
        return real_plan(*a, **k)

    monkeypatch.setattr(DspClient, "warm_up", warm_up_while_planning)
    monkeypatch.setattr(core, "make_plan", plan_until_set_up)
    ws = sim_ws(VOLUMES)
    sim.set_faults(latency_ms=150)
    try:
        _, res = ws.up(quiet=True)
    finally:
        sim.set_faults(latency_ms=0)
    assert res is not None and res.ok
    assert setup_counts(sim) == dict.fromkeys(SETUP, 1)  # the creates waited for it, once


def test_up_shortens_the_gil_switch_interval_and_restores_it(sim_ws, mocker) -> None:
    """While an ``up`` runs, the GIL switch interval is 0.5 ms (worker threads waiting on
    the DSP take their answers up promptly while another thread computes); afterwards the
    process's own setting is back, also when the run fails, and concurrent runs in one
    process restore it only when the last one ends."""
    import sys

    from datera_iac.engine import core

    seen: list[float] = []
    real = core.Applier.run

    def spy(self):
        seen.append(sys.getswitchinterval())
        return real(self)

    mocker.patch.object(core.Applier, "run", spy)
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    try:
        plan, res = sim_ws(VOLUMES).up(quiet=True)
        assert res is not None and res.ok
        assert seen == [core.APPLY_SWITCH_INTERVAL]
        assert sys.getswitchinterval() == pytest.approx(0.004)

        mocker.patch.object(core.Applier, "run", side_effect=RuntimeError("boom"))
        with pytest.raises(RuntimeError):
            sim_ws(VOLUMES.replace("warm-2", "warm-3")).up(quiet=True)
        assert sys.getswitchinterval() == pytest.approx(0.004)

        # two overlapping holders: the first to leave must not restore it under the other
        inside, leave = threading.Event(), threading.Event()

        def hold() -> None:
            with core.responsive_threads():
                inside.set()
                leave.wait(10)

        t = threading.Thread(target=hold)
        t.start()
        assert inside.wait(10)
        with core.responsive_threads():
            assert sys.getswitchinterval() == pytest.approx(core.APPLY_SWITCH_INTERVAL)
        assert sys.getswitchinterval() == pytest.approx(core.APPLY_SWITCH_INTERVAL)
        leave.set()
        t.join(10)
        assert sys.getswitchinterval() == pytest.approx(0.004)
    finally:
        sys.setswitchinterval(before)
