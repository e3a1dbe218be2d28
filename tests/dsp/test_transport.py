"""The client's transport: what reaches the simulator is read from its counters, over real
HTTP on 127.0.0.1; what a broken server does to an exchange is scripted on a raw socket
(:mod:`datera_iac.dsp.testing`)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import requests.adapters

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.dsp._transport import DeadlineExceeded, RequestsTransport, TransportError
from datera_iac.dsp.testing import RawServer, Script, answer, split
from datera_iac.errors import ConnectionLost

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


def test_a_customised_session_is_used(sim: Any) -> None:
    """A caller's session (its own adapter) carries every call, with our headers, query and
    body, and a 404 maps to NotFound."""
    class Adapter(requests.adapters.HTTPAdapter):
        used = 0

        def send(self, *a: Any, **kw: Any) -> Any:
            Adapter.used += 1
            return super().send(*a, **kw)

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
    assert Adapter.used == len(sim.request_log())


@pytest.fixture
def raw() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def make(script: Script) -> RawServer:
        s = RawServer(script)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def send(url: str, method: str = "POST", timeout: float = 5) -> Any:
    return RequestsTransport().send(method, url + "/", headers={}, data=b"{}", params=None,
                                    timeout=timeout, max_body=1 << 20)


def test_server_closed_idle_connection_is_replaced(raw: Any) -> None:
    """A keep-alive connection the server closed while idle is noticed before sending
    (no 'maybe sent' error): the request goes out on a new connection."""
    def script(conn: socket.socket, req: bytes) -> bytes | None:
        conn.sendall(answer())
        return None  # then close: the pooled connection is dead

    server = raw(script)
    t = RequestsTransport()
    for _ in range(2):
        t.send("POST", server.url + "/", headers={}, data=b"{}", params=None, timeout=5,
               max_body=1 << 20)
        threading.Event().wait(0.05)
    assert server.accepted == 2 and len(server.requests) == 2


def test_refused_connection_is_not_sent() -> None:
    """A refused connect never sent anything and is reported unreachable."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(TransportError) as err:
        send(f"http://127.0.0.1:{port}")
    assert not err.value.sent and err.value.unreachable


@pytest.mark.parametrize("script", [
    lambda conn, req: None,
    lambda conn, req: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"trunc",
    lambda conn, req: b"garbage\r\n\r\n",
], ids=["closed-without-answer", "truncated-body", "bad-status-line"])
def test_lost_answers_are_maybe_sent(raw: Any, script: Script) -> None:
    """A connection closed before a whole, valid answer may have reached the DSP (a POST's
    outcome is unknown), and is not called unreachable."""
    def reply(conn: socket.socket, req: bytes) -> bytes | None:
        out = script(conn, req)
        if out is not None:
            conn.sendall(out)
        return None

    server = raw(reply)
    with pytest.raises(TransportError) as err:
        send(server.url)
    assert err.value.sent and not err.value.unreachable


def test_silent_server_is_a_deadline(raw: Any) -> None:
    """A server that never answers ends the exchange at the timeout (maybe sent)."""
    gate = threading.Event()

    def script(conn: socket.socket, req: bytes) -> bytes | None:
        gate.wait(5)
        return None

    server = raw(script)
    with pytest.raises(DeadlineExceeded) as err:
        send(server.url, timeout=0.2)
    gate.set()
    assert err.value.sent


def test_client_reports_lost_posts(raw: Any) -> None:
    """A POST whose connection dies after sending is ConnectionLost 'outcome is unknown',
    never re-sent."""
    def script(conn: socket.socket, req: bytes) -> bytes | None:
        line = split(req)[0]
        if line.startswith(b"GET /api_versions"):
            return answer(b'{"api_versions": ["v2.2"]}')
        if line.startswith(b"PUT /v2.2/login"):
            return answer(b'{"key": "k1"}')
        return None  # the POST: sent, then the connection drops

    server = raw(script)
    cfg = DateraConfig.from_mapping({"endpoint": server.url, "san_login": "a",
                                     "san_password": "p"}, env={})
    c = DspClient(cfg)
    with pytest.raises(ConnectionLost, match="outcome is unknown"):
        c.post("/app_instances", {"name": "x"})
    assert [split(r)[0].split(b" ")[0] for r in server.requests] == [b"GET", b"PUT", b"POST"]


def test_session_headers_are_merged_as_requests_merges_them(raw: Any) -> None:
    """A session's extra headers are sent; where the client sets the same name in another
    case, the client's value wins and the header is sent once; a later edit of the
    session's headers is seen."""
    server = raw(lambda conn, req: answer(b'{"api_versions": ["v2.2"], "key": "k"}'))
    session = requests.Session()
    session.headers.update({"X-Trace": "t1", "accept": "text/plain"})
    cfg = DateraConfig.from_mapping({"endpoint": server.url, "san_login": "a",
                                     "san_password": "p"}, env={})
    c = DspClient(cfg, session=session)
    c.get("/system")
    session.headers["X-Trace"] = "t2"
    c.get("/system")
    sent = [split(r)[1] for r in server.requests]
    accept = [h for h in sent[-1] if h.lower().startswith(b"accept:")]
    assert accept == [b"Accept: application/json"]
    assert b"X-Trace: t1" in sent[-2] and b"X-Trace: t2" in sent[-1]
    assert b"Auth-Token: k" in sent[-1] and b"tenant: /root" in sent[-1]


def test_the_environment_is_read_once_for_the_dsp_endpoint(monkeypatch) -> None:
    """Proxies (``NO_PROXY`` honoured) and ``REQUESTS_CA_BUNDLE`` for the DSP's endpoint
    are taken when the client is made, for every front end (the engine's own session
    ignored the CA bundle); ``requests`` then stops re-reading ``os.environ`` per call."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "dsp.local")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp-ca.pem")

    def transport(endpoint: str, verify: bool = True) -> RequestsTransport:
        cfg = DateraConfig.from_mapping({"endpoint": endpoint, "san_login": "a",
                                         "san_password": "p", "tls_verify": verify}, env={})
        return DspClient(cfg)._transport  # type: ignore[return-value]

    t = transport("https://dsp.example")
    assert t.session.proxies["https"] == "http://proxy.example:3128"
    assert t.verify == "/etc/corp-ca.pem" and not t.session.trust_env
    t = transport("https://dsp.local")
    assert "https" not in t.session.proxies and t.verify == "/etc/corp-ca.pem"
    assert transport("https://dsp.example", verify=False).verify is False
