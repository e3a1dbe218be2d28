"""Fixtures for the Pulumi provider tests.

* ``toy``: an in-process provider server over real gRPC serving a test-only kind
  (``test:index:Disk``) that keeps its objects in a dict: it tests the adapter's generic
  derivation (validation, diff, secrets, preview, errors) without the DSP.
* ``plugin``: ``pulumi-resource-datera`` started as the engine starts it (a subprocess
  printing its port on stdout), with a stub that speaks ``pulumirpc.ResourceProvider``.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import grpc
import pytest
from attrs import validators as v

from datera_iac.errors import Conflict, InputError, NotFound
from datera_iac.pulumi.provider import DateraProvider, serve
from datera_iac.pulumi.testing import Rpc, start_plugin, stop_plugin
from datera_iac.resources.base import Context, Diff, Kind, Observed, out_field, spec_field
from datera_iac.resources.intents import IntentJournal


# ---- a toy kind --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DiskSpec:
    name: str = spec_field(doc="Disk name.", replace=True, validator=v.matches_re(r"[a-z][a-z0-9-]{2,}"))
    size: int = spec_field(doc="Size in GiB (grow only).", validator=[v.instance_of(int), v.ge(1)])
    tags: dict[str, str] = spec_field(doc="Labels.", factory=dict)
    password: str | None = spec_field(doc="CHAP secret.", default=None, sensitive=True)
    mode: str = spec_field(doc="Placement.", default="hybrid", validator=v.in_(["hybrid", "all_flash"]))


@attrs.frozen(kw_only=True)
class DiskOutputs:
    id: str | None = out_field(doc="The DSP's id.")
    iqn: str | None = out_field(doc="Target IQN.")
    token: str | None = out_field(doc="Access token.", sensitive=True)


class Disk(Kind[DiskSpec, DiskOutputs]):
    """A toy disk kept in ``ctx.client`` (a dict)."""

    name = "Disk"
    token = "test:index:Disk"
    tf_type = "test_disk"
    Spec = DiskSpec
    Outputs = DiskOutputs
    import_id_doc = "<name>"
    _ids = itertools.count(1)

    def diff(self, old: DiskSpec, new: DiskSpec) -> Diff:
        if new.size < old.size:
            raise InputError(f"cannot shrink from {old.size} to {new.size}", kind="Disk",
                             field="size", fix="grow it or replace the disk")
        d = super().diff(old, new)
        return attrs.evolve(d, delete_before_replace=True) if d.replace else d

    def _obs(self, rid: str, rec: Mapping[str, Any]) -> Observed[DiskSpec, DiskOutputs]:
        return Observed(id=rid, spec=rec["spec"], outputs=DiskOutputs(
            id=rid, iqn=f"iqn.2013-05.com.daterainc:{rec['spec'].name}", token=f"tok-{rid}"))

    def read(self, ctx: Context, id: str) -> Observed[DiskSpec, DiskOutputs] | None:
        rec = ctx.client.get(id)
        return None if rec is None else self._obs(id, rec)

    def create(self, ctx: Context, spec: DiskSpec) -> Observed[DiskSpec, DiskOutputs]:
        if any(r["spec"].name == spec.name for r in ctx.client.values()):
            raise Conflict(f"disk {spec.name} exists", method="POST", path="/disks", status=409)
        rid = f"disk-{next(self._ids)}"
        ctx.client[rid] = {"spec": spec, "timeouts": ctx.timeouts}
        return self._obs(rid, ctx.client[rid])

    def update(self, ctx: Context, id: str, old: DiskSpec, new: DiskSpec) -> Observed[DiskSpec, DiskOutputs]:
        if id not in ctx.client:
            raise NotFound(f"disk {id} is gone", method="PUT", path=f"/disks/{id}")
        ctx.client[id]["spec"] = new
        return self._obs(id, ctx.client[id])

    def delete(self, ctx: Context, id: str) -> None:
        ctx.client.pop(id, None)

    def find(self, ctx: Context, spec: DiskSpec) -> Observed[DiskSpec, DiskOutputs] | None:
        return next((self._obs(i, r) for i, r in ctx.client.items() if r["spec"].name == spec.name), None)

    def adopt(self, ctx: Context, ref: str) -> Observed[DiskSpec, DiskOutputs]:
        if ref in ctx.client:
            return self._obs(ref, ctx.client[ref])
        for i, r in ctx.client.items():
            if r["spec"].name == ref:
                return self._obs(i, r)
        raise NotFound(f"no disk {ref}")


@pytest.fixture
def dsp(sim):
    """A DspClient on the per-test simulator (out-of-band changes, checks of the DSP)."""
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    client = DspClient(DateraConfig.from_mapping({
        "endpoint": sim.http_url, "san_login": "admin", "san_password": sim.users["admin"]},
        use_env=False))
    yield client
    client.close()


@pytest.fixture
def toy_store() -> dict[str, Any]:
    return {}


@pytest.fixture
def toy(toy_store: dict[str, Any], tmp_path: Path) -> Iterator[Rpc]:
    """An in-process provider serving only the toy kind, over real gRPC on 127.0.0.1."""
    configs: list[Mapping[str, Any]] = []

    def factory(config: Mapping[str, Any]) -> Context:
        configs.append(dict(config))
        return Context(client=toy_store, config=None)

    provider = DateraProvider(kinds={Disk.token: Disk()}, context_factory=factory, version="9.9.9",
                              intents=IntentJournal(tmp_path))
    server, port = serve(provider)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    rpc = Rpc(channel)
    rpc.configs = configs  # type: ignore[attr-defined]
    rpc.Disk = Disk  # type: ignore[attr-defined]
    try:
        yield rpc
    finally:
        channel.close()
        server.stop(grace=None)


def _plugin(log_path: str) -> Iterator[tuple[Rpc, subprocess.Popen[bytes]]]:
    # its own PULUMI_HOME: the plugin's create intents stay out of the user's ~/.pulumi
    home = os.path.join(os.path.dirname(log_path), "pulumi-home")
    proc, port = start_plugin(log_path=log_path, env={"PULUMI_HOME": home})
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield Rpc(channel), proc
    finally:
        channel.close()
        stop_plugin(proc)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Iterator[tuple[Rpc, subprocess.Popen[bytes]]]:
    """The real plugin subprocess (kinds from the core) and a stub connected to it, shared
    by a module's tests (each test configures it); its log is ``proc.log_path``."""
    yield from _plugin(str(tmp_path_factory.mktemp("plugin") / "plugin.log"))


@pytest.fixture
def own_plugin(tmp_path) -> Iterator[tuple[Rpc, subprocess.Popen[bytes]]]:
    """Like ``plugin``, for one test only (a test that stops it or reads its whole log)."""
    yield from _plugin(str(tmp_path / "plugin.log"))
