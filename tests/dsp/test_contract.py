"""DspClient against the bundled simulator over real HTTP on 127.0.0.1.

Each test reads what reached the DSP from the simulator's counters and request log, so it
checks the wire, not the client's own idea of it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import urllib3  # noqa: F401  (named in a filterwarnings mark)

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient, System, from_api
from datera_iac.errors import (
    AuthFailed,
    ConfigError,
    Conflict,
    ConnectionLost,
    InvalidRequest,
    NotFound,
    Unavailable,
    ValidationFailed,
)

pytestmark = pytest.mark.timeout(60)


def client(sim: Any, **options: Any) -> DspClient:
    """A client on the simulator's plain-HTTP port with fast retries."""
    base = {
        "endpoint": sim.http_url,
        "san_login": "admin",
        "san_password": sim.users["admin"],
        "datera_503_interval": 0.02,
        "datera_503_timeout": 5,
        "request_timeout": 10,
    }
    return DspClient(DateraConfig.from_mapping({**base, **options}, env={}))


def api_log(sim: Any) -> list[dict[str, Any]]:
    """The request log without the login / version probe."""
    return [e for e in sim.request_log() if e["path"].startswith("/v2.") and "login" not in e["path"]]


def find_ai(c: DspClient, name: str, tenant: str | None = None):
    """The find() callback a kind would pass: look the AI up by its unique name."""
    def find():
        hits = list(c.list("/app_instances", tenant=tenant, filter=f"match(name,{name})"))
        return hits[0] if hits else None

    return find


def test_login_version_and_tenant_header(sim):
    """First use probes /api_versions, logs in once, then calls v2.2 with tenant /root."""
    c = client(sim)
    assert c.api_version == "2.2"
    assert c.get("/app_instances") == []
    counts = sim.counters()
    assert counts["PUT /v2.2/login"] == 1
    assert counts["GET /v2.2/app_instances"] == 1
    entry = api_log(sim)[-1]
    assert (entry["tenant"], entry["user"], entry["status"]) == ("/root", "admin", 200)


def test_api_version_override(sim):
    """api_version=2.1 skips the probe and speaks v2.1."""
    c = client(sim, api_version="2.1")
    c.get("/system")
    paths = [e["path"] for e in sim.request_log()]
    assert paths == ["/v2.1/login", "/v2.1/system"]


def test_relogin_after_key_expiry(sim):
    """An expired session key (401) makes one new login and one retry; the call succeeds."""
    c = client(sim)
    c.get("/system")
    sim.set_faults(expire_keys=True)
    assert c.get("/system")["sw_version"]
    statuses = [(e["path"], e["status"]) for e in sim.request_log() if e["path"] != "/api_versions"]
    assert statuses[-3:] == [("/v2.2/system", 401), ("/v2.2/login", 200), ("/v2.2/system", 200)]
    assert sim.counters()["PUT /v2.2/login"] == 2


def test_bad_password(sim):
    """A wrong password is AuthFailed naming the options to check, without the password."""
    c = client(sim, san_password="wrong-Pass1")
    with pytest.raises(AuthFailed) as e:
        c.get("/system")
    assert "login as 'admin' failed" in str(e.value)
    assert "check san_login, san_password" in str(e.value)
    assert "wrong-Pass1" not in str(e.value) and "wrong-Pass1" not in repr(e.value.body)


def test_503_burst_then_success(sim):
    """A burst of 503s is retried every datera_503_interval until the call succeeds."""
    c = client(sim)
    c.login()
    sim.set_faults(fail_503_burst=3)
    assert c.get("/system")["sw_version"]
    statuses = [e["status"] for e in api_log(sim)]
    assert statuses == [503, 503, 503, 200]


def test_503_until_timeout(sim):
    """A DSP that keeps answering 503 fails with Unavailable after datera_503_timeout."""
    c = client(sim, datera_503_interval=0.1, datera_503_timeout=0.45)
    c.login()
    sim.set_faults(fail_503_rate=1.0)
    t0 = time.monotonic()
    with pytest.raises(Unavailable, match=r"gave up after \d+\.\ds \(datera_503_timeout=0.45s\)"):
        c.get("/system")
    assert time.monotonic() - t0 >= 0.45
    attempts = [e for e in api_log(sim) if e["path"] == "/v2.2/system"]
    # one try at 0, then every 0.1 s up to the deadline (fewer when the machine is slow)
    assert 2 <= len(attempts) <= 6 and {e["status"] for e in attempts} == {503}


def test_500_still_initializing_is_retried(sim):
    """500 "REST server is still initializing" is treated like a 503."""
    c = client(sim)
    c.login()
    sim.set_faults(init_500=2)
    assert c.get("/system")["sw_version"]
    assert [e["status"] for e in api_log(sim)] == [500, 500, 200]


def test_lost_create_response_makes_no_twin(sim):
    """The DSP commits a create and drops the connection: find() returns it, no twin."""
    c = client(sim)
    c.login()
    sim.set_faults(drop_after_write_burst=1)
    got = c.create("/app_instances", {"name": "vol-lost"}, find=find_ai(c, "vol-lost"))
    assert got["name"] == "vol-lost"
    sim.set_faults(drop_after_write_burst=0)
    assert [a["name"] for a in c.list("/app_instances")] == ["vol-lost"]
    assert sim.counters()["POST /v2.2/app_instances"] == 1
    assert any(e.get("dropped") for e in sim.request_log())


def test_create_conflict_uses_find(sim):
    """A create of a name that exists answers 409: find() returns the existing object."""
    c = client(sim)
    first = c.create("/app_instances", {"name": "dup"}, find=find_ai(c, "dup"))
    again = c.create("/app_instances", {"name": "dup"}, find=find_ai(c, "dup"))
    assert again["id"] == first["id"]
    with pytest.raises(Conflict):
        c.create("/app_instances", {"name": "dup"}, find=lambda: None)


def test_paging_over_many_items(sim):
    """250 app instances come back complete: in one page of the schema's maximum (1,000) by
    default, in 3 pages of 100 when asked for 100 (request counts checked)."""
    c = client(sim)
    for i in range(250):
        c.post("/app_instances", {"name": f"ai-{i:03d}"})
    before = sim.counters().get("GET /v2.2/app_instances", 0)
    names = [a["name"] for a in c.list("/app_instances", sort="name")]
    assert names == [f"ai-{i:03d}" for i in range(250)]
    assert sim.counters()["GET /v2.2/app_instances"] - before == 1
    assert [a["name"] for a in c.list("/app_instances", sort="name", page_size=100)] == names
    assert sim.counters()["GET /v2.2/app_instances"] - before == 4
    c21 = client(sim, api_version="2.1")
    assert len(list(c21.list("/app_instances", page_size=100))) == 250
    assert sim.counters()["GET /v2.1/app_instances"] == 3


def test_paging_falls_back_where_the_dsp_refuses_large_pages(sim):
    """A DSP that caps ``limit`` below 1,000 refuses the first page (422); the client asks
    again at 100, gets everything, and asks for 100 from then on (no refusal twice)."""
    c = client(sim)
    for i in range(250):
        c.post("/app_instances", {"name": f"ai-{i:03d}"})
    sim.set_faults(max_list_limit=100)
    with pytest.raises(ValidationFailed, match="limit"):
        list(c.list("/app_instances", page_size=1000))  # an explicit size is not adapted
    before = sim.counters().get("GET /v2.2/app_instances", 0)
    assert [a["name"] for a in c.list("/app_instances")] == [f"ai-{i:03d}" for i in range(250)]
    assert sim.counters()["GET /v2.2/app_instances"] - before == 1 + 3  # refused, then 3 pages
    assert len(list(c.list("/app_instances"))) == 250
    assert sim.counters()["GET /v2.2/app_instances"] - before == 1 + 3 + 3
    # a refusal that is not about the page size is raised, after one retry at 100
    with pytest.raises(InvalidRequest, match="filter"):
        list(client(sim).list("/app_instances", filter="bogus filter"))


def test_filter(sim):
    """filter reaches the DSP and selects by name."""
    c = client(sim)
    for name in ("web-1", "web-2", "db-1"):
        c.post("/app_instances", {"name": name})
    assert sorted(a["name"] for a in c.list("/app_instances", filter="match(name,web-.*)")) == [
        "web-1", "web-2"]
    assert [a["name"] for a in c.list("/app_instances", filter="name=db-1")] == ["db-1"]


def test_system_entity_from_simulator(sim):
    """The simulator's /system structures into System with its version and capacities."""
    c = client(sim)
    system = from_api(c.get("/system"), System)
    assert system.sw_version and system.sw_version[0].isdigit()
    assert isinstance(system.total_capacity, (int, float)) and system.total_capacity > 0


@pytest.mark.parametrize(
    ("tenant_id", "project", "expected"),
    [(None, None, "/root"), ("Map", "0a1b2c", "/root/OS-0a1b2c"), ("xyz", None, "/root/xyz"),
     ("/root/xyz", None, "/root/xyz")],
)
def test_tenant_modes_on_the_wire(sim, tenant_id, project, expected):
    """datera_tenant_id None/Map/name decide the tenant header the DSP sees."""
    c = client(sim, datera_tenant_id=tenant_id)
    tenant = c.ensure_tenant(c.tenant_for(project))
    assert tenant == expected
    c.create("/app_instances", {"name": "t-vol"}, tenant=tenant, find=find_ai(c, "t-vol", tenant))
    posts = [e for e in api_log(sim) if e["method"] == "POST" and e["template"].endswith("/app_instances")]
    assert [e["tenant"] for e in posts] == [expected]
    if tenant_id is None:
        assert c.default_tenant == "/root"
    elif tenant_id != "Map":
        assert c.default_tenant == expected
        assert [a["name"] for a in c.list("/app_instances")] == ["t-vol"]  # default tenant


def test_ensure_tenant_is_idempotent(sim):
    """ensure_tenant twice: the second POST gets 409 and is fine; nested parents are made."""
    c = client(sim)
    assert c.ensure_tenant("team-a") == "/root/team-a"
    assert c.ensure_tenant("/root/team-a") == "/root/team-a"
    posts = [e["status"] for e in api_log(sim) if e["method"] == "POST"]
    assert posts == [200, 409] or posts == [201, 409]
    assert c.get("/tenants/root/team-a")["name"] == "team-a"


def test_not_found_maps_to_error(sim):
    """A 404 is NotFound with the DSP's message and the versioned path."""
    c = client(sim)
    with pytest.raises(NotFound) as e:
        c.get("/app_instances/nope")
    assert e.value.path == "/v2.2/app_instances/nope" and e.value.status == 404


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_verified_by_default(sim):
    """The self-signed HTTPS port is refused by default, accepted with ca_bundle or opt-out."""
    with pytest.raises(ConfigError, match="TLS verification of https://127.0.0.1"):
        client(sim, endpoint=sim.https_url).get("/system")
    ok = client(sim, endpoint=sim.https_url, ca_bundle=str(sim.cert_path))
    assert ok.get("/system")["sw_version"]
    insecure = client(sim, endpoint=sim.https_url, tls_verify=False)
    assert insecure.get("/system")["sw_version"]


def test_debug_log_redacted_on_the_wire(make_sim, caplog):
    """datera_debug logs every call and result; password and session key never appear."""
    sim = make_sim(https=False, users={"admin": "Adm1n-Secret"})
    c = client(sim, datera_debug=True)
    with caplog.at_level(logging.DEBUG, logger="datera_iac.dsp"):
        c.get("/system")
        c.create("/app_instances", {"name": "dbg"}, find=find_ai(c, "dbg"))
    text = "\n".join(r.getMessage() for r in caplog.records)
    wire = [r.getMessage() for r in caplog.records if r.name == "datera_iac.dsp.wire"]
    assert any(m.startswith("-> PUT /v2.2/login") for m in wire)
    assert any(m.startswith("<- POST /v2.2/app_instances 20") for m in wire)
    assert c._key and c._key not in text
    assert '"password": "***"' in text
    assert "Adm1n-Secret" not in text


def test_profiling_lines_on_the_wire(sim, caplog):
    """Unless datera_disable_profiler, each call logs method, path, status and ms."""
    with caplog.at_level(logging.DEBUG, logger="datera_iac.dsp.profile"):
        client(sim).get("/system")
        quiet = client(sim, datera_disable_profiler=True)
        n = len(caplog.records)
        quiet.get("/system")
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("GET /v2.2/system 200 ") for line in lines)
    assert len(caplog.records) == n


def test_ldap_server_sent_as_remote_server(make_sim):
    """datera_ldap_server logs in against that LDAP server (remote_server); without it, 401."""
    s = make_sim(https=False, ldap_servers={"corp-ldap": {"bob": "bob-Pass1"}})
    ldap = DspClient(DateraConfig.from_mapping(
        {"endpoint": s.http_url, "san_login": "bob", "san_password": "bob-Pass1",
         "datera_ldap_server": "corp-ldap"}, env={}))
    ldap.get("/system")
    assert s.request_log()[-1]["user"] == "bob"
    plain = DspClient(DateraConfig.from_mapping(
        {"endpoint": s.http_url, "san_login": "bob", "san_password": "bob-Pass1"}, env={}))
    with pytest.raises(AuthFailed, match="login as 'bob' failed"):
        plain.get("/system")


def test_env_credentials_reach_the_dsp(sim, monkeypatch):
    """DATERA_SAN_LOGIN / DATERA_SAN_PASSWORD / DATERA_ENDPOINT fill a config given nothing."""
    monkeypatch.setenv("DATERA_ENDPOINT", sim.http_url)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", sim.users["admin"])
    monkeypatch.setenv("DATERA_TENANT_ID", "envtenant")
    c = DspClient(DateraConfig.from_mapping({}))
    c.ensure_tenant(c.tenant_for())
    c.get("/app_instances")
    entry = api_log(sim)[-1]
    assert (entry["user"], entry["tenant"]) == ("admin", "/root/envtenant")


def test_request_timeout_bounds_each_request(sim):
    """A DSP slower than request_timeout: each try times out, retries stop at the deadline."""
    c = client(sim, request_timeout=0.1, datera_503_timeout=0.5)
    c.login()
    sim.set_faults(latency_ms=400)
    try:
        with pytest.raises(ConnectionLost, match=r"cannot reach the DSP .*ReadTimeout.*gave up"):
            c.get("/system")
    finally:
        sim.set_faults(latency_ms=0)


def test_concurrent_calls_share_one_relogin(sim):
    """Threads hitting an expired key together cause one new login, not one each."""
    from concurrent.futures import ThreadPoolExecutor

    c = client(sim)
    c.get("/system")
    sim.set_faults(expire_keys=True)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: c.get("/system")["sw_version"], range(8)))
    assert len(results) == 8 and all(results)
    assert sim.counters()["PUT /v2.2/login"] == 2


def test_503_on_create_is_retried_without_twin(sim):
    """A 503 means the POST was not applied: it is re-sent and exactly one object exists."""
    c = client(sim)
    c.login()
    sim.set_faults(fail_503_burst=2)
    c.create("/app_instances", {"name": "busy-vol"}, find=find_ai(c, "busy-vol"))
    assert [a["name"] for a in c.list("/app_instances")] == ["busy-vol"]
    assert sim.counters()["POST /v2.2/app_instances"] == 3


def test_lost_put_and_delete_responses(sim):
    """A PUT whose response was lost is re-sent (idempotent); a lost DELETE whose retry gets
    404 counts as done."""
    c = client(sim)
    ai = c.create("/app_instances", {"name": "lossy"}, find=find_ai(c, "lossy"))
    sim.set_faults(drop_after_write_burst=1)
    c.put(ai["path"], {"descr": "changed"})
    assert c.get(ai["path"])["descr"] == "changed"
    sim.set_faults(drop_after_write_burst=1)
    assert c.delete(ai["path"], {"force": True}) is None
    assert list(c.list("/app_instances")) == []
    deletes = [e["status"] for e in api_log(sim) if e["method"] == "DELETE"]
    assert deletes == [200, 404]
