"""Where a run's time went: ``preview`` and ``up`` time their phases (the stack file, the
state, the refresh, the plan, the apply), keep them in ``Plan.timings`` and log each at
INFO, which ``-v`` shows."""

from __future__ import annotations

import logging
import textwrap

from datera_iac.cli import main
from datera_iac.engine.core import Workspace

STACK = textwrap.dedent("""\
    name: phases
    runtime: yaml
    resources:
      v:
        type: datera:index:Volume
        properties:
          name: phases-vol
          size: 1
    """)


def _workspace(sim, tmp_path) -> Workspace:
    f = tmp_path / "Pulumi.yaml"
    f.write_text(STACK)
    return Workspace(stack_file=f, endpoint=sim.http_url)


def test_preview_and_up_keep_their_phase_timings(dsp_env, tmp_path):
    ws = _workspace(dsp_env, tmp_path)
    plan = ws.preview()
    assert list(plan.timings) == ["stack file", "state", "refresh", "plan"]
    assert all(wall >= 0 and cpu >= 0 for wall, cpu in plan.timings.values())
    plan, result = _workspace(dsp_env, tmp_path).up(quiet=True)
    assert result is not None and result.ok
    assert list(plan.timings) == ["stack file", "state", "refresh", "plan", "apply"]
    # a plan with nothing to apply has no apply phase
    plan, _ = _workspace(dsp_env, tmp_path).up(quiet=True)
    assert list(plan.timings) == ["stack file", "state", "refresh", "plan"]


def test_timings_do_not_change_what_a_plan_equals(dsp_env, tmp_path):
    """Two previews of one stack are equal plans although their timings differ."""
    a, b = _workspace(dsp_env, tmp_path).preview(), _workspace(dsp_env, tmp_path).preview()
    assert a == b


def test_verbose_logs_each_phase(dsp_env, tmp_path, caplog):
    (tmp_path / "Pulumi.yaml").write_text(STACK)
    with caplog.at_level(logging.INFO, logger="datera_iac.engine"):
        assert main(["-v", "preview", "--endpoint", dsp_env.http_url]) == 0
    said = [r.getMessage() for r in caplog.records if r.name == "datera_iac.engine"]
    for phase in ("stack file", "state", "refresh", "plan"):
        assert any(m.startswith(f"{phase}: ") and " s (CPU " in m for m in said), (phase, said)
