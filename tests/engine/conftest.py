"""An in-memory kind for engine tests that need no DSP (graph, journal, planning rules).

``ToyStore`` plays the DSP: a dict of objects with unique names, call counters, and a
``fail`` hook. The kinds are registered only inside the ``toy`` fixture, so other tests
that enumerate the registry never see them.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any

import attrs
import pytest
from attrs import validators as v

from datera_iac.errors import Conflict
from datera_iac.resources.base import KINDS, Kind, Observed, out_field, spec_field


@attrs.frozen(kw_only=True)
class ToySpec:
    name: str = spec_field(doc="Unique name.", validator=v.matches_re(r"[a-z][a-z0-9-]{1,40}"))
    size: int = spec_field(doc="Size.", default=1, validator=v.ge(1))
    zone: str = spec_field(doc="Zone (replace).", default="a", replace=True)
    secret: str | None = spec_field(doc="A secret the store never returns.", default=None, sensitive=True)
    parent_id: str | None = spec_field(doc="Another toy's id.", default=None, replace=True,
                                       reference="EngineToy")
    tags: dict[str, str] = spec_field(doc="Tags.", factory=dict)


@attrs.frozen(kw_only=True)
class ToyOut:
    serial: str | None = out_field(doc="Serial.")
    token: str | None = out_field(doc="A secret output.", sensitive=True)


class ToyStore:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, int] = {}
        self.ids = itertools.count(1)
        self.mu = threading.Lock()
        self.fail: dict[str, str] = {}  # name -> op that raises
        self.fail_delete: set[str] = set()  # ids whose delete raises

    def count(self, op: str) -> None:
        with self.mu:
            self.calls[op] = self.calls.get(op, 0) + 1

    @property
    def writes(self) -> int:
        return sum(n for k, n in self.calls.items() if k in ("create", "update", "delete"))


class EngineToy(Kind[ToySpec, ToyOut]):
    name = "EngineToy"
    token = "datera:index:EngineToy"
    tf_type = "datera_engine_toy"
    Spec = ToySpec
    Outputs = ToyOut

    def __init__(self, store: ToyStore) -> None:
        self.store = store

    def _obs(self, oid: str) -> Observed[ToySpec, ToyOut]:
        o = self.store.objects[oid]
        spec = ToySpec(**{k: o[k] for k in ("name", "size", "zone", "parent_id", "tags")})
        return Observed(oid, spec, ToyOut(serial=f"sn-{oid}", token=f"tok-{oid}"))

    def read(self, ctx: Any, id: str) -> Observed[ToySpec, ToyOut] | None:
        self.store.count("read")
        return self._obs(id) if id in self.store.objects else None

    def read_many(self, ctx: Any, ids: Any) -> dict[str, Any]:
        self.store.count("read_many")
        return {i: (self._obs(i) if i in self.store.objects else None) for i in ids}

    def create(self, ctx: Any, spec: ToySpec) -> Observed[ToySpec, ToyOut]:
        self.store.count("create")
        if self.store.fail.get(spec.name) == "create":
            raise Conflict("injected failure", method="POST", path="/toys")
        with self.store.mu:
            if any(o["name"] == spec.name for o in self.store.objects.values()):
                raise Conflict(f"name {spec.name} taken", method="POST", path="/toys")
            oid = f"t{next(self.store.ids)}"
            self.store.objects[oid] = {**attrs.asdict(spec), "id": oid}
        return self._obs(oid)

    def update(self, ctx: Any, id: str, old: ToySpec, new: ToySpec) -> Observed[ToySpec, ToyOut]:
        self.store.count("update")
        if self.store.fail.get(new.name) == "update":
            raise Conflict("injected failure", method="PUT", path=f"/toys/{id}")
        if any(o["name"] == new.name and oid != id for oid, o in self.store.objects.items()):
            raise Conflict(f"name {new.name} taken", method="PUT", path=f"/toys/{id}")
        self.store.objects[id].update(name=new.name, size=new.size, tags=dict(new.tags))
        return self._obs(id)

    def delete(self, ctx: Any, id: str) -> None:
        self.store.count("delete")
        if id in self.store.fail_delete:
            raise Conflict("injected delete failure", method="DELETE", path=f"/toys/{id}")
        self.store.objects.pop(id, None)

    def find(self, ctx: Any, spec: ToySpec) -> Observed[ToySpec, ToyOut] | None:
        self.store.count("find")
        for oid, o in self.store.objects.items():
            if o["name"] == spec.name:
                return self._obs(oid)
        return None

    def adopt(self, ctx: Any, ref: str) -> Observed[ToySpec, ToyOut]:
        from datera_iac.errors import NotFound

        self.store.count("adopt")
        for oid, o in self.store.objects.items():
            if ref in (oid, o["name"]):
                return self._obs(oid)
        raise NotFound(f"no toy {ref}")


def install(store: ToyStore) -> EngineToy:
    k = EngineToy(store)
    for key in (k.name, k.token, k.tf_type):
        KINDS[key] = k
    return k


def uninstall() -> None:
    for key in (EngineToy.name, EngineToy.token, EngineToy.tf_type):
        KINDS.pop(key, None)


# ---- fixtures -----------------------------------------------------------------------------

import pytest

from datera_iac.engine.core import Workspace
from datera_iac.resources.base import Context


@pytest.fixture
def toy():
    """A ToyStore with the EngineToy kind registered for the test only."""
    store = ToyStore()
    install(store)
    try:
        yield store
    finally:
        uninstall()


@pytest.fixture
def toy_ws(toy, tmp_path):
    """A factory of Workspaces over a YAML text, sharing one toy store and state dir."""

    def make(text: str, **kw: Any) -> Workspace:
        f = tmp_path / "Pulumi.yaml"
        f.write_text(text)
        ctx = Context(client=None, config=None)  # type: ignore[arg-type]
        return Workspace(stack_file=f, ctx=ctx, **kw)

    make.store = toy  # type: ignore[attr-defined]
    return make


SIM_STACK = """\
name: simtest
runtime: yaml
config:
  size: {type: integer, default: 2}
resources:
  team:
    type: datera:index:Tenant
    properties:
      name: team-a
  gold:
    type: datera:index:VolumeType
    properties:
      name: gold
      replicaCount: 2
  v1:
    type: datera:index:Volume
    properties:
      name: vol-one
      size: ${size}
      tenant: ${team.id}
      volumeType: ${gold.name}
      extraSpecs: ${gold.extraSpecs}
  v2:
    type: datera:index:Volume
    properties:
      name: vol-two
      size: 1
      tenant: ${team.id}
  snap:
    type: datera:index:Snapshot
    properties:
      volumeId: ${v1.id}
outputs:
  v1: ${v1.id}
"""


def sim_writes(sim: Any) -> dict[str, int]:
    """Write requests (POST/PUT/DELETE, logins excepted) the simulator has served."""
    return {k: n for k, n in sim.counters().items()
            if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH") and "login" not in k}


@pytest.fixture
def sim_ws(sim, tmp_path, monkeypatch):
    """A factory of Workspaces on the per-test simulator (credentials via env, like users)."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    made: list[Workspace] = []

    def make(text: str = SIM_STACK, **kw: Any) -> Workspace:
        f = tmp_path / "Pulumi.yaml"
        f.write_text(text)
        ws = Workspace(stack_file=f, endpoint=sim.http_url, embedded=False, **kw)
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.close()


@pytest.fixture
def sim_stack() -> str:
    return SIM_STACK


@pytest.fixture
def dsp_client(sim):
    """A DspClient on the per-test simulator, for what a test does "behind the stack's back"."""
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    client = DspClient(DateraConfig.from_mapping(
        {"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"},
        use_env=False))
    yield client
    client.close()


@pytest.fixture
def writes(sim):
    """() -> the simulator's write-request counters (logins excepted)."""
    return lambda: sim_writes(sim)


# ---- a real PostgreSQL server for the shared state backend --------------------------------

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1 (initdb in a temp dir as ``nobody``,
    trust auth, fsync off); stopped by PID at the end of the session."""
    from tests.tools import require

    require("initdb", "postgres")
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    base = tempfile.mkdtemp(prefix="datera-iac-pg-")
    user = "nobody" if os.geteuid() == 0 else None
    if user:
        shutil.chown(base, user="nobody", group="nogroup")
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    os.mkdir(sock)
    if user:
        shutil.chown(sock, user="nobody", group="nogroup")
    subprocess.run([initdb, "-D", data, "-U", "iac", "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, user=user, cwd=base, timeout=120)
    port = _free_port()
    proc = subprocess.Popen(
        [postgres, "-D", data, "-h", "127.0.0.1", "-p", str(port), "-k", sock,
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        user=user, cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"postgresql://iac@127.0.0.1:{port}/postgres"
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"postgres did not start: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_url):
    """The server's URL with the datera-iac tables emptied before the test."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as c:
        for t in ("datera_iac_state", "datera_iac_journal", "datera_iac_lock"):
            c.execute(f"DROP TABLE IF EXISTS {t}")
    return postgres_url


@pytest.fixture
def dsp_env(monkeypatch, sim, tmp_path):
    """The simulator's credentials in the environment (no other DATERA_ variable) and
    ``tmp_path`` as the working directory; returns the simulator. A test module may
    define its own."""
    for k in list(os.environ):
        if k.startswith("DATERA_"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    monkeypatch.chdir(tmp_path)
    return sim
