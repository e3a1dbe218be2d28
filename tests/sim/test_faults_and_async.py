"""Contract: every fault mode, key expiry, and the configurable asynchrony delays."""

from __future__ import annotations

import time

import pytest
import requests

from datera_iac.sim import SimServer


def test_latency_is_added_to_api_requests_only(sim: SimServer, api) -> None:
    """latency_ms delays /v2.x requests; /_sim admin calls are not delayed."""
    sim.set_faults(latency_ms=150)
    t0 = time.perf_counter()
    api.ok("GET", "/system")
    assert time.perf_counter() - t0 >= 0.15
    t0 = time.perf_counter()
    requests.get(f"{sim.http_url}/_sim/counters", timeout=5)
    assert time.perf_counter() - t0 < 0.15


def test_latency_is_service_time_the_request_is_handled_on_arrival(sim: SimServer, api, body) -> None:
    """A write is applied when it arrives and its answer held until latency_ms have passed
    (so concurrent requests do not queue behind each other's waits)."""
    import threading

    before = sim.summary().get("app_instances", 0)
    sim.set_faults(latency_ms=600)
    done: list[float] = []
    t0 = time.perf_counter()
    worker = threading.Thread(target=lambda: (api.ok("POST", "/app_instances", body("held")),
                                              done.append(time.perf_counter() - t0)))
    worker.start()
    deadline = time.monotonic() + 0.4
    while sim.summary().get("app_instances", 0) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    applied_at = time.perf_counter() - t0
    assert sim.summary().get("app_instances", 0) == before + 1, "not applied on arrival"
    assert not done, "the answer came before the latency had passed"
    worker.join(10)
    assert done and done[0] >= 0.6 > applied_at


def test_latency_counts_from_arrival(sim: SimServer, api) -> None:
    """The hold counts from when the request's bytes arrived (the connection notes it), so
    time spent queued behind other requests on the event loop is part of the latency, not
    added to it; the request log shows that queueing time."""
    from datera_iac.sim import arrival

    assert isinstance(sim._runner.server, arrival._ArrivalServer), "arrival stamps unavailable"
    sim.set_faults(latency_ms=100)
    t0 = time.perf_counter()
    api.ok("GET", "/system")
    assert time.perf_counter() - t0 >= 0.1
    entry = sim.request_log()[-1]
    assert entry["template"].endswith("/system") and entry["queued_ms"] > 0


def test_event_loop_is_uvloop_unless_asked_for_asyncio(make_sim, new_api, monkeypatch) -> None:
    """The simulator serves on uvloop (installed with the package; about half the CPU per
    request of asyncio's loop, which keeps its own overhead small beside the latency it
    injects); DATERA_SIM_LOOP=asyncio selects the standard loop, and both serve the API
    and hold answers from arrival."""
    from tests.tools import require_module

    require_module("uvloop")
    import uvloop
    monkeypatch.delenv("DATERA_SIM_LOOP", raising=False)
    fast = make_sim()
    assert isinstance(fast._loop, uvloop.Loop)
    monkeypatch.setenv("DATERA_SIM_LOOP", "asyncio")
    plain = make_sim()
    assert not isinstance(plain._loop, uvloop.Loop)
    for server in (fast, plain):
        server.set_faults(latency_ms=100)
        api = new_api(base_url=server.http_url)
        t0 = time.perf_counter()
        api.ok("GET", "/system")
        assert time.perf_counter() - t0 >= 0.1
        assert server.request_log()[-1]["queued_ms"] >= 0


def test_503_burst_then_recovery(sim: SimServer, api) -> None:
    """fail_503_burst=N answers the next N requests 503 (JSON) and then serves normally."""
    sim.set_faults(fail_503_burst=2)
    for _ in range(2):
        r = api.req("GET", "/system")
        assert r.status_code == 503 and r.json()["http"] == 503
    api.ok("GET", "/system")
    assert sim.faults()["fail_503_burst"] == 0


def test_503_rate_is_seeded_and_roughly_right(sim: SimServer, api) -> None:
    """fail_503_rate hits about that share of requests; the same seed gives the same pattern."""
    def pattern() -> list[int]:
        sim.set_faults(fail_503_rate=0.3, seed=7)
        return [api.req("GET", "/system").status_code for _ in range(60)]

    first = pattern()
    assert first == pattern()
    share = first.count(503) / len(first)
    assert 0.1 < share < 0.5 and set(first) == {200, 503}


def test_init_500_still_initializing(sim: SimServer, api) -> None:
    """init_500=N gives 500 with the exact message clients treat as retryable."""
    sim.set_faults(init_500=1)
    r = api.req("GET", "/system")
    assert r.status_code == 500 and "REST server is still initializing" in r.json()["message"]
    api.ok("GET", "/system")


def test_dropped_connection_after_the_write_was_applied(sim: SimServer, api) -> None:
    """drop_after_write: the POST is applied, but the client sees a lost connection."""
    sim.set_faults(drop_after_write_burst=1)
    with pytest.raises(requests.ConnectionError):
        api.s.post(api.url("/app_instances"), json={"name": "lost-answer"}, headers=api.headers(), timeout=5)
    assert api.ok("GET", "/app_instances/lost-answer")["name"] == "lost-answer"
    assert api.err(409, "POST", "/app_instances", {"name": "lost-answer"})["name"] == "ConflictError"
    assert sim.request_log()[1]["dropped"] is True
    # with a rate, writes are dropped (after being applied) and reads never are
    sim.set_faults(drop_after_write_rate=1.0)
    api.ok("GET", "/app_instances")
    with pytest.raises(requests.ConnectionError):
        api.s.put(api.url("/app_instances/lost-answer"), json={"descr": "Applied anyway"},
                  headers=api.headers(), timeout=5)
    sim.set_faults(drop_after_write_rate=0.0)
    assert api.ok("GET", "/app_instances/lost-answer")["descr"] == "Applied anyway"


def test_only_restricts_faults_to_matching_requests(sim: SimServer, api) -> None:
    """only=<regex on 'METHOD /path'> limits where faults apply."""
    sim.set_faults(fail_503_rate=1.0, only=r"^POST /v2\.2/app_instances$")
    api.ok("GET", "/system")
    assert api.req("POST", "/app_instances", {"name": "never"}).status_code == 503
    assert api.ok("GET", "/app_instances") == []


def test_forced_key_expiry_and_ttl(sim: SimServer, api) -> None:
    """expire_keys ends every session now; key_ttl bounds new ones."""
    sim.set_faults(expire_keys=True)
    e = api.err(401, "GET", "/system")
    assert e["message"] == "The key provided with the request does not correspond to a valid session."
    sim.set_faults(key_ttl=0.2)
    api.login()
    api.ok("GET", "/system")
    time.sleep(0.3)
    api.err(401, "GET", "/system")


def test_bad_knobs_are_rejected(sim: SimServer) -> None:
    """Unknown knobs and out-of-range values raise ValueError and change nothing."""
    with pytest.raises(ValueError, match="unknown fault knob"):
        sim.set_faults(fail_rate=1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        sim.set_faults(fail_503_rate=2)
    with pytest.raises(ValueError, match="regular expression"):
        sim.set_faults(only="(")
    assert sim.faults()["fail_503_rate"] == 0


def test_faults_given_at_start(make_sim, new_api) -> None:
    """Fault knobs and delays are options of SimServer too, and reset() restores them."""
    s = make_sim(init_500=1, si_online_delay=0.25)
    r = requests.get(f"{s.http_url}/api_versions", timeout=5)
    assert r.status_code == 500
    s.reset()
    assert s.faults()["init_500"] == 1 and s.faults()["si_online_delay"] == 0.25


# ---------------------------------------------------------------------------- asynchrony

def test_si_becomes_available_after_the_online_delay(sim: SimServer, api, body) -> None:
    """With si_online_delay, an onlined SI is 'unavailable' first, then 'available'."""
    sim.set_faults(si_online_delay=0.3)
    ai = api.ok("POST", "/app_instances", body("slow-si"))
    assert ai["storage_instances"][0]["op_state"] == "unavailable"
    time.sleep(0.35)
    assert api.ok("GET", ai["path"])["storage_instances"][0]["op_state"] == "available"
    api.ok("PUT", ai["path"], {"admin_state": "offline", "force": True})
    api.ok("PUT", ai["path"], {"admin_state": "online"})
    assert api.ok("GET", f"{ai['path']}/storage_instances/storage-1")["op_state"] == "unavailable"


def test_snapshot_and_clone_delays(sim: SimServer, api, body) -> None:
    """Snapshots are 'unavailable' until snapshot_delay passes and cannot be cloned before;
    clones show op_state 'cloning' for clone_delay."""
    sim.set_faults(snapshot_delay=0.3, clone_delay=0.3)
    ai = api.ok("POST", "/app_instances", body("slow-snap"))
    snap = api.ok("POST", f"{ai['path']}/storage_instances/storage-1/volumes/volume-1/snapshots", {})
    assert snap["op_state"] == "unavailable"
    e = api.err(409, "POST", "/app_instances", {"name": "too-early", "clone_snapshot_src": {"path": snap["path"]}})
    assert "not available" in e["message"]
    time.sleep(0.35)
    assert api.ok("GET", snap["path"])["op_state"] == "available"
    clone = api.ok("POST", "/app_instances", {"name": "clone-1", "clone_snapshot_src": {"path": snap["path"]}})
    assert clone["op_state"] == "cloning"
    time.sleep(0.35)
    assert "op_state" not in api.ok("GET", clone["path"])
