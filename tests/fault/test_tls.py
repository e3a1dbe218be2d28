"""TLS verification is on by default in every front end: the simulator's self-signed
certificate is refused (before any request reaches it, with an error saying which option
fixes it) unless a CA bundle or the explicit insecure switch is given."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.errors import ConfigError
from tests.fault.conftest import ADMIN, ADMIN_PASSWORD, TF_HEAD


def _https(sim, **extra):
    return DspClient(DateraConfig.from_mapping(
        {"endpoint": sim.https_url, "san_login": ADMIN, "san_password": ADMIN_PASSWORD, **extra},
        use_env=False))


def _served(sim) -> int:
    return sum(sim.counters().values())


def test_client_tls(sim, figure, caplog):
    """Default: refused, 0 requests served, the error names ca_bundle and tls_verify.
    With the CA bundle: works. With tls_verify=false: works, and says it is insecure."""
    assert DateraConfig.from_mapping({"san_ip": "10.0.0.1", "san_login": "u", "san_password": "p"},
                                    use_env=False).tls_verify is True
    c = _https(sim)
    try:
        with pytest.raises(ConfigError) as e:
            c.get("/system")
    finally:
        c.close()
    refused = _served(sim) == 0
    assert "ca_bundle" in str(e.value) and "tls_verify" in str(e.value)

    c = _https(sim, ca_bundle=str(sim.cert_path))
    try:
        assert c.get("/system")
        with_ca = True
    finally:
        c.close()

    with caplog.at_level(logging.WARNING, logger="datera_iac"):
        c = _https(sim, tls_verify=False)
        try:
            assert c.get("/system")
        finally:
            c.close()
    warned = any("TLS verification is OFF" in r.getMessage() for r in caplog.records)
    figure("tls", front_end="client", self_signed_refused=refused, ca_bundle_ok=with_ca,
           insecure_ok_and_warned=warned)
    assert refused and warned


def test_engine_tls(sim, tmp_path, figure):
    """`datera-iac up` against the https endpoint: refused with the fix, no write; with
    DATERA_CA_BUNDLE it applies."""
    stack = tmp_path / "Pulumi.yaml"
    stack.write_text("name: tls\nruntime: yaml\nresources:\n  t:\n    type: datera:index:Tenant\n"
                     "    properties: {name: tls-team}\n")
    env = {**os.environ, "DATERA_SAN_LOGIN": ADMIN, "DATERA_SAN_PASSWORD": ADMIN_PASSWORD,
           "DATERA_ENDPOINT": sim.https_url}
    for k in ("DATERA_SAN_IP", "DATERA_CA_BUNDLE", "DATERA_TLS_VERIFY"):
        env.pop(k, None)
    argv = [sys.executable, "-m", "datera_iac.cli", "up", "--yes", "-f", str(stack), "--no-color"]
    p = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    refused = p.returncode != 0 and _served(sim) == 0
    assert refused, (p.returncode, p.stdout, p.stderr)
    assert "ca_bundle" in p.stderr + p.stdout and "Traceback" not in p.stderr
    p = subprocess.run(argv, cwd=tmp_path, env={**env, "DATERA_CA_BUNDLE": str(sim.cert_path)},
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    figure("tls", front_end="engine", self_signed_refused=refused, ca_bundle_ok=True)


def test_pulumi_tls(sim, figure):
    """The Pulumi provider: Create on the https endpoint fails (not INTERNAL) without a CA;
    with caBundle it succeeds."""
    import grpc

    from datera_iac.pulumi._codec import Secret
    from datera_iac.pulumi.provider import DateraProvider, serve
    from datera_iac.pulumi.testing import Rpc, plain

    T = "datera:index:Tenant"
    results = {}
    for label, extra in (("default", {}), ("ca", {"caBundle": str(sim.cert_path)})):
        prov = DateraProvider()
        server, port = serve(prov)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            rpc = Rpc(channel)
            rpc.configure(endpoint=sim.https_url, sanLogin=ADMIN, sanPassword=Secret(ADMIN_PASSWORD),
                          datera503Timeout=2, **extra)
            inputs = plain(rpc.check(T, "tls-team", {"name": "tls-team"}).inputs)
            try:
                results[label] = rpc.create(T, "tls-team", inputs).id
            except grpc.RpcError as e:
                results[label] = e
        finally:
            channel.close()
            server.stop(grace=None)
    err = results["default"]
    assert isinstance(err, grpc.RpcError), "the self-signed certificate was accepted"
    assert err.code() != grpc.StatusCode.INTERNAL and "ca_bundle" in err.details(), err.details()
    assert isinstance(results["ca"], str) and results["ca"]
    figure("tls", front_end="pulumi", self_signed_refused=True, ca_bundle_ok=True)


@pytest.mark.terraform
def test_terraform_tls(sim, make_tf, figure):
    """The Terraform provider: apply on the https endpoint fails with a diagnostic naming
    ca_bundle; with DATERA_CA_BUNDLE it applies."""
    tf = make_tf(sim, DATERA_ENDPOINT=sim.https_url)
    tf.write(TF_HEAD + 'resource "datera_tenant" "t" {\n  name = "tls-team"\n}\n')
    p = tf.apply(ok=(1,))
    assert "ca_bundle" in p.stdout + p.stderr and _served(sim) == 0
    tf.env["DATERA_CA_BUNDLE"] = str(sim.cert_path)
    tf.apply()
    figure("tls", front_end="terraform", self_signed_refused=True, ca_bundle_ok=True)
