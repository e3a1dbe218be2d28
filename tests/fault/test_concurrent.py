"""Two ``datera-iac up`` runs on one stack at the same time, on the file backend and on the
PostgreSQL backend: exactly one applies, the other is refused before any DSP write with a
message naming the holder (its pid, host and command), and the DSP ends with no twin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fault.conftest import ADMIN, ADMIN_PASSWORD, census, twins_of, volume_stack

N = 20


def _up(stack: Path, sim, backend: str | None) -> subprocess.Popen[str]:
    env = {**os.environ, "DATERA_SAN_LOGIN": ADMIN, "DATERA_SAN_PASSWORD": ADMIN_PASSWORD,
           "DATERA_ENDPOINT": sim.http_url}
    env.pop("DATERA_SAN_IP", None)
    extra = ["--backend", backend] if backend else []
    return subprocess.Popen(
        [sys.executable, "-m", "datera_iac.cli", "up", "--yes", "-f", str(stack), "--no-color", *extra],
        cwd=stack.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _race(sim, tmp_path: Path, figure, backend: str | None, label: str) -> None:
    stack = tmp_path / "Pulumi.yaml"
    stack.write_text(volume_stack("race", N, tenant="race"))
    # Every create is answered 2 s after it arrives, so the run that takes the lock holds it
    # for at least three waves of creates (the tenant, then 20 volumes at parallelism 10):
    # 6 s or more after its plan. The other run, started at the same moment, meets the lock
    # unless its own start-up lags by all of that (a flat 150 ms on every request made the
    # whole apply last 1 s, and on a machine at load 10 the second run once started after
    # the first had finished: both exited 0).
    sim.set_faults(latency_ms=2000, only=r"^POST ")
    procs = [_up(stack, sim, backend), _up(stack, sim, backend)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=240))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        sim.set_faults(latency_ms=0, only=None)
    codes = [p.returncode for p in procs]
    winners = [i for i, c in enumerate(codes) if c == 0]
    assert len(winners) == 1, f"exit codes {codes}\n{outs}"
    w, loser = winners[0], 1 - winners[0]
    err = outs[loser][1]
    named = f"locked by pid {procs[w].pid}" in err
    names, _ = census(sim, "/root/race")
    figure("concurrent_runs", backend=label, applied=1, refused=int(codes[loser] != 0),
           holder_named=named, twins=len(twins_of(names)), volumes=sum(names.values()))
    assert named, f"the refusal does not name the holder (pid {procs[w].pid}):\n{err}"
    assert "up" in err and "Traceback" not in err
    assert password_free(outs), "a password reached the output"
    assert not twins_of(names) and sorted(names) == [f"race-{i:03d}" for i in range(N)]


def password_free(outs: list[tuple[str, str]]) -> bool:
    return all(ADMIN_PASSWORD not in o and ADMIN_PASSWORD not in e for o, e in outs)


def test_concurrent_up_file_backend(sim, faults_off, tmp_path, figure):
    _race(sim, tmp_path, figure, None, "file")


@pytest.mark.postgres
def test_concurrent_up_postgres_backend(sim, faults_off, tmp_path, figure, pg_url):
    _race(sim, tmp_path, figure, pg_url, "postgresql")
