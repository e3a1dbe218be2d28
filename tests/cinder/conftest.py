"""Fixtures for the cinder tests: a DSP context on the simulator.

Uses the suite-wide ``sim`` fixture (tests/conftest.py) when it exists; otherwise one
SimServer for this directory's session, reset per test."""

from __future__ import annotations

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.resources.base import Context


@pytest.fixture(scope="session")
def _cinder_own_sim():
    from datera_iac.sim import SimServer

    server = SimServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dsp_sim(request):
    """A running simulator with a clean store."""
    try:
        return request.getfixturevalue("sim")
    except pytest.FixtureLookupError:
        server = request.getfixturevalue("_cinder_own_sim")
        server.reset()
        return server


@pytest.fixture
def ctx(dsp_sim):
    """A kind Context whose client talks to the simulator over HTTP."""
    config = DateraConfig.from_mapping(
        {"endpoint": dsp_sim.http_url, "san_login": "admin", "san_password": "password"},
        use_env=False,
    )
    client = DspClient(config)
    try:
        yield Context(client=client, config=config)
    finally:
        client.close()
