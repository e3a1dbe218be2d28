"""The engine under a flaky DSP: a 503 storm, lost write responses and expiring session keys
during ``up`` of many volumes.

What is measured (and recorded as figures for bench/fault_report.py):
* 503 storm: 30 % of requests answered 503 for a window at the start of the apply; the run
  ends ok within the configured ``datera_503_timeout``, with 0 twins and 0 orphans.
* lost responses: 10 % of writes applied by the DSP and their answer dropped; 0 twins, every
  declared volume exists exactly once, nothing on the DSP outside the state.
* key expiry: every session key expired on a period during a slowed-down apply; 0 failures.

CI runs 30 volumes and short windows; the ``slow`` variants run the issue's sizes
(200 volumes, a 10 s storm, expiry every 5 s during a long apply).
"""

from __future__ import annotations

import time

import pytest

from tests.fault.conftest import Ticker, engine_verdict, engine_ws, volume_stack

RETRY = {"datera_503_interval": 0.1, "datera_503_timeout": 120}


def _expected(project: str, n: int) -> list[str]:
    return [f"{project}-{i:03d}" for i in range(n)]


def _storm(sim, tmp_path, figure, n: int, storm_s: float) -> None:
    project = "storm"
    ws = engine_ws(sim, tmp_path / "s", volume_stack(project, n, tenant=project), **RETRY)
    t0 = time.monotonic()
    sim.set_faults(fail_503_rate=0.3, seed=3)
    try:
        # the storm ends storm_s after the run began, whatever the run is doing then
        with Ticker(storm_s, lambda: sim.set_faults(fail_503_rate=0.0)):
            plan, result = ws.up(quiet=True)
    finally:
        sim.set_faults(fail_503_rate=0.0)
        ws.close()
    elapsed = time.monotonic() - t0
    answered_503 = sum(1 for r in sim.request_log() if r["status"] == 503)
    verdict = engine_verdict(sim, ws, f"/root/{project}", _expected(project, n))
    figure("503_storm", volumes=n, storm_s=storm_s, seconds=round(elapsed, 2),
           timeout_s=RETRY["datera_503_timeout"], answered_503=answered_503,
           ok=bool(result and result.ok), **verdict)
    assert not plan.errors and result is not None and result.ok, result and result.failures
    assert answered_503 > 0, "the storm did not happen"
    assert elapsed < RETRY["datera_503_timeout"]
    assert verdict == {"twins": 0, "orphans": 0, "missing": 0, "pending": 0}


def test_503_storm(sim, faults_off, tmp_path, figure, engine_env):
    """30 volumes, 30 % 503 for 2 s: ok within the 503 timeout, 0 twins, 0 orphans."""
    _storm(sim, tmp_path, figure, n=30, storm_s=2.0)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_503_storm_200(sim, faults_off, tmp_path, figure, engine_env):
    """The issue's size: 200 volumes, 30 % 503 for 10 s."""
    _storm(sim, tmp_path, figure, n=200, storm_s=10.0)


def _lost(sim, tmp_path, figure, n: int) -> None:
    project = "lost"
    ws = engine_ws(sim, tmp_path / "l", volume_stack(project, n, tenant=project), **RETRY)
    sim.set_faults(drop_after_write_rate=0.1, seed=5)
    try:
        plan, result = ws.up(quiet=True)
    finally:
        sim.set_faults(drop_after_write_rate=0.0)
    dropped = sim.request_log()
    try:
        verdict = engine_verdict(sim, ws, f"/root/{project}", _expected(project, n))
        again = ws.preview()
    finally:
        ws.close()
    writes = sum(1 for r in dropped if r["method"] in ("POST", "PUT", "DELETE") and "login" not in r["path"])
    lost = sum(1 for r in dropped if r.get("dropped") or r["status"] in (0, None, 599))
    figure("lost_responses", volumes=n, drop_rate=0.1, writes=writes, dropped=lost,
           ok=bool(result and result.ok), replan_changes=len(again.changes), **verdict)
    assert not plan.errors and result is not None and result.ok, result and result.failures
    assert verdict == {"twins": 0, "orphans": 0, "missing": 0, "pending": 0}
    assert not again.changes


def test_lost_responses(sim, faults_off, tmp_path, figure, engine_env):
    """30 volumes, 10 % of writes applied and their response dropped: 0 twins, each once."""
    _lost(sim, tmp_path, figure, n=30)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_lost_responses_200(sim, faults_off, tmp_path, figure, engine_env):
    _lost(sim, tmp_path, figure, n=200)


def _expiry(sim, tmp_path, figure, n: int, every: float, latency_ms: float, parallel: int) -> None:
    project = "expiry"
    ws = engine_ws(sim, tmp_path / "e", volume_stack(project, n, tenant=project), **RETRY)
    ws.parallel = parallel
    sim.set_faults(latency_ms=latency_ms)
    t0 = time.monotonic()
    try:
        with Ticker(every, lambda: sim.set_faults(expire_keys=True)) as ticker:
            plan, result = ws.up(quiet=True)
    finally:
        sim.set_faults(latency_ms=0)
        ws.close()
    elapsed = time.monotonic() - t0
    log = sim.request_log()
    logins = sum(1 for r in log if "login" in r["path"] and r["method"] == "PUT")
    unauthorized = sum(1 for r in log if r["status"] == 401)
    failures = len(result.failures) if result is not None else -1
    verdict = engine_verdict(sim, ws, f"/root/{project}", _expected(project, n))
    figure("key_expiry", volumes=n, expire_every_s=every, seconds=round(elapsed, 2),
           expiries=ticker.ticks, logins=logins, answered_401=unauthorized, failures=failures,
           **verdict)
    assert not plan.errors and result is not None and result.ok, result and result.failures
    assert ticker.ticks >= 2, "the keys did not expire during the apply (apply too short)"
    assert unauthorized >= 1 and logins >= 2
    assert verdict == {"twins": 0, "orphans": 0, "missing": 0, "pending": 0}


def test_key_expiry(sim, faults_off, tmp_path, figure, engine_env):
    """Keys expired every 1 s during a 30-volume apply slowed to a few seconds (100 ms per
    request, 2 at a time): 0 failures. (The period stays well above a login round trip: a key
    that dies between a re-login and its retry is not what a DSP does.)"""
    _expiry(sim, tmp_path, figure, n=30, every=1.0, latency_ms=100, parallel=2)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_key_expiry_every_5s(sim, faults_off, tmp_path, figure, engine_env):
    """Keys expired every 5 s during a ~30 s apply of 200 volumes."""
    _expiry(sim, tmp_path, figure, n=200, every=5.0, latency_ms=1000, parallel=10)
