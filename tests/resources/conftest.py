"""Fixtures for the resource-kind contract tests: a Context whose client talks to the
``sim`` simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.resources.base import Context, Timeouts


def make_ctx(server: Any, **options: Any) -> Context:
    """A Context for ``server`` (plain HTTP; short timeouts so a stuck wait fails fast)."""
    cfg = DateraConfig.from_mapping({
        "endpoint": server.http_url, "san_login": "admin", "san_password": "password",
        **options,
    })
    return Context(client=DspClient(cfg), config=cfg,
                   timeouts=Timeouts(create=20, update=20, delete=20, read=20))


@pytest.fixture
def ctx(sim: Any) -> Iterator[Context]:
    """A Context on the per-test ``sim``; the client is already logged in and has probed
    the API and product versions, so request counts in tests measure the kind alone."""
    c = make_ctx(sim)
    c.client.login()
    _ = c.client.api_version, c.client.sw_version
    yield c
    c.client.close()


@pytest.fixture
def calls(sim: Any) -> Callable[[], dict[str, int]]:
    """Requests counted by the simulator since the last call of ``calls()`` (by route)."""
    last: dict[str, int] = dict(sim.counters())

    def delta() -> dict[str, int]:
        now = dict(sim.counters())
        out = {k: v - last.get(k, 0) for k, v in now.items() if v - last.get(k, 0)}
        last.clear()
        last.update(now)
        return out

    return delta
