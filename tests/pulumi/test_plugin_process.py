"""The plugin as the engine starts it: a subprocess, a port on stdout, gRPC on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2 as pb

from datera_iac.pulumi._codec import Secret
from datera_iac.pulumi.provider import plugin_version
from datera_iac.pulumi.schema import package_schema
from datera_iac.pulumi.testing import plain


def test_handshake_info_and_schema(plugin):
    """The plugin prints its port, reports the package version and serves the schema the
    core derives (the same one ``schema.json`` holds)."""
    rpc, proc = plugin
    assert rpc.GetPluginInfo().version == plugin_version()
    served = json.loads(rpc.GetSchema(pb.GetSchemaRequest()).schema)
    assert served == package_schema()
    assert served["name"] == "datera"
    assert served["config"]["variables"]["sanPassword"]["secret"] is True
    assert served["config"]["variables"]["sanIp"]["defaultInfo"] == {"environment": ["DATERA_SAN_IP"]}


def test_configure_and_check_config(plugin):
    """CheckConfig validates with DateraConfig; Configure accepts secrets and preview."""
    rpc, _ = plugin
    urn = "urn:pulumi:dev::p::pulumi:providers:datera::default"
    from datera_iac.pulumi.testing import struct

    ok = rpc.CheckConfig(pb.CheckRequest(urn=urn, news=struct(
        {"endpoint": "http://127.0.0.1:9", "sanPassword": "pw", "version": "0.1.0"})))
    assert list(ok.failures) == [] and plain(ok.inputs)["sanPassword"] == Secret("pw")
    bad = rpc.CheckConfig(pb.CheckRequest(urn=urn, news=struct(
        {"endpoint": "ftp://x", "sanPassword": "pw"})))
    assert [f.property for f in bad.failures] == ["endpoint"]
    resp = rpc.configure(endpoint="http://127.0.0.1:9", sanPassword=Secret("pw"))
    assert resp.acceptSecrets and resp.supportsPreview


def test_unknown_type_is_a_clear_error(plugin):
    """A type the package does not have fails with the list of those it has."""
    rpc, _ = plugin
    with pytest.raises(grpc.RpcError) as e:
        rpc.check("datera:index:Bucket", "b", {})
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown resource type 'datera:index:Bucket'" in e.value.details()


def test_sigterm_stops_the_plugin(own_plugin):
    """SIGTERM (how the engine ends a plugin) stops the server promptly with exit 0."""
    _, proc = own_plugin
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


PORT_PROBE = """
import json, os, runpy, sys
out = sys.argv[1]
real = sys.stdout.write
def write(s):
    if s.strip().isdigit():
        with open(out, "w") as f:
            json.dump({"modules": sorted(m for m, v in sys.modules.items()
                                         if type(v).__name__ != "DeferredModule"), "line": s}, f)
        os._exit(0)
    return real(s)
sys.stdout.write = write
sys.argv = ["datera_iac.pulumi"]
runpy.run_module("datera_iac.pulumi", run_name="__main__")
"""


def test_nothing_beyond_grpc_before_the_port_line(tmp_path):
    """The engine waits for the port line (issue 21: the same start-up work as the
    Terraform provider): before it only gRPC and the launcher modules are imported - not
    the ``pulumi`` package, the generated SDK, the kinds or the DSP client, which load
    after it, while the engine connects; ``asyncio`` and ``grpc.aio``, which gRPC imports
    and the sync server never uses, are stand-ins until the provider's build imports them
    for real. The time is printed by bench/scale_report.py."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "modules.json"
    repo = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", PORT_PROBE, str(out)], timeout=60, check=True,
                   env={**os.environ, "PYTHONPATH": str(repo)}, stdout=subprocess.DEVNULL)
    seen = json.loads(out.read_text())
    assert int(seen["line"]) > 0
    mods = seen["modules"]
    ours = {m for m in mods if m.split(".")[0] == "datera_iac"}
    assert ours <= {"datera_iac", "datera_iac.pulumi", "datera_iac.pulumi._serve",
                    "datera_iac._launcher"}, sorted(ours)
    early = [m for m in mods if m.split(".")[0] in ("pulumi", "requests", "yaml", "urllib3", "asyncio")
             or m.startswith("grpc.aio")]
    assert not early, early
    assert "grpc" in mods
