"""DspClient logic against a scripted transport and a fake clock (no sockets, no sleeping).

The same behaviours are checked against the simulator over HTTP in test_contract.py; these
pin the edge cases a server cannot easily produce on demand.
"""

from __future__ import annotations

import logging

import pytest
import requests
import urllib3

from datera_iac.dsp import DRIVER_HEADER
from datera_iac.errors import (
    AuthFailed,
    Conflict,
    ConnectionLost,
    DspError,
    NotFound,
    Unavailable,
    ValidationFailed,
)


def route(req: requests.PreparedRequest) -> str:
    return req.method + " " + req.path_url.split("?")[0]


def body_of(req: requests.PreparedRequest):
    import json

    return json.loads(req.body) if req.body else None


def lost() -> requests.ConnectionError:
    """A connection reset after the request went out."""
    return requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted."))


def refused() -> requests.ConnectionError:
    err = urllib3.exceptions.NewConnectionError(None, "Connection refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", err))


def test_headers_version_and_login(scripted):
    """Probe /api_versions, log in without token or tenant, then send token, tenant, driver."""
    c = scripted.client(lambda req: (200, {"data": {"sw_version": "3.3.5.0"}}))
    assert c.get("/system") == {"sw_version": "3.3.5.0"}
    assert c.system().sw_version == "3.3.5.0" and c.sw_version == "3.3.5.0"
    del scripted.adapter.requests[3:]
    assert scripted.routes == ["GET /api_versions", "PUT /v2.2/login", "GET /v2.2/system"]
    _probe, login, call = scripted.adapter.requests
    assert "Auth-Token" not in login.headers and "tenant" not in login.headers
    assert body_of(login) == {"name": "admin", "password": "pw-Secret9"}
    assert call.headers["Auth-Token"] == "k" * 32
    assert call.headers["tenant"] == "/root"
    assert call.headers["Datera-Driver"] == DRIVER_HEADER
    assert c.api_version == "2.2"


def test_transport_options(scripted, tmp_path, monkeypatch):
    """request_timeout, TLS verification and the client certificate reach every request."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)  # requests would substitute it
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("c")
    key.write_text("k")
    c = scripted.client(lambda req: (200, {"data": {}}), request_timeout=7.5,
                        driver_client_cert=str(cert), driver_client_cert_key=str(key))
    c.get("/system")
    for kw in scripted.adapter.send_kwargs:
        assert kw["timeout"] == 7.5 and kw["verify"] is True
        assert kw["cert"] == (str(cert), str(key))
    c = scripted.client(lambda req: (200, {"data": {}}), tls_verify=False)
    c.get("/system")
    assert {kw["verify"] for kw in scripted.adapter.send_kwargs} == {False}


def test_probe_prefers_22_then_21_and_override(scripted):
    """A DSP offering only v2.1 is spoken to in 2.1; api_version skips the probe."""
    def h(req):
        if route(req) == "GET /api_versions":
            return (200, {"api_versions": ["v2", "v2.1"]})
        return (200, {"key": "abc"} if req.path_url.endswith("login") else {"data": []})

    c = scripted.client(h, raw=True)
    assert c.api_version == "2.1"
    c2 = scripted.client(h, raw=True, api_version="2.2")
    list(c2.list("/app_instances"))
    assert scripted.routes == ["PUT /v2.2/login", "GET /v2.2/app_instances"]


def test_probe_fallback_when_api_versions_missing(scripted):
    """Old products answer /api_versions with 404: login decides, 2.2 first, then 2.1."""
    def h(req):
        if route(req) == "PUT /v2.1/login":
            return (200, {"key": "abc"})
        if route(req) == "GET /v2.1/system":
            return (200, {"data": {"sw_version": "3.2.0.0"}})
        return (404, {"name": "NotFoundError", "message": "no such endpoint"})

    c = scripted.client(h, raw=True)
    assert c.get("/system") == {"sw_version": "3.2.0.0"}
    assert scripted.routes == [
        "GET /api_versions", "PUT /v2.2/login", "PUT /v2.1/login", "GET /v2.1/system"]
    none = scripted.client(lambda req: (404, {"message": "no"}), raw=True)
    with pytest.raises(DspError, match="serves none of the API versions 2.2, 2.1"):
        none.get("/system")


def test_ldap_server_sent_as_remote_server(scripted):
    """datera_ldap_server goes into the login body as remote_server."""
    c = scripted.client(lambda req: (200, {"data": {}}), datera_ldap_server="corp-ldap")
    c.login()
    assert body_of(scripted.adapter.requests[-1])["remote_server"] == "corp-ldap"


def test_relogin_once_on_401(scripted):
    """A 401 makes one new login and one retry of the call."""
    calls = {"n": 0}

    def h(req):
        calls["n"] += 1
        return (401, {"name": "AuthFailedError", "message": "expired"}) if calls["n"] == 1 else (
            200, {"data": {"ok": True}})

    c = scripted.client(h)
    assert c.get("/system") == {"ok": True}
    assert scripted.routes.count("PUT /v2.2/login") == 2
    assert scripted.routes[-1] == "GET /v2.2/system"


def test_second_401_is_auth_failed(scripted):
    """A 401 after the re-login is AuthFailed (no loop)."""
    c = scripted.client(lambda req: (401, {"name": "AuthFailedError", "message": "nope"}))
    with pytest.raises(AuthFailed) as e:
        c.get("/system")
    assert str(e.value) == "GET /v2.2/system: HTTP 401 AuthFailedError: nope"
    assert scripted.routes.count("PUT /v2.2/login") == 2


def test_bad_credentials_name_the_fix(scripted):
    """A rejected login names the user and the options to check, never the password."""
    def h(req):
        if route(req) == "GET /api_versions":
            return (200, {"api_versions": ["v2.2"]})
        return (401, {"name": "AuthFailedError", "message": "bad pw-Secret9"})

    c = scripted.client(h, raw=True)
    with pytest.raises(AuthFailed) as e:
        c.get("/system")
    assert str(e.value) == (
        "PUT /v2.2/login: HTTP 401 AuthFailedError: login as 'admin' failed: bad *** "
        "(check san_login, san_password)"
    )


def test_503_until_success(scripted, clock):
    """503s are retried every datera_503_interval until the call succeeds."""
    answers = iter([(503, {"message": "busy"})] * 3 + [(200, {"data": {"x": 1}})])
    c = scripted.client(lambda req: next(answers), datera_503_interval=2, datera_503_timeout=60)
    assert c.get("/system") == {"x": 1}
    assert clock.sleeps == [2, 2, 2]


def test_503_until_timeout(scripted, clock):
    """Past datera_503_timeout the call fails with Unavailable saying how long it tried."""
    c = scripted.client(lambda req: (503, {"message": "overloaded"}),
                        datera_503_interval=5, datera_503_timeout=12)
    with pytest.raises(Unavailable) as e:
        c.get("/system")
    assert clock.sleeps == [5, 5, 2]
    assert str(e.value) == (
        "GET /v2.2/system: HTTP 503 overloaded; gave up after 12.0s (datera_503_timeout=12s)"
    )


def test_500_initializing_is_retried_other_500_not(scripted, clock):
    """500 "REST server is still initializing" is a 503; any other 500 fails at once."""
    answers = iter([(500, {"message": "REST server is still initializing"}),
                    (200, {"data": {}}), (500, {"name": "InternalError", "message": "boom"})])
    c = scripted.client(lambda req: next(answers), datera_503_interval=1)
    assert c.get("/system") == {}
    with pytest.raises(DspError) as e:
        c.get("/system")
    assert type(e.value) is DspError and e.value.status == 500
    assert clock.sleeps == [1]


def test_429_waits_retry_after(scripted, clock):
    """A 429 waits for its Retry-After header, then retries."""
    answers = iter([(429, {"message": "slow down"}, {"Retry-After": "2"}), (200, {"data": {}})])
    c = scripted.client(lambda req: next(answers), datera_503_interval=5)
    assert c.get("/system") == {}
    assert clock.sleeps == [2.0]


def test_connection_refused_backs_off(scripted, clock):
    """Refused connections back off within the deadline, then ConnectionLost."""
    c = scripted.client(lambda req: refused(), datera_503_interval=1, datera_503_timeout=3)
    with pytest.raises(ConnectionLost, match="cannot reach the DSP at http://dsp.test:7717"):
        c.get("/system")
    assert clock.sleeps[:3] == [0.25, 0.5, 1]
    assert sum(clock.sleeps) == pytest.approx(3)


def test_lost_post_calls_find_no_twin(scripted):
    """A POST whose response was lost is not re-sent when find() sees the object."""
    made = []

    def h(req):
        if route(req) == "POST /v2.2/app_instances":
            made.append(body_of(req)["name"])
            return lost()
        raise AssertionError(route(req))

    c = scripted.client(h)
    got = c.create("/app_instances", {"name": "vol-a"}, find=lambda: {"name": made[0]})
    assert got == {"name": "vol-a"} and made == ["vol-a"]


def test_lost_post_resent_when_find_sees_nothing(scripted):
    """If find() sees nothing, the POST did not land and is sent again."""
    answers = iter([lost(), (200, {"data": {"name": "vol-a", "id": "1"}})])
    c = scripted.client(lambda req: next(answers))
    finds = []
    got = c.create("/app_instances", {"name": "vol-a"}, find=lambda: finds.append(1))
    assert got == {"name": "vol-a", "id": "1"} and finds == [1]


def test_lost_posts_until_deadline_say_outcome_unknown(scripted, clock):
    """When every try of a create is lost and find() sees nothing, the error says the POST
    may have been applied."""
    c = scripted.client(lambda req: lost(), datera_503_interval=1, datera_503_timeout=2)
    with pytest.raises(ConnectionLost, match="may have been applied: look it up"):
        c.create("/app_instances", {"name": "x"}, find=lambda: None)


def test_lost_post_without_find_is_unknown_outcome(scripted):
    """A plain post() never re-sends after a lost response."""
    c = scripted.client(lambda req: lost())
    with pytest.raises(ConnectionLost, match="outcome is unknown"):
        c.post("/app_instances", {"name": "x"})
    assert scripted.routes.count("POST /v2.2/app_instances") == 1


def test_refused_post_is_safely_retried(scripted, clock):
    """A POST whose connection was refused never left: it is retried without find()."""
    answers = iter([refused(), (200, {"data": {"id": "7"}})])
    c = scripted.client(lambda req: next(answers))
    assert c.create("/app_instances", {"name": "x"}, find=lambda: pytest.fail("no find")) == {"id": "7"}


def test_409_uses_find(scripted):
    """On a 409 create() returns the existing object; without a match it raises Conflict."""
    c = scripted.client(lambda req: (409, {"name": "ConflictError", "message": "exists"}))
    assert c.create("/tenants", {"name": "t"}, find=lambda: {"name": "t"}) == {"name": "t"}
    with pytest.raises(Conflict, match="HTTP 409 ConflictError: exists"):
        c.create("/tenants", {"name": "t"}, find=lambda: None)


def test_lost_delete_then_404_is_success(scripted):
    """A DELETE whose response was lost and whose retry gets 404 had succeeded."""
    answers = iter([lost(), (404, {"name": "NotFoundError", "message": "gone"})])
    c = scripted.client(lambda req: next(answers))
    assert c.delete("/app_instances/x", {"force": True}) is None
    with pytest.raises(NotFound):
        scripted.client(lambda req: (404, {"message": "gone"})).delete("/app_instances/x")


def test_error_mapping(scripted):
    """Statuses map to error classes carrying the DSP's name and message."""
    c = scripted.client(lambda req: (422, {"name": "ValidationFailedError", "message": "bad size",
                                           "errors": ["x"]}))
    with pytest.raises(ValidationFailed) as e:
        c.put("/app_instances/a", {"size": -1})
    assert (e.value.status, e.value.name, e.value.message) == (422, "ValidationFailedError", "bad size")


def test_paging_v22(scripted):
    """limit/offset pages are followed lazily until total_count."""
    items = [{"path": f"/app_instances/{i}"} for i in range(250)]

    def h(req):
        q = dict(p.split("=") for p in req.path_url.split("?")[1].split("&"))
        off, lim = int(q["offset"]), int(q["limit"])
        page = items[off:off + lim]
        return (200, {"data": page, "metadata": {"total_count": 250, "request_count": len(page),
                                                 "limit": lim, "offset": off}})

    c = scripted.client(h)
    it = c.list("/app_instances", page_size=100)
    assert next(it) == items[0]
    assert scripted.routes.count("GET /v2.2/app_instances") == 1  # lazy
    assert [x["path"] for x in it] == [x["path"] for x in items[1:]]
    assert scripted.routes.count("GET /v2.2/app_instances") == 3


def test_paging_prefetch_asks_pages_ahead_and_follows_a_changing_collection(scripted):
    """With ``prefetch`` (a caller reading the whole listing, issue 21) the pages after the
    first are asked two ahead of the one being read, concurrently: the same items in the
    same order, each offset asked once. A page shorter than asked drops what was fetched
    ahead and the walk goes on from where that page ends, as without prefetch."""
    import threading

    items = [{"path": f"/app_instances/{i}"} for i in range(1050)]
    started = threading.Event()
    asked: list[int] = []
    overlapped: list[bool] = []

    def h(req):
        q = dict(p.split("=") for p in req.path_url.split("?")[1].split("&"))
        off, lim = int(q["offset"]), int(q["limit"])
        asked.append(off)
        if off == 200:  # page 4 is asked while page 3 is still being answered
            overlapped.append(started.wait(2))
        if off == 300:
            started.set()
        page = items[off:off + lim]
        return (200, {"data": page, "metadata": {"total_count": len(items)}})

    c = scripted.client(h)
    got = list(c.list("/app_instances", page_size=100, prefetch=True))
    assert got == items and sorted(asked) == list(range(0, 1050, 100))
    assert overlapped == [True]  # 200 and 300 were in flight together

    # a DSP that answers 50 where 100 were asked: every item once, in order
    capped = scripted.client(lambda req: h_capped(req))

    def h_capped(req):
        q = dict(p.split("=") for p in req.path_url.split("?")[1].split("&"))
        off, lim = int(q["offset"]), int(q["limit"])
        return (200, {"data": items[off:off + min(lim, 50)],
                      "metadata": {"total_count": len(items)}})

    assert list(capped.list("/app_instances", page_size=100, prefetch=True)) == items


def test_paging_refuses_ignored_offset(scripted):
    """A server that ignores offset would repeat page 1: that is an error, not duplicates."""
    items = [{"path": f"/x/{i}"} for i in range(5)]
    c = scripted.client(lambda req: (200, {"data": items[:2], "metadata": {"total": 5}}),
                        api_version="2.1")
    with pytest.raises(DspError, match="ignored offset=2"):
        list(c.list("/x", page_size=2))


def test_filter_and_sort_params(scripted):
    """filter and sort are sent as query parameters."""
    c = scripted.client(lambda req: (200, {"data": [], "metadata": {"total_count": 0}}))
    assert list(c.list("/app_instances", filter="match(name,OS-.*)", sort="name")) == []
    q = scripted.adapter.requests[-1].path_url
    assert "filter=match%28name%2COS-.%2A%29" in q and "sort=name" in q


def test_debug_logs_redacted(scripted, caplog):
    """datera_debug logs each call and result; passwords, keys and CHAP secrets are masked."""
    c = scripted.client(
        lambda req: (200, {"data": {"auth": {"target_pswd": "chap-Secret1", "type": "chap"}}}),
        datera_debug=True,
    )
    with caplog.at_level(logging.DEBUG, logger="datera_iac.dsp"):
        c.put("/app_instances/a/storage_instances/storage-1/auth",
              {"type": "chap", "target_user_name": "u", "target_pswd": "chap-Secret1"})
    wire = [r.getMessage() for r in caplog.records if r.name == "datera_iac.dsp.wire"]
    assert len(wire) == 6  # probe, login, call: request + response each
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("pw-Secret9", "k" * 32, "chap-Secret1"):
        assert secret not in text
    assert '"target_pswd": "***"' in wire[4] and '"password": "***"' in wire[2]
    assert '"key": "***"' in wire[3]


def test_no_wire_logs_without_debug(scripted, caplog):
    """Without datera_debug nothing is logged per call but the profile line."""
    c = scripted.client(lambda req: (200, {"data": {}}))
    with caplog.at_level(logging.DEBUG, logger="datera_iac.dsp"):
        c.get("/system")
    assert not [r for r in caplog.records if r.name == "datera_iac.dsp.wire"]


def test_profiling_lines(scripted, caplog):
    """One timing line per call (method, path, status, ms) unless datera_disable_profiler."""
    c = scripted.client(lambda req: (200, {"data": {}}))
    with caplog.at_level(logging.DEBUG, logger="datera_iac.dsp.profile"):
        c.get("/system")
    lines = [r.getMessage() for r in caplog.records if r.name == "datera_iac.dsp.profile"]
    assert lines[-1].startswith("GET /v2.2/system 200 ") and lines[-1].endswith(" ms (0 retries)")
    caplog.clear()
    c = scripted.client(lambda req: (200, {"data": {}}), datera_disable_profiler=True)
    with caplog.at_level(logging.DEBUG, logger="datera_iac.dsp.profile"):
        c.get("/system")
    assert not [r for r in caplog.records if r.name == "datera_iac.dsp.profile"]
