"""The client's transport shortcuts keep the wire behaviour: what reaches the simulator is
read from its counters, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
import requests.adapters

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient

pytestmark = pytest.mark.timeout(60)


def client(sim: Any, session: requests.Session | None = None) -> DspClient:
    cfg = DateraConfig.from_mapping(
        {"endpoint": sim.http_url, "san_login": "admin", "san_password": sim.users["admin"],
         "datera_503_interval": 0.02, "datera_503_timeout": 5}, env={})
    return DspClient(cfg, session=session)


def test_sw_version_is_fetched_once_by_concurrent_workers(sim: Any) -> None:
    """Ten workers asking for the DSP version at once make one GET /system, not ten."""
    c = client(sim)
    c.login()
    barrier = threading.Barrier(10)
    seen: list[str | None] = []

    def worker() -> None:
        barrier.wait()
        seen.append(c.sw_version)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(seen) == 10 and len(set(seen)) == 1 and seen[0]
    assert sim.counters().get("GET /v2.2/system") == 1


def test_version_probe_is_counted_as_itself(sim: Any) -> None:
    """The API version probe is 'GET /api_versions' in the counters, never '<unmatched>'."""
    client(sim).get("/system")
    counters = sim.counters()
    assert counters.get("GET /api_versions") == 1
    assert not any("<unmatched>" in k for k in counters)


def test_a_closed_client_sends_again_without_losing_a_post(sim: Any) -> None:
    """After close() the session's pools are gone; the next POST is sent once on a new
    connection (nothing was sent on the closed pool, so it is not an 'unknown outcome')."""
    c = client(sim)
    c.post("/app_instances", {"name": "before-close", "create_mode": "openstack"})
    c.close()
    out = c.post("/app_instances", {"name": "after-close", "create_mode": "openstack"})
    assert out["name"] == "after-close"
    assert sim.counters().get("POST /v2.2/app_instances") == 2


@pytest.mark.parametrize("custom", [False, True], ids=["direct", "requests-path"])
def test_both_transport_paths_send_the_same_request(sim: Any, custom: bool) -> None:
    """A stock session goes to urllib3's pool directly; a customised adapter keeps the
    requests path. Both send the same headers, query and body, and map 404 the same way."""
    session = None
    if custom:
        class Adapter(requests.adapters.HTTPAdapter):
            pass

        session = requests.Session()
        session.mount("http://", Adapter())
    c = client(sim, session)
    c.post("/app_instances", {"name": "vol-one", "create_mode": "openstack"})
    items = list(c.list("/app_instances", filter="match(name,vol-.*)", page_size=1))
    assert [i["name"] for i in items] == ["vol-one"]
    with pytest.raises(Exception) as err:
        c.get("/app_instances/does-not-exist")
    assert type(err.value).__name__ == "NotFound"
    log = [e for e in sim.request_log() if e["path"].startswith("/v2.2/app_instances")]
    assert [e["method"] for e in log] == ["POST", "GET", "GET"]
    assert all(e["tenant"] == "/root" for e in log)
