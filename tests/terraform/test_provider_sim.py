"""The provider's RPCs against the simulator with the real kinds, without Terraform (fast):
timeouts reach the kind and a timeout is a diagnostic that says how to raise it; batched
refreshes answer exactly like single reads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tf.gen import tfplugin_pb2 as pb
from tf.utils import read_dynamic_value, to_dynamic_value
from tfharness import SIM_PASSWORD, SIM_USER

from provider.provider import DateraProvider
from provider.servicer import Servicer

T = "datera_volume"


def _servicer(sim: Any) -> Servicer:
    app = DateraProvider()
    app.configure({"endpoint": sim.http_url, "san_login": SIM_USER, "san_password": SIM_PASSWORD})
    return Servicer(app)


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


def test_create_timeout_is_a_diagnostic_and_leaves_nothing(make_sim):
    """`timeouts = { create = "1s" }` bounds the wait for a slow storage instance: the
    apply fails naming the resource and the timeouts key, and no volume is left behind."""
    sim = make_sim(si_online_delay=5)
    svc = _servicer(sim)
    state, diags = _create(svc, _config(svc, name="slow-vol", size=1, timeouts={"create": "1s"}))
    assert state is None and len(diags) == 1
    assert diags[0].summary == "datera_volume create: timed out"
    assert "'slow-vol'" in diags[0].detail and 'timeouts = { create = "..." }' in diags[0].detail
    assert list(svc.app.client.list("/app_instances")) == []


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
    before = dict(sim.counters())
    with ThreadPoolExecutor(10) as pool:
        got = list(pool.map(lambda st: adapter.read(svc.app.context, st), states))
    used = {k: n - before.get(k, 0) for k, n in sim.counters().items() if n != before.get(k, 0)}
    assert got == states  # user forms kept; nothing the bulk read cannot see is lost
    assert "GET /v2.2/app_instances/:id" not in used and used.get("GET /v2.2/app_instances", 0) <= 4
