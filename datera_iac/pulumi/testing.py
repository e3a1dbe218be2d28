"""Drive ``pulumi-resource-datera`` the way the Pulumi engine does, without the Pulumi CLI.

No Pulumi CLI can be installed here (nor in CI), so the provider is tested, and programs
can be tried, by speaking the engine's side of the protocol:

* :func:`start_plugin` starts the plugin as the engine does (a subprocess that prints its
  port on stdout) and :class:`Rpc` calls ``pulumirpc.ResourceProvider`` on it;
* :class:`EngineMocks` is a ``pulumi.runtime.Mocks`` that forwards each resource a program
  registers to a real provider (Check, then Create; or Read for ``get``/import), so a
  Pulumi program runs under ``pulumi.runtime.set_mocks`` against a real DSP or the
  simulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2 as pb
from pulumi.runtime.proto import provider_pb2_grpc

from datera_iac.pulumi import _codec

__all__ = ["Rpc", "urn", "struct", "plain", "start_plugin", "stop_plugin", "EngineMocks"]

URN = "urn:pulumi:dev::proj::{token}::{name}"


def urn(token: str, name: str) -> str:
    return URN.format(token=token, name=name)


def struct(d: Mapping[str, Any]) -> Any:
    return _codec.encode(d)


def plain(s: Any) -> dict[str, Any]:
    return _codec.decode(s)


class Rpc:
    """A stub with small helpers; every call has a deadline so a hang fails the test."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.stub = provider_pb2_grpc.ResourceProviderStub(channel)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.stub, name)

        def call(request: Any = None, **kw: Any) -> Any:
            return method(request if request is not None else empty_pb2.Empty(), timeout=30, **kw)

        return call

    def configure(self, **config: Any) -> pb.ConfigureResponse:
        return self.Configure(pb.ConfigureRequest(args=struct(config), acceptSecrets=True))

    def check(self, token: str, name: str, news: Mapping[str, Any], olds: Mapping[str, Any] | None = None) -> pb.CheckResponse:
        return self.Check(pb.CheckRequest(urn=urn(token, name), olds=struct(olds or {}), news=struct(news)))

    def create(self, token: str, name: str, props: Mapping[str, Any], preview: bool = False, timeout: float = 0) -> pb.CreateResponse:
        return self.Create(pb.CreateRequest(urn=urn(token, name), properties=struct(props), preview=preview, timeout=timeout))

    def diff(self, token: str, name: str, id: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> pb.DiffResponse:
        return self.Diff(pb.DiffRequest(urn=urn(token, name), id=id, olds=struct(olds), news=struct(news)))

    def update(self, token: str, name: str, id: str, olds: Mapping[str, Any], news: Mapping[str, Any], preview: bool = False) -> pb.UpdateResponse:
        return self.Update(pb.UpdateRequest(urn=urn(token, name), id=id, olds=struct(olds), news=struct(news), preview=preview))

    def read(self, token: str, name: str, id: str, props: Mapping[str, Any] | None = None, inputs: Mapping[str, Any] | None = None) -> pb.ReadResponse:
        return self.Read(pb.ReadRequest(urn=urn(token, name), id=id, properties=struct(props or {}), inputs=struct(inputs or {})))

    def delete(self, token: str, name: str, id: str, props: Mapping[str, Any] | None = None) -> Any:
        return self.Delete(pb.DeleteRequest(urn=urn(token, name), id=id, properties=struct(props or {})))



def start_plugin(env: Mapping[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``pulumi-resource-datera`` the way the engine does and read the port handshake."""
    exe = [sys.executable, "-c", "from datera_iac.pulumi.provider import main; main()"]
    proc = subprocess.Popen(
        [*exe, "127.0.0.1:1"],  # the engine's address: accepted, unused
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.isdigit():
        proc.kill()
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"provider did not print a port (got {line!r}): {err[-2000:]}")
    return proc, int(line)


def stop_plugin(proc: subprocess.Popen[bytes]) -> None:
    """Stop the plugin by its pid: SIGTERM, then SIGKILL after 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


