"""Crash safety: ``datera-iac up`` of 200 volumes killed with SIGKILL at a random instant,
then re-run, converges with no twin and no orphan on the DSP and a valid state file.

The CI variant runs 2 trials; the slow variant (bench/, ``-m slow``) runs 10.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.engine.backends import FileBackend, open_backend
from datera_iac.engine.core import Workspace

N = 200


def stack_text(n: int) -> str:
    lines = ["name: crash", "runtime: yaml", "resources:", "  team:", "    type: datera:index:Tenant",
             "    properties:", "      name: crash"]
    for i in range(n):
        lines += [f"  v{i:03d}:", "    type: datera:index:Volume", "    properties:",
                  f"      name: crash-{i:03d}", "      size: 1", "      tenant: ${team.id}"]
    return "\n".join(lines) + "\n"


def _env(sim) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATERA_SAN_LOGIN="admin", DATERA_SAN_PASSWORD="password", DATERA_ENDPOINT=sim.http_url)
    env.pop("DATERA_SAN_IP", None)
    return env


def _up(stack: Path, sim, backend: str | None) -> subprocess.Popen[bytes]:
    extra = ["--backend", backend] if backend else []
    return subprocess.Popen(
        [sys.executable, "-m", "datera_iac.cli", "up", "--yes", "-f", str(stack), "--parallel", "10", *extra],
        env=_env(sim), cwd=stack.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _up_killed_after(stack: Path, sim, backend: str | None, posts: int, *, jitter: float = 0.0,
                     strict: bool = True, rng: random.Random | None = None) -> tuple[int | None, int]:
    """Run ``datera-iac up`` on ``stack`` and SIGKILL it once the simulator has served
    ``posts`` volume POSTs (or it ended by itself), after a random pause of up to ``jitter``
    seconds (so the kill lands anywhere: mid-request, mid-journal-write...). Returns (the
    process's return code, POSTs served by then). ``strict``: waiting more than 120 s for
    the POSTs is a test failure; else the kill comes at the deadline."""
    proc = _up(stack, sim, backend)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and sim.counters().get("POST /v2.2/app_instances", 0) < posts:
            if time.monotonic() > deadline:
                if strict:
                    raise AssertionError(f"timed out after 120s waiting for {posts} volume POSTs")
                break
            time.sleep(0.002)
        if jitter:
            time.sleep((rng or random).uniform(0, jitter))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return proc.returncode, sim.counters().get("POST /v2.2/app_instances", 0)


def _check_converged(sim, stack: Path, n: int, backend: str | None) -> None:
    client = DspClient(DateraConfig.from_mapping(
        {"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"}))
    try:
        ais = list(client.list("/app_instances", tenant="/root/crash"))
    finally:
        client.close()
    names = Counter(a["name"] for a in ais)
    twins = {k: c for k, c in names.items() if c > 1}
    assert not twins, f"twins on the DSP: {twins}"
    assert sorted(names) == [f"crash-{i:03d}" for i in range(n)]
    if backend:
        b = open_backend(backend, stack="dev", state_dir=stack.parent / ".datera-iac")
        try:
            state = b.load()
        finally:
            b.close()
    else:
        fb = open_backend(None, stack="dev", state_dir=stack.parent / ".datera-iac")
        assert isinstance(fb, FileBackend)
        json.loads(fb.path.read_text())  # the snapshot is valid JSON
        state = fb.load()
    assert not state.pending and not state.deposed
    ids = {r.id.rsplit("/", 1)[1] for r in state.resources.values() if r.type.endswith("Volume")}
    orphans = {a["id"] for a in ais} - ids
    assert not orphans, f"orphans (on the DSP, not in state): {orphans}"
    assert len(ids) == n


def run_trials(sim, tmp_path: Path, trials: int, n: int = N, seed: int = 7,
               backend: str | None = None, monkeypatch=None) -> list[int]:
    """Kill ``up`` at a random instant after it started applying, re-run it (in-process:
    the same code, without paying the interpreter start-up again), check convergence."""
    rng = random.Random(seed)
    kills = []
    for t in range(trials):
        sim.reset()
        if backend:
            import psycopg

            with psycopg.connect(backend, autocommit=True) as c:
                c.execute("DELETE FROM datera_iac_journal")
                c.execute("DELETE FROM datera_iac_state")
        d = tmp_path / f"trial{t}"
        d.mkdir()
        stack = d / "Pulumi.yaml"
        stack.write_text(stack_text(n))
        # kill at a random point of the apply: once a random number of volume POSTs has
        # been served (the engine may be mid-request, mid-journal-write, anywhere)
        target = rng.randint(1, n - 1)
        _, made = _up_killed_after(stack, sim, backend, target, jitter=0.01, strict=False, rng=rng)
        print(f"trial {t}: killed after {made} of {n} volume POSTs (target {target})")
        kills.append(made)
        ws = Workspace(stack_file=stack, endpoint=sim.http_url, embedded=False, backend_url=backend)
        try:
            plan, result = ws.up(quiet=True)
        finally:
            ws.close()
        assert not plan.errors and result is not None and result.ok, (plan.errors, result and result.failures)
        _check_converged(sim, stack, n, backend)
        ws = Workspace(stack_file=stack, endpoint=sim.http_url, embedded=False, backend_url=backend)
        try:
            assert not ws.preview().changes  # converged and stable
        finally:
            ws.close()
    return kills


def test_sigkill_during_up_converges(sim, tmp_path, monkeypatch):
    """2 trials: SIGKILL mid-apply, re-run, 0 twins, 0 orphans, valid state, empty re-plan."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    run_trials(sim, tmp_path, trials=2)


@pytest.mark.slow
def test_sigkill_during_up_converges_10_trials(sim, tmp_path, monkeypatch):
    """The long variant: 10 random kill instants."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    run_trials(sim, tmp_path, trials=10, seed=11)


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_during_up_converges_postgres(sim, tmp_path, monkeypatch, pg_url):
    """The same on the PostgreSQL backend (3 trials)."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    from datera_iac.engine.pgbackend import PostgresBackend

    PostgresBackend(pg_url, "dev").close()  # create the tables
    run_trials(sim, tmp_path, trials=3, seed=5, backend=pg_url)
