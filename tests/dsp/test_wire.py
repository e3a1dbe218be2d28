"""The lean HTTP exchange (datera_iac.dsp._wire) against a scripted raw-socket server on
127.0.0.1: it writes the bytes urllib3 writes, reads every HTTP/1.1 body framing, reuses
keep-alive connections, and fails with the exceptions the client's retry logic reads to
tell an unsent request from a maybe-sent one."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import urllib3

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient, _wire
from datera_iac.dsp._client import _maybe_sent
from datera_iac.errors import ConnectionLost

pytestmark = pytest.mark.timeout(30)

Script = Callable[[socket.socket, bytes], bytes | None]


class RawServer:
    """Accepts connections on 127.0.0.1 and answers each request head (+ body) with the
    bytes ``script(conn, request)`` returns (None: close without answering). Records
    every request's raw bytes and how many connections were accepted."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            conn.settimeout(10)
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += conn.recv(65536)
                req, buf = head + b"\r\n\r\n" + rest[:length], rest[length:]
                self.requests.append(req)
                answer = self.script(conn, req)
                if answer is None:
                    return
                conn.sendall(answer)

    def close(self) -> None:
        self.sock.close()


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


def ok(body: bytes = b'{"data": {}}', extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def pool_for(server: RawServer) -> Any:
    return urllib3.HTTPConnectionPool("127.0.0.1", server.port, maxsize=4)


def split(req: bytes) -> tuple[bytes, list[bytes], bytes]:
    head, _, body = req.partition(b"\r\n\r\n")
    line, *headers = head.split(b"\r\n")
    return line, headers, body


def test_request_bytes_match_urllib3(raw: Any) -> None:
    """The request line, headers (same order, same defaults) and body are the bytes
    urllib3's urlopen writes for the same call, for a POST with a body and a bare GET."""
    server = raw(lambda conn, req: ok())
    headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json",
               "Datera-Driver": "datera-iac-test", "Auth-Token": "k", "tenant": "/root"}
    body = b'{"name": "vol-1"}'
    pool = pool_for(server)
    host = _wire.host_header(pool)
    calls = [("POST", body, True), ("POST", body, False), ("GET", None, False)]
    for method, data, explicit_length in calls:
        out = dict(headers)
        if explicit_length:  # as DspClient._send_direct passes it
            out["Content-Length"] = str(len(body))
        pool.urlopen(method, "/v2.2/app_instances?limit=1", body=data, headers=dict(out),
                     retries=False, redirect=False)
        _wire.exchange(pool, host, method, "/v2.2/app_instances?limit=1", dict(out), data, 5)
    assert len(server.requests) == 2 * len(calls)
    for i in range(len(calls)):
        by_urllib3, by_wire = server.requests[2 * i:2 * i + 2]
        assert split(by_wire) == split(by_urllib3)
    assert split(server.requests[1])[0] == b"POST /v2.2/app_instances?limit=1 HTTP/1.1"


def test_bodyless_post_sends_content_length_zero(raw: Any) -> None:
    """A POST/PUT/DELETE without a body says Content-Length: 0, as urllib3 does."""
    server = raw(lambda conn, req: ok())
    pool = pool_for(server)
    _wire.exchange(pool, _wire.host_header(pool), "DELETE", "/x", {}, None, 5)
    assert b"Content-Length: 0" in split(server.requests[0])[1]


@pytest.mark.parametrize("answer,body", [
    (ok(b'{"a": 1}'), b'{"a": 1}'),
    ((b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n"
     b"5\r\n: 1}\n\r\n0\r\nTrailer: x\r\n\r\n"), b'{"a": 1}\n'),
    (b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"[]"), b"[]"),
    (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
], ids=["content-length", "chunked-with-trailer", "100-continue", "204"])
def test_body_framings(raw: Any, answer: bytes, body: bytes) -> None:
    """Content-Length, chunked (extensions, trailers), an interim 100 and a 204 each
    yield the whole body, and the connection is kept for the next request."""
    server = raw(lambda conn, req: answer)
    pool = pool_for(server)
    for _ in range(2):
        status, _headers, data = _wire.exchange(pool, "h", "GET", "/", {}, None, 5)
        assert data == body and status in (200, 204)
    assert server.accepted == 1


def test_read_to_close_body_and_connection_close(raw: Any) -> None:
    """A body without length ends at EOF; 'Connection: close' is honoured (a new
    connection for the next request)."""
    def script(conn: socket.socket, req: bytes) -> bytes | None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"eof\": true}")
        return None

    server = raw(script)
    pool = pool_for(server)
    for _ in range(2):
        assert _wire.exchange(pool, "h", "GET", "/", {}, None, 5)[2] == b'{"eof": true}'
    assert server.accepted == 2


def test_headers_case_insensitive_and_joined(raw: Any) -> None:
    """Response headers are read case-insensitively; repeated ones are joined."""
    server = raw(lambda conn, req: ok(extra="Retry-After: 3\r\nX-A: 1\r\nx-a: 2\r\n"))
    pool = pool_for(server)
    _, headers, _ = _wire.exchange(pool, "h", "GET", "/", {}, None, 5)
    assert headers.get("retry-after") == "3" and headers["RETRY-AFTER"] == "3"
    assert headers.get("X-A") == "1, 2" and "x-A" in headers and headers.get("nope") is None


def test_gzip_body_is_decoded(raw: Any) -> None:
    """A gzip Content-Encoding is undone (urllib3's decoder), as urlopen did."""
    packed = gzip.compress(b'{"data": {"z": 1}}')
    server = raw(lambda conn, req: ok(packed, extra="Content-Encoding: gzip\r\n"))
    pool = pool_for(server)
    assert _wire.exchange(pool, "h", "GET", "/", {}, None, 5)[2] == b'{"data": {"z": 1}}'


def test_server_closed_idle_connection_is_replaced(raw: Any) -> None:
    """A keep-alive connection the server closed while idle is noticed before sending
    (no 'maybe sent' error): the request goes out on a new connection."""
    def script(conn: socket.socket, req: bytes) -> bytes | None:
        conn.sendall(ok())
        return None  # then close: the pooled connection is dead

    server = raw(script)
    pool = pool_for(server)
    _wire.exchange(pool, "h", "POST", "/", {}, b"{}", 5)
    threading.Event().wait(0.05)
    _wire.exchange(pool, "h", "POST", "/", {}, b"{}", 5)
    assert server.accepted == 2 and len(server.requests) == 2


def test_refused_connection_is_not_sent() -> None:
    """A refused connect is a requests.ConnectionError that _maybe_sent calls unsent."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port)
    with pytest.raises(requests.ConnectionError) as err:
        _wire.exchange(pool, "h", "POST", "/", {}, b"{}", 5)
    assert not _maybe_sent(err.value)


@pytest.mark.parametrize("script", [
    lambda conn, req: None,
    lambda conn, req: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"trunc",
    lambda conn, req: b"garbage\r\n\r\n",
], ids=["closed-without-answer", "truncated-body", "bad-status-line"])
def test_lost_answers_are_maybe_sent(raw: Any, script: Script) -> None:
    """A connection closed before a whole, valid response is a ConnectionError that
    _maybe_sent reports as possibly sent (a POST's outcome is unknown)."""
    def answer(conn: socket.socket, req: bytes) -> bytes | None:
        out = script(conn, req)
        if out is not None:
            conn.sendall(out)
        return None

    pool = pool_for(raw(answer))
    with pytest.raises(requests.ConnectionError) as err:
        _wire.exchange(pool, "h", "POST", "/", {}, b"{}", 5)
    assert _maybe_sent(err.value)


def test_silent_server_is_a_read_timeout(raw: Any) -> None:
    """A server that never answers raises ReadTimeout after the timeout (maybe sent)."""
    gate = threading.Event()

    def script(conn: socket.socket, req: bytes) -> bytes | None:
        gate.wait(5)
        return None

    pool = pool_for(raw(script))
    with pytest.raises(requests.exceptions.ReadTimeout) as err:
        _wire.exchange(pool, "h", "POST", "/", {}, b"{}", 0.2)
    gate.set()
    assert _maybe_sent(err.value)


def test_closed_pool_raises_closed_pool_error(raw: Any) -> None:
    """On a closed pool nothing is sent: ClosedPoolError, which the client answers by
    taking the session's new pool."""
    server = raw(lambda conn, req: ok())
    pool = pool_for(server)
    pool.close()
    with pytest.raises(urllib3.exceptions.ClosedPoolError):
        _wire.exchange(pool, "h", "GET", "/", {}, None, 5)
    assert server.requests == []


def test_client_uses_the_lean_exchange_and_reports_lost_posts(raw: Any) -> None:
    """Through DspClient: a stock session takes the lean path; a POST whose connection
    dies after sending is ConnectionLost 'outcome is unknown', never re-sent."""
    def script(conn: socket.socket, req: bytes) -> bytes | None:
        line = split(req)[0]
        if line.startswith(b"GET /api_versions"):
            return ok(b'{"api_versions": ["v2.2"]}')
        if line.startswith(b"PUT /v2.2/login"):
            return ok(b'{"key": "k1"}')
        return None  # the POST: sent, then the connection drops

    server = raw(script)
    cfg = DateraConfig.from_mapping({"endpoint": server.url, "san_login": "a",
                                     "san_password": "p"}, env={})
    c = DspClient(cfg)
    with pytest.raises(ConnectionLost, match="outcome is unknown"):
        c.post("/app_instances", {"name": "x"})
    assert c._lean
    assert [split(r)[0].split(b" ")[0] for r in server.requests] == [b"GET", b"PUT", b"POST"]


def test_adapter_with_retries_keeps_urlopen(raw: Any) -> None:
    """An adapter configured to retry at the urllib3 level keeps urlopen (the lean path
    reproduces only the no-retry default)."""
    server = raw(lambda conn, req: ok(b'{"api_versions": ["v2.2"], "key": "k"}'))
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(max_retries=2))
    cfg = DateraConfig.from_mapping({"endpoint": server.url, "san_login": "a",
                                     "san_password": "p"}, env={})
    c = DspClient(cfg, session=session)
    c.get("/system")
    assert c._pool is not None and not c._lean


def test_session_headers_are_merged_as_requests_merges_them(raw: Any) -> None:
    """A session's extra headers are sent; where the client sets the same name in another
    case, the client's value wins and the header is sent once; a later edit of the
    session's headers is seen."""
    server = raw(lambda conn, req: ok(b'{"api_versions": ["v2.2"], "key": "k"}'))
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
    assert c._lean
