"""Test doubles at the edges: a fake clock and a scripted requests transport.

The scripted transport is only for unit tests of the client's retry/auth logic before (and
besides) the simulator; contract tests talk to the simulator over real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient


class FakeClock:
    """Monotonic time that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Handler = Callable[[requests.PreparedRequest], Any]


class ScriptedAdapter(BaseAdapter):
    """Answers each request with ``handler(request)``: a (status, json[, headers]) tuple, or
    an exception instance to raise (a lost connection)."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.requests: list[requests.PreparedRequest] = []
        self.send_kwargs: list[dict[str, Any]] = []

    def send(self, request, **kwargs):  # type: ignore[override]
        self.requests.append(request)
        self.send_kwargs.append(kwargs)
        result = self.handler(request)
        if isinstance(result, BaseException):
            raise result
        status, body, *rest = result
        resp = requests.Response()
        resp.status_code = status
        resp._content = b"" if body is None else json.dumps(body).encode()
        resp.headers = CaseInsensitiveDict(rest[0] if rest else {})
        resp.url = request.url
        resp.request = request
        return resp

    def close(self) -> None:
        pass


def scripted_session(handler: Handler) -> tuple[requests.Session, ScriptedAdapter]:
    session = requests.Session()
    adapter = ScriptedAdapter(handler)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session, adapter


def route(req: requests.PreparedRequest) -> str:
    """"METHOD /path" without the query."""
    path = req.path_url.split("?")[0]
    return f"{req.method} {path}"


def body_of(req: requests.PreparedRequest) -> Any:
    return json.loads(req.body) if req.body else None



@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Scripted:
    """Builds a client whose HTTP goes to a handler; records requests."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.adapter: ScriptedAdapter | None = None

    def client(self, handler: Handler, *, raw: bool = False, **config: Any) -> DspClient:
        """A client on ``handler``; unless ``raw``, version probe and login are answered."""
        cfg = DateraConfig.from_mapping(
            {"endpoint": "http://dsp.test:7717", "san_password": "pw-Secret9", **config}, env={}
        )
        session, self.adapter = scripted_session(handler if raw else standard(handler))
        return DspClient(cfg, session=session, clock=self.clock)

    route = staticmethod(route)
    body_of = staticmethod(body_of)

    @property
    def routes(self) -> list[str]:
        assert self.adapter is not None
        return [route(r) for r in self.adapter.requests]


@pytest.fixture
def scripted(clock: FakeClock) -> Scripted:
    return Scripted(clock)


def standard(extra: Handler) -> Handler:
    """A handler answering version probe and login, delegating everything else."""

    def handler(req: requests.PreparedRequest) -> Any:
        r = route(req)
        if r == "GET /api_versions":
            return (200, {"api_versions": ["v2", "v2.1", "v2.2"]})
        if r.endswith("/login"):
            return (200, {"key": "k" * 32, "version": "v2.2"})
        return extra(req)

    return handler
