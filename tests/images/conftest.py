"""Fixtures for the image tests: a simulator with its tgtd data plane (module-scoped,
reset per test), image files, and engine Workspaces on a stack file."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.engine.core import Workspace
from datera_iac.resources.base import Context, Timeouts
from datera_iac.sim import SimServer
from tests.tools import require

INIT = "iqn.2024-01.org.example:imager"
MIB = 1 << 20


def sha256(path: str | Path, n: int | None = None) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(n) if n else f.read()).hexdigest()


def raw_image(directory: Path, name: str = "img.raw", size: int = 3 * MIB,
              seed: bytes = b"") -> Path:
    """A raw image with non-zero, seed-dependent content (zeros would read back equal
    from an empty volume and prove nothing)."""
    p = directory / name
    p.write_bytes(hashlib.sha256(seed).digest() * (size // 32))
    return p


def writes(server: SimServer) -> dict[str, int]:
    """Write requests (POST/PUT/DELETE) the simulator served, logins excepted."""
    return {k: n for k, n in server.counters().items()
            if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH") and "login" not in k}


def ctx_for(server: SimServer, **conf: Any) -> Context:
    cfg = DateraConfig.from_mapping({"endpoint": server.http_url, "san_login": "admin",
                                     "san_password": "password", **conf})
    return Context(client=DspClient(cfg), config=cfg,
                   timeouts=Timeouts(create=20, update=20, delete=20, read=20))


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[tuple[SimServer, Any]]:
    """The simulator serving every online volume as a tgtd target on 127.0.0.1."""
    require("tgtd", "tgtadm", "qemu-img", "qemu-img iscsi driver")
    from datera_iac.sim.dataplane import TgtDataPlane

    dp = TgtDataPlane(portals=["127.0.0.1"], data_dir=tmp_path_factory.mktemp("img-luns"))
    dp.start()
    server = SimServer(dataplane=dp, portals=["127.0.0.1"]).start()
    try:
        yield server, dp
    finally:
        server.stop()
        dp.stop()


@pytest.fixture
def dsp(live) -> tuple[SimServer, Any]:
    server, dp = live
    server.reset()
    dp.reset()
    return server, dp


@pytest.fixture
def make_ws(tmp_path, monkeypatch) -> Iterator[Callable[..., Workspace]]:
    """``make_ws(server, stack_text, **provider_config)``: a Workspace on ``server``."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    made: list[Workspace] = []

    def make(server: SimServer, text: str, **provider: Any) -> Workspace:
        f = tmp_path / "stack" / "Pulumi.yaml"
        f.parent.mkdir(exist_ok=True)
        f.write_text(text)
        ws = Workspace(stack_file=f, endpoint=server.http_url, embedded=False,
                       provider_config=provider,
                       timeouts=Timeouts(create=30, update=30, delete=30, read=30))
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.close()
