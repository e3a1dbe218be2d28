"""Fixtures for the cinder tests: a kind Context on the shared ``sim`` simulator."""

from __future__ import annotations

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.resources.base import Context


@pytest.fixture
def ctx(sim):
    """A kind Context whose client talks to the simulator over HTTP."""
    config = DateraConfig.from_mapping(
        {"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"},
        use_env=False,
    )
    client = DspClient(config)
    try:
        yield Context(client=client, config=config)
    finally:
        client.close()
