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
