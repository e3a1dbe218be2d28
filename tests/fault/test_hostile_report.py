"""bench/hostile_dsp.py, the "failing or hostile DSP" section of bench/fault_report.py, at
CI size: its cases run and judge their figures, and a case that overruns its hard time
limit is killed with everything it started and reported, never waited for."""

from __future__ import annotations

import sys
import time

import pytest

from tests.fault.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import hostile_dsp  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("case", ["malformed", "unreachable", "slow_drip"])
def test_a_hostile_dsp_case_measures_and_holds(case: str) -> None:
    held, line = hostile_dsp.run_case(case, trials=1, volumes=0)
    assert held, line
    assert "FAILED" not in line, line


def test_a_case_over_its_hard_limit_is_killed_and_reported() -> None:
    t = time.monotonic()
    held, line = hostile_dsp.run_case("unreachable", trials=1, volumes=0, limit=1.0)
    took = time.monotonic() - t
    assert not held and "no result within 1 s (killed)" in line, line
    assert took < 10, f"the report waited {took:.1f} s for a case limited to 1 s"


_PARENT = r"""
import subprocess, sys
big = bytearray(int(sys.argv[1]) << 20)
big[::4096] = b"\1" * len(big[::4096])          # resident, not just reserved
child = ("import resource, sys; from _peak import peak_rss_kb; "
         "grow = bytearray(int(sys.argv[1]) << 20); grow[::4096] = b'\1' * len(grow[::4096]); "
         "print(peak_rss_kb() >> 10, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10)")
sys.exit(subprocess.run([sys.executable, "-c", child, sys.argv[2]]).returncode)
"""


def test_peak_rss_is_the_measured_process_own() -> None:
    """bench/_peak.peak_rss_kb is the child's own peak: a child that holds 20 MB of a 150 MB
    parent reads well under 150 MB (ru_maxrss, which fault_report once used, reads the
    parent's 150 MB), and a child that grows to 150 MB reads at least that."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(REPO / "bench")}

    def run(parent_mb: int, child_mb: int) -> tuple[int, int]:
        p = subprocess.run([sys.executable, "-c", _PARENT, str(parent_mb), str(child_mb)],
                           env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        own, maxrss = map(int, p.stdout.split())
        return own, maxrss

    own, maxrss = run(150, 20)
    assert 20 <= own < 100 and maxrss >= 150, (own, maxrss)
    own, _ = run(0, 150)
    assert own >= 150, own


def test_fault_report_judges_hostile_stacks_against_the_issue_bounds() -> None:
    """fault_report FAILs a hostile-stack refusal over 200 MB or one whose whole process
    took 1 s or more (start-up included), and passes one under both."""
    import fault_report

    ok = {"case": "alias bomb", "refused": True, "seconds": 0.3, "process_seconds": 0.45,
          "peak_rss_mb": 41.0}
    assert fault_report.over_bounds("hostile_stacks", [ok]) == ""
    fat = {**ok, "peak_rss_mb": 445.8}
    slow = {**ok, "seconds": 0.6, "process_seconds": 1.2}
    assert fault_report.over_bounds("hostile_stacks", [fat]) == (
        "alias bomb peak RSS 445.8 MB (bound < 200 MB)")
    assert fault_report.over_bounds("hostile_stacks", [slow]) == (
        "alias bomb took 1.2 s (bound < 1 s)")
