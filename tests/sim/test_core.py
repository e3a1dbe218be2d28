"""Core contract: transport, login, envelopes, app instances with nested SI/volumes, errors,
counters and the request log — over real HTTP on 127.0.0.1."""

from __future__ import annotations

import re

import requests

from datera_iac.sim import SimServer


def test_api_versions_needs_no_login(sim: SimServer) -> None:
    """/api_versions lists v2.1 and v2.2 without authentication."""
    r = requests.get(f"{sim.http_url}/api_versions", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"api_versions": ["v2.1", "v2.2"]}


def test_https_serves_the_same_state_with_a_verifiable_cert(sim: SimServer, api) -> None:
    """HTTPS answers from the same store; cert_path verifies it as a CA bundle."""
    api.ok("POST", "/app_instances", {"name": "seen-over-http"})
    s = requests.Session()
    key = s.put(f"{sim.https_url}/v2.2/login", json={"name": "admin", "password": "password"},
                verify=str(sim.cert_path), timeout=5).json()["key"]
    r = s.get(f"{sim.https_url}/v2.2/app_instances", headers={"Auth-Token": key},
              verify=str(sim.cert_path), timeout=5)
    assert [a["name"] for a in r.json()["data"]] == ["seen-over-http"]


def test_login_returns_a_32_hex_key_and_bad_credentials_are_401(sim: SimServer, new_api) -> None:
    """PUT /login gives a key; a wrong password is 401 AuthFailedError as JSON."""
    a = new_api(user=None)
    r = a.login("admin", "password")
    assert r.status_code == 200 and re.fullmatch(r"[0-9a-f]{32}", r.json()["key"])
    bad = a.login("admin", "wrong-password")
    assert bad.status_code == 401
    assert bad.json()["name"] == "AuthFailedError" and bad.json()["http"] == 401


def test_login_accepts_a_form_body(sim: SimServer) -> None:
    """The Go SDK sends the login form-encoded; that works too."""
    r = requests.put(f"{sim.http_url}/v2.2/login", data={"name": "admin", "password": "password"}, timeout=5)
    assert r.status_code == 200 and len(r.json()["key"]) == 32


def test_requests_without_or_with_an_unknown_key_are_401(sim: SimServer, api) -> None:
    """No Auth-Token, or a key that is not a session, gives 401 with the SDK's message."""
    r = requests.get(f"{sim.http_url}/v2.2/system", timeout=5)
    assert r.status_code == 401 and r.json()["name"] == "AuthFailedError"
    r = requests.get(f"{sim.http_url}/v2.2/system", headers={"Auth-Token": "0" * 32}, timeout=5)
    assert r.status_code == 401
    assert r.json()["message"] == "The key provided with the request does not correspond to a valid session."


def test_logout_ends_the_session(api) -> None:
    """After PUT /logout the key no longer works."""
    assert api.req("PUT", "/logout").status_code == 200
    assert api.req("GET", "/system").status_code == 401


def test_nested_create_returns_the_full_entity(api, body) -> None:
    """POST /app_instances with nested SI and volume returns paths, iqn, 2 portals, hidden auth."""
    ai = api.ok("POST", "/app_instances", body("OS-vol-1", size=5, replicas=2, uuid="9b0216bc-1111-2222-3333-444455556666"))
    assert ai["path"] == f"/app_instances/{ai['id']}" and ai["tenant"] == "/root"
    assert ai["uuid"] == "9b0216bc-1111-2222-3333-444455556666"
    si = ai["storage_instances"][0]
    assert si["path"] == f"{ai['path']}/storage_instances/storage-1"
    assert re.fullmatch(r"iqn\.2013-05\.com\.daterainc:tc:01:sn:[0-9a-f]{16}", si["access"]["iqn"])
    assert len(si["access"]["ips"]) >= 2
    assert si["auth"]["target_pswd"] == "(hidden)" and si["op_state"] == "available"
    assert si["ip_pool"]["resolved_path"] == "/access_network_ip_pools/default"
    vol = si["volumes"][0]
    assert (vol["name"], vol["size"], vol["replica_count"]) == ("volume-1", 5, 2)
    assert vol["path"] == f"{si['path']}/volumes/volume-1"


def test_ai_is_addressable_by_id_and_by_name(api, body) -> None:
    """GET /app_instances/<id> and /app_instances/<name> return the same entity."""
    ai = api.ok("POST", "/app_instances", body("by-name"))
    assert api.ok("GET", f"/app_instances/{ai['id']}")["id"] == ai["id"]
    assert api.ok("GET", "/app_instances/by-name")["id"] == ai["id"]


def test_envelope_has_tenant_path_version_and_list_metadata(api, api21, body) -> None:
    """Entities come wrapped; lists carry v2.2 paging metadata or v2.1 {total}."""
    api.ok("POST", "/app_instances", body("env-1"))
    r = api.req("GET", "/app_instances").json()
    assert (r["tenant"], r["path"], r["version"]) == ("/root", "/app_instances", "v2.2")
    assert r["metadata"] == {"total_count": 1, "request_count": 1, "limit": 100, "offset": 0}
    r21 = api21.req("GET", "/app_instances").json()
    assert r21["version"] == "v2.1" and r21["metadata"] == {"total": 1}


def test_update_and_delete_app_instance(api, body) -> None:
    """PUT renames/offlines; DELETE of an online AI without force is 409; offline delete works."""
    ai = api.ok("POST", "/app_instances", body("upd-1"))
    p = ai["path"]
    assert api.ok("PUT", p, {"name": "upd-2", "descr": "Renamed one"})["name"] == "upd-2"
    err = api.err(409, "DELETE", p)
    assert err["name"] == "ConflictError"
    off = api.ok("PUT", p, {"admin_state": "offline", "force": True})
    assert off["admin_state"] == "offline"
    assert off["storage_instances"][0]["admin_state"] == "offline"
    assert api.ok("DELETE", p)["id"] == ai["id"]
    assert api.err(404, "GET", p)["name"] == "NotFoundError"


def test_force_delete_of_an_online_ai(api, body) -> None:
    """DELETE with {"force": true} removes an online AI."""
    ai = api.ok("POST", "/app_instances", body("forced"))
    api.ok("DELETE", ai["path"], {"force": True})
    assert api.ok("GET", "/app_instances") == []


def test_duplicate_name_is_409_and_unknown_field_is_422(api, body) -> None:
    """Names are unique per tenant; bodies reject unknown fields with the field named."""
    api.ok("POST", "/app_instances", body("dup"))
    assert api.err(409, "POST", "/app_instances", body("dup"))["name"] == "ConflictError"
    e = api.err(422, "POST", "/app_instances", {"name": "x-ok", "sizee": 1})
    assert e["name"] == "ValidationFailedError" and "sizee" in e["message"]


def test_unknown_endpoint_and_method_are_json_errors(api) -> None:
    """Unknown paths are 404 NotFoundError, wrong methods 405, both JSON."""
    assert api.err(404, "GET", "/no_such_thing")["name"] == "NotFoundError"
    assert api.err(405, "POST", "/system")["http"] == 405


def test_counters_and_request_log(sim: SimServer, api, body) -> None:
    """Counters key by method + path template; the log has no secrets."""
    ai = api.ok("POST", "/app_instances", body("counted"))
    api.ok("GET", f"/app_instances/{ai['id']}")
    api.ok("GET", "/app_instances/counted")
    c = sim.counters()
    assert c["POST /v2.2/app_instances"] == 1
    assert c["GET /v2.2/app_instances/:id"] == 2
    assert c["PUT /v2.2/login"] == 1
    log = sim.request_log()
    assert [e["status"] for e in log] == [200, 200, 200, 200]
    assert log[1]["template"] == "/v2.2/app_instances" and log[1]["tenant"] == "/root"
    assert "password" not in repr(log) and api.key not in repr(log)
    r = api.s.get(api.url("/system"), headers=dict(api.headers(), **{"Datera-Driver": "OpenStack-Cinder-x"}), timeout=5)
    assert r.status_code == 200 and sim.request_log()[-1]["client"] == "OpenStack-Cinder-x"


def test_http_admin_endpoints(sim: SimServer, api) -> None:
    """/_sim/counters, /_sim/requests, /_sim/faults and /_sim/reset work over HTTP."""
    api.ok("GET", "/system")
    assert requests.get(f"{sim.http_url}/_sim/counters", timeout=5).json()["GET /v2.2/system"] == 1
    assert requests.get(f"{sim.http_url}/_sim/requests", timeout=5).json()[-1]["path"] == "/v2.2/system"
    r = requests.put(f"{sim.http_url}/_sim/faults", json={"latency_ms": 1}, timeout=5)
    assert r.status_code == 200 and r.json()["latency_ms"] == 1
    bad = requests.put(f"{sim.http_url}/_sim/faults", json={"no_such_knob": 1}, timeout=5)
    assert bad.status_code == 422 and "no_such_knob" in bad.json()["message"]
    assert requests.post(f"{sim.http_url}/_sim/reset", timeout=5).json() == {"reset": True}
    assert sim.counters() == {} and sim.faults()["latency_ms"] == 0


def test_reset_empties_the_store(sim: SimServer, api, body) -> None:
    """reset() drops all objects and sessions and restores the defaults."""
    api.ok("POST", "/app_instances", body("gone-after-reset"))
    sim.reset()
    assert api.req("GET", "/app_instances").status_code == 401  # sessions cleared
    api.login()
    assert api.ok("GET", "/app_instances") == []
    assert [p["name"] for p in api.ok("GET", "/access_network_ip_pools")] == ["default"]


def test_ldap_remote_server_only_for_configured_servers(make_sim) -> None:
    """remote_server logins work for configured LDAP servers with their own users only."""
    s = make_sim(ldap_servers={"corp-ldap": {"alice": "alice_pw1"}})
    url = f"{s.http_url}/v2.2/login"
    ok = requests.put(url, json={"name": "alice", "password": "alice_pw1", "remote_server": "corp-ldap"}, timeout=5)
    assert ok.status_code == 200 and len(ok.json()["key"]) == 32
    for body in ({"name": "alice", "password": "alice_pw1", "remote_server": "other-ldap"},
                 {"name": "alice", "password": "alice_pw1"},  # not a local user
                 {"name": "admin", "password": "password", "remote_server": "corp-ldap"}):
        r = requests.put(url, json=body, timeout=5)
        assert r.status_code == 401 and r.json()["name"] == "AuthFailedError", body


def test_login_body_shape_errors_are_422(sim: SimServer) -> None:
    """A login body missing fields, with wrong types or unknown fields is 422, not 401."""
    url = f"{sim.http_url}/v2.2/login"
    for body in ({"name": "admin"}, {"name": "admin", "password": 5}, {"name": "admin", "password": "password", "x": 1}):
        r = requests.put(url, json=body, timeout=5)
        assert r.status_code == 422 and r.json()["name"] == "ValidationFailedError", body


def test_given_certificate_is_used(make_sim, tmp_path) -> None:
    """--cert/--key (cert=, key=) replace the generated certificate."""
    from datera_iac.sim.tls import make_self_signed

    cert, key = make_self_signed(tmp_path / "tls", "127.0.0.1")
    s = make_sim(cert=cert, key=key)
    assert s.cert_path == cert
    r = requests.put(f"{s.https_url}/v2.2/login", json={"name": "admin", "password": "password"},
                     verify=str(cert), timeout=5)
    assert r.status_code == 200


def test_malformed_bodies_are_400_and_oversized_413(api) -> None:
    """Invalid JSON or UTF-8 is 400 InvalidRequestError; a body over 1 MiB is 413; all JSON."""
    h = dict(api.headers(), **{"Content-Type": "application/json"})
    for raw in (b"{not json", b'{"name": "\xff"}', b"[" * 50000, b'{"name": NaN}'):
        r = api.s.post(api.url("/app_instances"), data=raw, headers=h, timeout=5)
        assert r.status_code == 400 and r.json()["name"] == "InvalidRequestError", raw[:20]
    r = api.s.post(api.url("/app_instances"), data=b" " * (1024 * 1024 + 10), headers=h, timeout=5)
    assert r.status_code == 413 and r.json()["http"] == 413
    assert api.err(422, "POST", "/app_instances", ["not", "an", "object"])["name"] == "ValidationFailedError"
