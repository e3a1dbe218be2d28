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
from datera_iac.engine.backends import FileBackend

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


def _up(stack: Path, sim) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "datera_iac.cli", "up", "--yes", "-f", str(stack), "--parallel", "10"],
        env=_env(sim), cwd=stack.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _check_converged(sim, stack: Path, n: int) -> None:
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
    raw = (stack.parent / ".datera-iac" / "dev.json").read_text()
    json.loads(raw)  # the snapshot is valid JSON
    state = FileBackend(stack.parent / ".datera-iac", "dev").load()
    assert not state.pending and not state.deposed
    ids = {r.id.rsplit("/", 1)[1] for r in state.resources.values() if r.type.endswith("Volume")}
    orphans = {a["id"] for a in ais} - ids
    assert not orphans, f"orphans (on the DSP, not in state): {orphans}"
    assert len(ids) == n


def run_trials(sim, tmp_path: Path, trials: int, n: int = N, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    kills = []
    for t in range(trials):
        sim.reset()
        d = tmp_path / f"trial{t}"
        d.mkdir()
        stack = d / "Pulumi.yaml"
        stack.write_text(stack_text(n))
        proc = _up(stack, sim)
        # wait until the run has started applying, then kill at a random instant
        deadline = time.monotonic() + 30
        journal = d / ".datera-iac" / "dev.journal"
        while time.monotonic() < deadline and not (journal.exists() and journal.stat().st_size):
            if proc.poll() is not None:
                break
            time.sleep(0.01)
        delay = rng.uniform(0.0, 1.0)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills.append(delay)
        again = _up(stack, sim)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err.decode()[-2000:]
        _check_converged(sim, stack, n)
        # and the converged stack is stable: a preview plans nothing
        pv = subprocess.run([sys.executable, "-m", "datera_iac.cli", "preview", "-f", str(stack),
                             "--detailed-exitcode"], env=_env(sim), cwd=d, capture_output=True, timeout=120)
        assert pv.returncode == 0, pv.stdout.decode()[-2000:] + pv.stderr.decode()[-2000:]
    return kills


def test_sigkill_during_up_converges(sim, tmp_path):
    """2 trials: SIGKILL mid-apply, re-run, 0 twins, 0 orphans, valid state, empty re-plan."""
    run_trials(sim, tmp_path, trials=2)


@pytest.mark.slow
def test_sigkill_during_up_converges_10_trials(sim, tmp_path):
    """The long variant: 10 random kill instants."""
    run_trials(sim, tmp_path, trials=10, seed=11)
