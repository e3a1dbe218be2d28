"""A test-only kind and a file-backed fake "DSP" for the provider's unit and toy e2e tests.

The toy ``Disk`` kind exercises every Terraform rule the adapter must get right without
waiting for the real kinds: a required replace field (``name``), a tenant that the core
normalises (``x`` -> ``/root/x``), a size that may grow but not shrink (plan-time error),
a map, a secret the "DSP" never echoes, a field the "DSP" fills in when unset (``mode``),
and outputs that change on update (``generation``) or never (``serial``).

The store is a JSON file named by the config's ``path`` so that the short-lived provider
processes Terraform starts share it, and tests can change it "out of band".
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import attrs

from datera_iac.errors import InputError, NotFound
from datera_iac.resources.base import (
    Context,
    Diff,
    Kind,
    Observed,
    diff_specs,
    out_field,
    spec_field,
)


def _tenant(value: Any) -> str:
    v = str(value)
    return v if v.startswith("/root") else f"/root/{v}"


def _name_ok(_: Any, a: attrs.Attribute, value: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9-]{2,31}", value):
        raise InputError("must be 3-32 lowercase letters, digits or '-'", kind="Disk",
                         field=a.name, fix="rename it, e.g. 'disk-1'")


def _size_ok(_: Any, a: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise InputError(f"must be >= 1, got {value}", kind="Disk", field=a.name,
                         fix="give a size in GiB")


@attrs.frozen(kw_only=True)
class DiskSpec:
    name: str = spec_field(doc="Disk name.", replace=True, validator=_name_ok)
    size: int = spec_field(doc="Size in GiB; grows in place, never shrinks.", default=1,
                           validator=_size_ok)
    tenant: str = spec_field(doc="Tenant path ('x' means '/root/x').", default="/root",
                             replace=True, converter=_tenant)
    labels: dict[str, str] = spec_field(doc="Free labels.", factory=dict)  # noqa: RUF009
    secret: str | None = spec_field(doc="A CHAP-like secret.", default=None, sensitive=True)
    mode: str | None = spec_field(doc="Placement; the DSP picks 'hybrid' when unset.",
                                  default=None)


@attrs.frozen(kw_only=True)
class DiskOutputs:
    serial: str | None = out_field(doc="Serial, fixed at create.")
    generation: int | None = out_field(doc="Bumped by every update.")


class FileStore:
    """The fake DSP: one JSON file; ``client`` for the toy kind."""

    _lock = threading.Lock()

    def __init__(self, config: Any) -> None:
        self.path = Path(config.path)

    def load(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def save(self, data: dict[str, dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def log(self, op: str) -> None:
        with self.path.with_suffix(".log").open("a") as fh:
            fh.write(op + "\n")


@attrs.frozen(kw_only=True)
class ToyConfig:
    path: str
    password: str | None = attrs.field(default=None, repr=False,
                                       metadata={"datera_iac.sensitive": True,
                                                 "datera_iac.doc": "A secret."})


def _observe(obj: dict[str, Any]) -> Observed[DiskSpec, DiskOutputs]:
    spec = DiskSpec(name=obj["name"], size=obj["size"], tenant=obj["tenant"],
                    labels=obj["labels"], secret=None, mode=obj["mode"])
    return Observed(id=obj["id"], spec=spec,
                    outputs=DiskOutputs(serial=obj["serial"], generation=obj["generation"]))


class Disk(Kind[DiskSpec, DiskOutputs]):
    """A toy disk (tests only)."""

    name = "Disk"
    token = "datera:index:Disk"
    tf_type = "datera_disk"
    Spec = DiskSpec
    Outputs = DiskOutputs
    import_id_doc = "<tenant>/<name>"
    stable_outputs = ("serial",)

    def diff(self, old: DiskSpec, new: DiskSpec) -> Diff:
        if new.size < old.size:
            raise InputError(f"cannot shrink from {old.size} to {new.size} GiB", kind="Disk",
                             field="size", fix="keep the size or replace the disk")
        ignore = ["mode"] if new.mode is None else []
        if new.secret is None:
            ignore.append("secret")  # the DSP does not echo secrets
        return diff_specs(old, new, ignore=ignore)

    def read(self, ctx: Context, id: str) -> Observed[DiskSpec, DiskOutputs] | None:
        obj = ctx.client.load().get(id)
        return _observe(obj) if obj else None

    def read_many(self, ctx: Context, ids: Any) -> dict[str, Observed[DiskSpec, DiskOutputs] | None]:
        data = ctx.client.load()  # one "list call"
        ctx.client.log("list")
        return {i: (_observe(data[i]) if i in data else None) for i in ids}

    def create(self, ctx: Context, spec: DiskSpec) -> Observed[DiskSpec, DiskOutputs]:
        store = ctx.client
        with store._lock:
            data = store.load()
            oid = f"{spec.tenant}/{spec.name}"
            if oid in data:
                raise InputError("already exists", kind="Disk", field="name", fix="rename")
            data[oid] = {"id": oid, "name": spec.name, "size": spec.size, "tenant": spec.tenant,
                         "labels": dict(spec.labels), "mode": spec.mode or "hybrid",
                         "serial": uuid.uuid4().hex[:12], "generation": 1,
                         "timeout_create": ctx.timeouts.create}
            store.save(data)
            store.log(f"create {oid}")
        return _observe(data[oid])

    def update(self, ctx: Context, id: str, old: DiskSpec, new: DiskSpec) -> Observed[DiskSpec, DiskOutputs]:
        store = ctx.client
        with store._lock:
            data = store.load()
            obj = data[id]
            obj.update(size=new.size, labels=dict(new.labels), mode=new.mode or obj["mode"],
                       generation=obj["generation"] + 1)
            store.save(data)
            store.log(f"update {id}")
        return _observe(obj)

    def delete(self, ctx: Context, id: str) -> None:
        store = ctx.client
        with store._lock:
            data = store.load()
            if data.pop(id, None) is not None:
                store.save(data)
                store.log(f"delete {id}")

    def find(self, ctx: Context, spec: DiskSpec) -> Observed[DiskSpec, DiskOutputs] | None:
        return self.read(ctx, f"{spec.tenant}/{spec.name}")

    def adopt(self, ctx: Context, ref: str) -> Observed[DiskSpec, DiskOutputs]:
        obs = self.read(ctx, ref if ref.startswith("/") else f"/root/{ref}")
        if obs is None:
            raise NotFound(f"no disk {ref!r}")
        return obs


def toy_provider() -> Any:
    from datera_iac_tf.provider import DateraProvider

    return DateraProvider([Disk()], config_cls=ToyConfig, client_factory=FileStore,
                          data_sources=[])


def main() -> int:
    import sys

    from datera_iac_tf._serve import serve

    serve(toy_provider(), sys.argv)
    return 0


def main_timeouts_as_blocks() -> int:
    """The toy provider with ``timeouts`` typed list(object) - the only attribute type
    Terraform lets a configuration also write as blocks (its blocktoattr fix-up) - for
    tests/terraform/test_timeouts_forms.py, which shows why the real provider keeps the
    map attribute."""
    import attrs as _attrs
    from tf import types as tft

    from datera_iac_tf import adapter
    from datera_iac_tf import schema as S
    from datera_iac_tf._types import Object

    plain, parse = S.KindSchema.timeouts_field, adapter.timeouts_from

    def as_blocks(self: Any) -> Any:
        elem = Object({k: tft.String() for k in S.TIMEOUT_KEYS})
        return _attrs.evolve(plain.fget(self), type=tft.List(elem))

    def first_block(value: Any, **kw: Any) -> Any:
        block = (value or [{}])[0]
        return parse({k: v for k, v in block.items() if v is not None}, **kw)

    S.KindSchema.timeouts_field = property(as_blocks)  # type: ignore[method-assign]
    adapter.timeouts_from = first_block  # type: ignore[assignment]
    import sys

    from datera_iac_tf._serve import serve

    app = toy_provider()
    # its own entry in the schema cache (datera_iac_tf/_serve._schema_cache keys on the code and
    # the app's name): the patched schema must never be served to the plain toy provider
    app.__qualname__ = "toy_provider_timeouts_as_blocks"
    serve(app, sys.argv)
    return 0


def main_recording_chap() -> int:
    """The real provider, recording every CHAP secret ``datera_chap_credentials`` makes
    (one line each) in the file ``$DATERA_TEST_CHAP_LOG``, so a test can look for each
    of them in the state and the saved plan (tests/terraform/test_ephemeral_chap_tf.py)."""
    import os

    import datera_iac_tf.ephemeral as eph
    from datera_iac_tf.main import main as real_main

    make = eph.new_chap_secret

    def recorded(length: int = 16) -> str:
        secret = make(length)
        with open(os.environ["DATERA_TEST_CHAP_LOG"], "a") as f:
            f.write(secret + "\n")
        return secret

    eph.new_chap_secret = recorded  # type: ignore[assignment]
    return real_main()
