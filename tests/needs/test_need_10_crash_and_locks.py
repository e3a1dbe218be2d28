"""user-needs §2.10: no manual state surgery after crashes; locks that clear themselves.

Acceptance: ``SIGKILL`` ``datera-iac up`` (a real process) while 50 volumes are being
created (after the DSP has seen 20 of the 50 POSTs), re-run ``up`` → it converges with 0
duplicate app_instances, 0 orphans, nothing pending, and the next plan is empty. A dead
holder's lock is released: the next ``up`` after the kill is not blocked, and
``state unlock`` reports the lock state instead of needing a hand-found lock id.
Reuses the crash harness of tests/engine/test_crash.py (the subprocess runner and the
convergence checker); more trials and the 200-volume variant are tests/fault/test_sigkill.py,
the PostgreSQL lease is tests/engine/test_pg_backend.py.
"""

from __future__ import annotations

import signal

from datera_iac.cli import main
from tests.engine.test_crash import _check_converged, _up_killed_after, stack_text

N = 50


def test_sigkill_mid_create_of_50_then_rerun_converges(sim, tmp_path, capsys, monkeypatch):
    stack = tmp_path / "Pulumi.yaml"
    stack.write_text(stack_text(N))
    # 20 ms per request: the 30 creates left after the 20th POST take ~60 ms, so the kill
    # lands mid-run however fast the machine serves them (without it the run could end
    # between the watcher seeing 20 POSTs and its SIGKILL)
    sim.set_faults(latency_ms=20)
    returncode, posts = _up_killed_after(stack, sim, None, 20)
    sim.set_faults(latency_ms=0)
    assert returncode == -signal.SIGKILL and posts < N, f"up ended before the kill ({posts})"
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    args = ["-f", str(stack), "--endpoint", sim.http_url]
    # the killed run held the stack lock: the re-run is not blocked (no unlock, no id)
    assert main(["up", *args, "--yes"]) == 0
    _check_converged(sim, stack, N, None)  # 0 twins, 0 orphans, state valid, nothing pending
    capsys.readouterr()
    assert main(["preview", *args, "--detailed-exitcode"]) == 0
    # and `state unlock` reports the lock state by itself (no lock id to dig up)
    assert main(["state", "unlock", *args]) in (0, None)
    assert "the stack was not locked" in capsys.readouterr().err
