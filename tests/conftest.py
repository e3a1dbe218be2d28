"""Shared fixtures.

``sim``: a running DSP simulator (:class:`datera_iac.sim.SimServer`) with a clean store for
each test. The server is started once per test session (per xdist worker) on free ports on
127.0.0.1 and reset before every test (store, sessions, counters, request log, faults).

``make_sim``: start extra simulators with other options (``make_sim(sw_version="3.2.0.0",
si_online_delay=0.2)``); each is stopped when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from datera_iac.sim import SimServer


@pytest.fixture(scope="session")
def _sim_session() -> Iterator[SimServer]:
    server = SimServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sim(_sim_session: SimServer) -> SimServer:
    """A running simulator with an empty store (default tenant /root, pool ``default``)."""
    _sim_session.reset()
    return _sim_session


@pytest.fixture
def make_sim() -> Iterator[Callable[..., SimServer]]:
    """Factory for simulators with non-default options, stopped after the test."""
    started: list[SimServer] = []

    def factory(**options: Any) -> SimServer:
        server = SimServer(**options).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
