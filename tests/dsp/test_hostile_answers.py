"""A DSP that answers wrongly or stops answering (issue #17 items 1-4), on a scripted fake
DSP on 127.0.0.1 (:mod:`datera_iac.dsp.testing`): every malformed answer is a DspError
naming the route (never a traceback, never an id built from junk), bodies are capped, the
whole request has a deadline, and an unreachable DSP fails fast, once, for every caller."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.dsp.testing import MALFORMED_CREATES as MALFORMED
from datera_iac.dsp.testing import MALFORMED_LISTS as BAD_LISTS
from datera_iac.dsp.testing import RawServer, Script, answer, split
from datera_iac.errors import DspError, Unreachable

pytestmark = pytest.mark.timeout(60)

def session_script(route: Callable[[bytes, bytes], bytes | None]) -> Script:
    """Answers version probe, login and /system; the rest goes to ``route(line, req)``."""

    def script(conn: socket.socket, req: bytes) -> bytes | None:
        line = split(req)[0]
        if line.startswith(b"GET /api_versions"):
            return answer(b'{"api_versions": ["v2.2"]}')
        if line.startswith(b"PUT /v2.2/login"):
            return answer(b'{"key": "k1"}')
        if line.startswith(b"GET /v2.2/system"):
            return answer(b'{"data": {"sw_version": "3.3.5.0", "name": "fake"}}')
        return route(line, req)

    return script


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


def client(url: str, **opts: Any) -> DspClient:
    cfg = DateraConfig.from_mapping({"endpoint": url, "san_login": "a", "san_password": "p",
                                     "datera_503_interval": 0.05, "datera_503_timeout": 1,
                                     **opts}, env={})
    return DspClient(cfg)


@pytest.mark.parametrize("name", list(MALFORMED))
@pytest.mark.parametrize("exists", [False, True], ids=["not-created", "created"])
def test_malformed_create_answer_is_a_lost_answer(raw: Any, name: str, exists: bool) -> None:
    """A create answered with something that is not the entity asked for is looked up by
    name: when the DSP made it, the real entity is returned (no orphan); otherwise a
    DspError naming the route, and no id is ever built from the junk."""
    real = {"name": "vol-a", "id": "0b1c", "uuid": "tok", "path": "/app_instances/0b1c"}

    def route(line: bytes, req: bytes) -> bytes | None:
        if line.startswith(b"POST /v2.2/app_instances"):
            return answer(MALFORMED[name])
        return None

    c = client(raw(session_script(route)).url)
    finds: list[int] = []

    def find() -> Any:
        finds.append(1)
        return dict(real) if exists else None

    try:
        got = c.create("/app_instances", {"name": "vol-a", "uuid": "tok"}, find=find)
    except DspError as e:
        assert not exists
        assert e.path and "/app_instances" in e.path
        assert "answered with" in str(e)
    else:
        assert exists and got == real
    assert finds == [1]


@pytest.mark.parametrize("name", list(BAD_LISTS))
def test_malformed_list_answer_is_a_dsp_error(raw: Any, name: str) -> None:
    def route(line: bytes, req: bytes) -> bytes | None:
        return answer(BAD_LISTS[name])

    c = client(raw(session_script(route)).url)
    with pytest.raises(DspError) as e:
        list(c.list("/app_instances"))
    assert e.value.path and "/app_instances" in e.value.path


def test_body_over_the_limit_is_refused_by_content_length(raw: Any) -> None:
    """A 2 GB answer announced by Content-Length is refused before its body is read."""
    def route(line: bytes, req: bytes) -> bytes | None:
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2147483648\r\n\r\n{\"data\": [")

    c = client(raw(session_script(route)).url)
    t = time.monotonic()
    with pytest.raises(DspError, match="too large"):
        c.get("/app_instances")
    assert time.monotonic() - t < 5


def test_chunked_body_over_the_limit_is_cut_off(raw: Any) -> None:
    """Without a Content-Length the body is read only up to the limit."""
    def route(line: bytes, req: bytes) -> bytes | None:
        return None

    def script(conn: socket.socket, req: bytes) -> bytes | None:
        if not split(req)[0].startswith(b"GET /v2.2/app_instances"):
            return session_script(route)(conn, req)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            for _ in range(64):  # 4 MiB, over the 1 MiB limit below
                conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:
            pass
        return None

    c = client(raw(script).url)
    c.max_body = 1 << 20
    with pytest.raises(DspError, match="too large"):
        c.get("/app_instances")


def test_slow_drip_ends_within_the_request_timeout(raw: Any) -> None:
    """A DSP dripping its body a byte at a time cannot hold a call open: the request ends
    by request_timeout (whole-request deadline), not request_timeout per read."""
    stop = threading.Event()

    def script(conn: socket.socket, req: bytes) -> bytes | None:
        if not split(req)[0].startswith(b"GET /v2.2/app_instances"):
            return session_script(lambda *_: None)(conn, req)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b" ")
            except OSError:
                return None
            stop.wait(0.3)
        return None

    c = client(raw(script).url, request_timeout=1, datera_503_timeout=0)
    c.login()
    t = time.monotonic()
    with pytest.raises(DspError):
        c.get("/app_instances")
    took = time.monotonic() - t
    stop.set()
    assert took < 1 + 1, took


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_dsp_fails_fast_and_once_for_every_caller() -> None:
    """A refused endpoint is retried for unreachable_timeout, not datera_503_timeout; then
    the breaker is open and every other caller fails at once with the same error. Only the
    first is ``first``: a front end reporting one error per resource says why once."""
    c = client(f"http://127.0.0.1:{_closed_port()}", datera_503_timeout=120,
               unreachable_timeout=1)
    t = time.monotonic()
    with pytest.raises(Unreachable, match="DSP unreachable") as first:
        c.get("/system")
    assert time.monotonic() - t < 3
    assert first.value.first and first.value.per_resource() == str(first.value)
    assert "cannot reach the DSP at" in first.value.per_resource()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            c.get("/app_instances")
        except BaseException as e:  # noqa: BLE001 - what the test looks at
            errors.append(e)

    t = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert time.monotonic() - t < 1
    assert len(errors) == 20 and all(isinstance(e, Unreachable) for e in errors)
    assert all(str(e).endswith(first.value.message) for e in errors)  # the whole reason kept
    assert not any(e.first for e in errors)  # type: ignore[attr-defined]
    for e in errors:  # each names its own call (the version probe, the list)
        assert re.fullmatch(r"DSP unreachable \(the cause is in one other error of this run\): "
                            r"GET /\S+ was not sent", e.per_resource()), e  # type: ignore[attr-defined]
    time.sleep(1.1)  # half-open: one call probes, fails, and the breaker opens again
    with pytest.raises(Unreachable) as again:
        c.get("/system")
    assert not again.value.first  # the same outage: its reason was said


def test_unreachable_at_defaults_within_ten_seconds() -> None:
    c = client(f"http://127.0.0.1:{_closed_port()}", datera_503_timeout=120,
               datera_503_interval=5)
    t = time.monotonic()
    with pytest.raises(Unreachable):
        c.get("/system")
    assert time.monotonic() - t <= 10


def test_the_breaker_opens_when_the_unreachable_window_ends() -> None:
    """The backoff does not overshoot unreachable_timeout: with 4 s, the steps 0.25, 0.5,
    1, 2 s end at 3.75 s and the next (4 s) used to land at 7.75 s; the last wait is cut
    to the window's end, so the one error comes at about 4 s."""
    c = client(f"http://127.0.0.1:{_closed_port()}", datera_503_timeout=120,
               datera_503_interval=5, unreachable_timeout=4)  # the default backoff
    t = time.monotonic()
    with pytest.raises(Unreachable):
        c.get("/system")
    took = time.monotonic() - t
    assert 3.9 <= took < 5.5, took


def test_a_reachable_answer_closes_the_breaker(raw: Any) -> None:
    """After unreachable_timeout one call may try again; a DSP back up is used again."""
    port = _closed_port()
    c = client(f"http://127.0.0.1:{port}", unreachable_timeout=0.3)
    with pytest.raises(Unreachable):
        c.get("/system")
    srv = socket.socket()
    srv.bind(("127.0.0.1", port))
    srv.listen(8)
    server = RawServer.__new__(RawServer)
    server.script = session_script(lambda *_: answer(json.dumps({"data": {"ok": "1"}}).encode()))
    server.requests, server.accepted, server.sock, server.port = [], 0, srv, port
    threading.Thread(target=server._accept, daemon=True).start()
    try:
        time.sleep(1.1)
        assert c.get("/things") == {"ok": "1"}
    finally:
        server.script = lambda conn, req: conn.close()  # the kept-alive connection dies too
        srv.close()
    with pytest.raises(Unreachable) as e:  # a new outage: its reason is said again
        c.get("/system")
    assert e.value.first
