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
