"""DspClient.warm_up: the session set-up done ahead of the first call (issue #4).

The warm-up must save round trips without changing what a real call sees: the same
requests (at most one refused speculative 2.2 login on a 2.1-only DSP), the same errors
raised by the real call, no retries and no sleeping of its own.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.errors import AuthFailed, ConnectionLost
from tests.dsp.test_client_unit import refused, route

pytestmark = pytest.mark.timeout(60)


def sim_client(sim: Any) -> DspClient:
    return DspClient(DateraConfig.from_mapping({
        "endpoint": sim.http_url, "san_login": "admin", "san_password": sim.users["admin"],
        "request_timeout": 10}, env={}))


def test_warm_up_sets_the_session_up_once(sim):
    """Version, login and sw_version come from one request each; the calls after it
    reuse them (no second probe, login or GET /system)."""
    with sim_client(sim) as c:
        c.warm_up(system=True)
        assert sim.counters() == {"GET /api_versions": 1, "PUT /v2.2/login": 1,
                                  "GET /v2.2/system": 1}
        assert c.api_version == "2.2" and c.sw_version == "3.3.5.0"
        assert c.get("/app_instances") == []
        c.warm_up(system=True)  # a second warm-up has nothing left to do
    assert sim.counters() == {"GET /api_versions": 1, "PUT /v2.2/login": 1,
                              "GET /v2.2/system": 1, "GET /v2.2/app_instances": 1}


def test_probe_and_login_overlap(sim):
    """GET /api_versions and PUT /v2.2/login go out together: two round trips to a ready
    session with sw_version, not three (150 ms latency: sequential would take >= 450 ms)."""
    sim.set_faults(latency_ms=150)
    try:
        with sim_client(sim) as c:
            t = time.perf_counter()
            c.warm_up(system=True)
            took = time.perf_counter() - t
            assert c.sw_version == "3.3.5.0"
    finally:
        sim.set_faults(latency_ms=0)
    assert 0.3 <= took < 0.44, took


def test_21_only_dsp_one_refused_login(scripted):
    """A DSP offering only 2.1 refuses the speculative 2.2 login (one 404), and the
    warm-up logs in at 2.1; no error, and the real calls find the session ready."""
    def h(req):
        r = route(req)
        if r == "GET /api_versions":
            return (200, {"api_versions": ["v2", "v2.1"]})
        if r == "PUT /v2.1/login":
            return (200, {"key": "k21"})
        if r == "GET /v2.1/system":
            return (200, {"data": {"sw_version": "3.2.1.0"}})
        return (404, {"name": "NotFoundError", "message": "no such endpoint"})

    c = scripted.client(h, raw=True)
    c.warm_up(system=True)
    assert c.api_version == "2.1" and c.sw_version == "3.2.1.0"
    assert c.get("/system") == {"sw_version": "3.2.1.0"}
    assert sorted(scripted.routes[:2]) == ["GET /api_versions", "PUT /v2.2/login"]
    assert scripted.routes[2:] == ["PUT /v2.1/login", "GET /v2.1/system", "GET /v2.1/system"]
    assert scripted.clock.sleeps == []


def test_old_product_without_api_versions(scripted):
    """No /api_versions (404): a 2.2 login that succeeds decides 2.2, as the real probe's
    fallback does; when it is refused too, the warm-up leaves the fallback to the real
    call, which still works."""
    def only(version, sw_version):
        """A product answering login and /system at ``version`` only (404 elsewhere)."""
        def handler(req):
            r = route(req)
            if r == f"PUT /{version}/login":
                return (200, {"key": f"k-{version}"})
            if r == f"GET /{version}/system":
                return (200, {"data": {"sw_version": sw_version}})
            return (404, {"name": "NotFoundError", "message": "no such endpoint"})
        return handler

    c = scripted.client(only("v2.2", "3.3.0.0"), raw=True)
    c.warm_up(system=True)
    assert c.get("/system") == {"sw_version": "3.3.0.0"}
    assert sorted(scripted.routes[:2]) == ["GET /api_versions", "PUT /v2.2/login"]
    assert scripted.routes[2:] == ["GET /v2.2/system", "GET /v2.2/system"]

    c = scripted.client(only("v2.1", "3.2.0.0"), raw=True)
    c.warm_up(system=True)
    assert c.get("/system") == {"sw_version": "3.2.0.0"}
    assert sorted(scripted.routes[:2]) == ["GET /api_versions", "PUT /v2.2/login"]
    assert scripted.routes[2:] == ["GET /api_versions", "PUT /v2.2/login", "PUT /v2.1/login",
                                   "GET /v2.1/system"]


def test_bad_credentials_surface_on_the_real_call(scripted):
    """The warm-up swallows a rejected login; the real call raises the usual error (the
    same message as without a warm-up) without sending the refused credentials a second
    time (lockout policies count failed logins); a later call tries again."""
    def h(req):
        if route(req) == "GET /api_versions":
            return (200, {"api_versions": ["v2.2"]})
        return (401, {"name": "AuthFailedError", "message": "bad pw-Secret9"})

    c = scripted.client(h, raw=True)
    c.warm_up(system=True)
    assert sorted(scripted.routes) == ["GET /api_versions", "PUT /v2.2/login"]
    with pytest.raises(AuthFailed) as e:
        c.get("/system")
    assert str(e.value) == (
        "PUT /v2.2/login: HTTP 401 AuthFailedError: login as 'admin' failed: bad *** "
        "(check san_login, san_password)"
    )
    assert scripted.routes[2:] == []  # the warm-up's refusal, not a second failed login
    with pytest.raises(AuthFailed):
        c.get("/system")
    assert scripted.routes[2:] == ["PUT /v2.2/login"]


def test_unreachable_dsp_no_retry_in_warm_up(scripted):
    """A refused connection ends the warm-up at once (no back-off, no sleep); the real
    call then backs off within its deadline exactly as before."""
    c = scripted.client(lambda req: refused(), raw=True, datera_503_interval=1,
                        datera_503_timeout=3)
    c.warm_up(system=True)
    assert scripted.clock.sleeps == []
    assert sorted(scripted.routes) == ["GET /api_versions", "PUT /v2.2/login"]
    with pytest.raises(ConnectionLost, match="cannot reach the DSP"):
        c.get("/system")
    assert sum(scripted.clock.sleeps) == pytest.approx(3)
    # the retries of the real call still run after a warm-up (the flag is per thread)
    assert len(scripted.routes) > 4


def test_api_version_configured_skips_the_probe(scripted):
    """With api_version set there is nothing to probe: login and GET /system only."""
    c = scripted.client(lambda req: (200, {"data": {"sw_version": "3.3.5.0"}}), api_version="2.1")
    c.warm_up(system=True)
    assert scripted.routes == ["PUT /v2.1/login", "GET /v2.1/system"]
    c.warm_up()
    assert len(scripted.routes) == 2


def test_refused_login_not_resent_when_the_probe_failed(scripted):
    """The warm-up's version probe failed (a 503 while the DSP starts) and its login was
    refused: the real call probes again but does not send the refused credentials twice."""
    def h(req):
        if route(req) == "GET /api_versions":
            return (503, {"name": "ServiceUnavailableError", "message": "busy"}) \
                if "GET /api_versions" not in scripted.routes[:-1] else (200, {"api_versions": ["v2.2"]})
        return (401, {"name": "AuthFailedError", "message": "bad pw-Secret9"})

    c = scripted.client(h, raw=True)
    c.warm_up(system=True)
    assert sorted(scripted.routes) == ["GET /api_versions", "PUT /v2.2/login"]
    with pytest.raises(AuthFailed):
        c.get("/system")
    assert scripted.routes.count("PUT /v2.2/login") == 1, scripted.routes
