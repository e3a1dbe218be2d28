"""Fixtures of the simulator's own tests: a tiny raw-HTTP client (independent of the
project's DspClient, which is tested against the simulator separately)."""

from __future__ import annotations

from typing import Any

import requests


class Api:
    """requests.Session bound to one simulator, one API version and one tenant."""

    def __init__(self, base_url: str, version: str = "v2.2", tenant: str | None = "/root",
                 user: str = "admin", password: str = "password", verify: Any = True) -> None:
        self.base = base_url.rstrip("/")
        self.version = version
        self.tenant = tenant
        self.s = requests.Session()
        self.s.verify = verify
        self.key: str | None = None
        if user:
            self.login(user, password)

    def url(self, path: str) -> str:
        return f"{self.base}/{self.version}/{path.lstrip('/')}"

    def login(self, user: str = "admin", password: str = "password") -> requests.Response:
        r = self.s.put(self.url("/login"), json={"name": user, "password": password}, timeout=10)
        if r.ok:
            self.key = r.json()["key"]
        return r

    def headers(self, tenant: str | None = None) -> dict[str, str]:
        h = {}
        if self.key:
            h["Auth-Token"] = self.key
        t = tenant if tenant is not None else self.tenant
        if t is not None:
            h["tenant"] = t
        return h

    def req(self, method: str, path: str, body: Any = None, *, tenant: str | None = None,
            params: dict[str, Any] | None = None) -> requests.Response:
        return self.s.request(method, self.url(path), json=body, params=params,
                              headers=self.headers(tenant), timeout=10)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        r = self.req(method, path, body, **kw)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()["data"]

    def err(self, status: int, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        r = self.req(method, path, body, **kw)
        assert r.status_code == status, f"{method} {path}: expected {status}, got {r.status_code} {r.text}"
        assert r.headers["Content-Type"].startswith("application/json")
        return r.json()


def ai_body(name: str = "app-1", size: int = 10, replicas: int = 3, **extra: Any) -> dict[str, Any]:
    """The nested create body Cinder sends (one SI storage-1 with one volume volume-1)."""
    body = {
        "name": name,
        "create_mode": "openstack",
        "access_control_mode": "deny_all",
        "storage_instances": [{
            "name": "storage-1",
            "ip_pool": {"path": "/access_network_ip_pools/default"},
            "volumes": [{"name": "volume-1", "size": size, "replica_count": replicas,
                         "snapshot_policies": []}],
        }],
    }
    body.update(extra)
    return body


# ---------------------------------------------------------------------------- fixtures

import pytest

from datera_iac.sim import SimServer


@pytest.fixture
def api(sim: SimServer) -> Api:
    """A logged-in v2.2 client on the simulator's HTTP site, tenant /root."""
    return Api(sim.http_url)


@pytest.fixture
def api21(sim: SimServer) -> Api:
    """A logged-in v2.1 client."""
    return Api(sim.http_url, version="v2.1")


@pytest.fixture
def new_api(sim: SimServer) -> Any:
    """Factory: ``new_api(version="v2.1", tenant="/root/a", ...)`` on the ``sim`` server."""
    def factory(**kw: Any) -> Api:
        return Api(kw.pop("base_url", sim.http_url), **kw)
    return factory


@pytest.fixture
def body() -> Any:
    """``body(name, size, replicas, **extra)``: the nested AI create body."""
    return ai_body
