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

__all__ = [
    "Rpc", "urn", "struct", "plain", "start_plugin", "stop_plugin", "EngineMocks", "run_program",
]

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

    def diff(self, token: str, name: str, id: str, olds: Mapping[str, Any], news: Mapping[str, Any],
             old_inputs: Mapping[str, Any] | None = None) -> pb.DiffResponse:
        return self.Diff(pb.DiffRequest(urn=urn(token, name), id=id, olds=struct(olds), news=struct(news),
                                        old_inputs=struct(old_inputs or {})))

    def update(self, token: str, name: str, id: str, olds: Mapping[str, Any], news: Mapping[str, Any],
               preview: bool = False, old_inputs: Mapping[str, Any] | None = None) -> pb.UpdateResponse:
        return self.Update(pb.UpdateRequest(urn=urn(token, name), id=id, olds=struct(olds), news=struct(news),
                                            preview=preview, old_inputs=struct(old_inputs or {})))

    def read(self, token: str, name: str, id: str, props: Mapping[str, Any] | None = None, inputs: Mapping[str, Any] | None = None) -> pb.ReadResponse:
        return self.Read(pb.ReadRequest(urn=urn(token, name), id=id, properties=struct(props or {}), inputs=struct(inputs or {})))

    def delete(self, token: str, name: str, id: str, props: Mapping[str, Any] | None = None) -> Any:
        return self.Delete(pb.DeleteRequest(urn=urn(token, name), id=id, properties=struct(props or {})))



def start_plugin(
    env: Mapping[str, str] | None = None, log_path: str | None = None, timeout: float = 30
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``pulumi-resource-datera`` as the engine does and read the port handshake.

    The plugin's stderr (its log) goes to ``log_path`` (or is discarded), never to a pipe
    nobody reads. Raises RuntimeError with the log's tail when no port is printed."""
    import selectors
    import tempfile

    exe = [sys.executable, "-c", "from datera_iac.pulumi._serve import main; main()"]
    log = open(log_path or tempfile.mktemp(prefix="pulumi-resource-datera-", suffix=".log"), "wb")
    proc = subprocess.Popen(
        [*exe, "127.0.0.1:1"],  # the engine's address: accepted, unused
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )
    log.close()
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = proc.stdout.readline().decode().strip() if sel.select(timeout) else ""
    sel.close()
    if not line.isdigit():
        stop_plugin(proc)
        with open(log.name, "rb") as f:
            tail = f.read()[-2000:].decode(errors="replace")
        raise RuntimeError(f"provider did not print a port (got {line!r}): {tail}")
    proc.log_path = log.name  # type: ignore[attr-defined]
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
    if proc.stdout is not None:
        proc.stdout.close()


def _from_mock(value: Any) -> Any:
    """A value deserialized by the mock monitor, with its secrets as :class:`Secret`."""
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return _codec.Secret(_from_mock(rpc.unwrap_rpc_secret(value)))
    if isinstance(value, Mapping):
        return {k: _from_mock(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_from_mock(v) for v in value]
    return value


def _to_mock(value: Any) -> Any:
    """A provider value for the mock monitor: :class:`Secret` becomes a Pulumi secret."""
    from pulumi.runtime import rpc

    if isinstance(value, _codec.Secret):
        return rpc.wrap_rpc_secret(_to_mock(value.value))
    if isinstance(value, Mapping):
        return {k: _to_mock(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_mock(v) for v in value]
    return value


class EngineMocks:
    """``pulumi.runtime.Mocks`` that forwards registrations to a real provider: a small engine.

    For each resource the program registers it runs what ``pulumi up`` runs: Check, then
    Create for a new URN, or Diff and then nothing, Update or a replacement (create then
    delete, or delete first when the provider asks) for a URN in :attr:`state` from an
    earlier run. ``Resource.get`` and the ``import`` option become Read. :meth:`finish`
    deletes what an earlier run had and this one did not register; :meth:`destroy` deletes
    everything. :attr:`operations` records ``(op, urn)`` for tests.

    A ``pulumi:providers:datera`` resource re-configures the one plugin process (the real
    engine would start one per provider); give the default provider's configuration as
    ``config``.
    """

    def __init__(
        self,
        rpc: Rpc,
        config: Mapping[str, Any] | None = None,
        state: Mapping[str, tuple[str, dict[str, Any], dict[str, Any]]] | None = None,
        *,
        stack: str = "stack",
        project: str = "project",
    ) -> None:
        self.rpc = rpc
        self.stack, self.project = stack, project
        self.state: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = dict(state or {})
        self.order: list[str] = list(self.state)
        self.registered: set[str] = set()
        self.operations: list[tuple[str, str]] = []
        if config is not None:
            rpc.Configure(pb.ConfigureRequest(args=struct(config), acceptSecrets=True))

    # the pulumi.runtime.Mocks interface ------------------------------------------------

    def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        raise NotImplementedError(f"the datera package has no functions ({args.token})")

    def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
        inputs = _from_mock(dict(args.inputs))
        if args.typ.startswith("pulumi:providers:"):
            self.rpc.Configure(pb.ConfigureRequest(args=struct(inputs), acceptSecrets=True))
            return f"{args.name}_id", _to_mock(inputs)
        u = f"urn:pulumi:{self.stack}::{self.project}::{args.typ}::{args.name}"
        self.registered.add(u)
        if args.resource_id:
            got = self.rpc.Read(pb.ReadRequest(urn=u, id=args.resource_id))
            if not got.id:
                raise LookupError(f"{args.typ} {args.resource_id!r} does not exist")
            self._keep(u, got.id, plain(got.properties), plain(got.inputs), op="read")
            return got.id, _to_mock(plain(got.properties))
        prior = self.state.get(u)
        checked = self.rpc.Check(
            pb.CheckRequest(urn=u, olds=struct(prior[2] if prior else {}), news=struct(inputs))
        )
        if checked.failures:
            raise ValueError(
                f"{args.typ} {args.name!r}: "
                + "; ".join(f"{f.property}: {f.reason}" for f in checked.failures)
            )
        news = plain(checked.inputs)
        if prior is None:
            return self._create(u, news)
        rid, olds, _ = prior
        d = self.rpc.Diff(pb.DiffRequest(urn=u, id=rid, olds=struct(olds), news=struct(news)))
        if d.changes != pb.DiffResponse.DIFF_SOME:
            self.operations.append(("same", u))
            return rid, _to_mock(olds)
        if d.replaces:
            if d.deleteBeforeReplace:
                self.rpc.Delete(pb.DeleteRequest(urn=u, id=rid, properties=struct(olds)))
                self.operations.append(("delete-replaced", u))
                return self._create(u, news, op="replace")
            created = self._create(u, news, op="replace")
            self.rpc.Delete(pb.DeleteRequest(urn=u, id=rid, properties=struct(olds)))
            self.operations.append(("delete-replaced", u))
            return created
        upd = self.rpc.Update(pb.UpdateRequest(urn=u, id=rid, olds=struct(olds), news=struct(news)))
        self._keep(u, rid, plain(upd.properties), news, op="update")
        return rid, _to_mock(plain(upd.properties))

    # helpers ------------------------------------------------------------------------------

    def _create(self, u: str, news: dict[str, Any], op: str = "create") -> tuple[str, dict[str, Any]]:
        made = self.rpc.Create(pb.CreateRequest(urn=u, properties=struct(news)))
        self._keep(u, made.id, plain(made.properties), news, op=op)
        return made.id, _to_mock(plain(made.properties))

    def _keep(self, u: str, rid: str, props: dict[str, Any], inputs: dict[str, Any], op: str) -> None:
        self.state[u] = (rid, props, inputs)
        if u not in self.order:
            self.order.append(u)
        self.operations.append((op, u))

    def _delete(self, u: str) -> None:
        rid, props, _ = self.state[u]
        self.rpc.Delete(pb.DeleteRequest(urn=u, id=rid, properties=struct(props)))
        del self.state[u]  # only once the provider deleted it, as the engine does
        self.order.remove(u)
        self.operations.append(("delete", u))

    def finish(self) -> None:
        """Delete what an earlier run managed and this run no longer declares (newest first)."""
        for u in reversed(list(self.order)):
            if u not in self.registered:
                self._delete(u)
        self.registered = set()

    def destroy(self) -> None:
        """Delete every managed resource, newest first (``pulumi destroy
        --continue-on-error``): a failed delete keeps its resource in :attr:`state`, the
        others go on, and the first error is raised at the end."""
        errors: list[Exception] = []
        for u in reversed(list(self.order)):
            try:
                self._delete(u)
            except grpc.RpcError as e:
                errors.append(e)
        if errors:
            raise errors[0]


def run(coro: Any) -> Any:
    """Run a coroutine to completion on a fresh event loop (SDK helpers are async)."""
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def run_program(path: str, mocks: Any, *, config: Mapping[str, str] | None = None,
                project: str = "project", stack: str = "stack") -> dict[str, Any]:
    """Run a Pulumi Python program file under ``set_mocks`` and wait for every registration.

    ``config`` holds the program's stack configuration (``"<project>:key": "value"``).
    Returns the program's exported stack outputs."""
    import runpy

    import pulumi
    import pulumi.runtime.config as pconfig
    from pulumi.runtime import mocks as pmocks

    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    pconfig.set_all_config(dict(config or {}))
    exported: dict[str, Any] = {}
    real_export = pulumi.export

    def export(name: str, value: Any) -> None:
        exported[name] = value
        real_export(name, value)

    def program() -> Any:
        pulumi.export = export  # type: ignore[assignment]
        try:
            runpy.run_path(path, run_name="__main__")
        finally:
            pulumi.export = real_export  # type: ignore[assignment]
        return pulumi.Output.all(**{k: pulumi.Output.from_input(v) for k, v in exported.items()})

    result: dict[str, Any] = {}

    def collect() -> Any:
        out = program()
        return out.apply(lambda values: result.update(values))

    try:
        pmocks.test(collect)()
    finally:
        # A failed program leaves futures holding its exception; finalize them now, not in
        # some later GC pass (CPython 3.11 can crash compiling when a finalizer runs
        # Python code in the middle of building an AST).
        import gc

        gc.collect()
    return result
