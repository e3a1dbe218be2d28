"""bench/scale_report.py runs end to end at a tiny size (issue 21): every section - the
simulator's pages, the engine's preview and up, Terraform's floor beside Terraform + datera,
the Pulumi CLI with a no-op provider beside datera - prints its row of the final table.
What the figures are is the bench's business at full size (docs/performance.md), not
asserted here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pulumi.cli import pulumi_bin

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.terraform
@pytest.mark.timeout(900)
def test_scale_report_runs_every_section_at_a_tiny_size():
    """Exit 0 (all met) or 1 (some missed, as on a loaded machine), never a traceback; the
    table has the rows of each section, Terraform's ratios from runs made in turn and the
    Pulumi ratios against the no-op provider."""
    pulumi_bin()  # fails with the build command when the CLI is missing
    got = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale_report.py"), "--volumes", "5,10",
         "--apply-volumes", "10", "--pages", "1000,1100", "--page-reps", "3",
         "--tf-volumes", "2", "--tf-plan-runs", "2", "--pulumi-volumes", "2",
         "--pulumi-preview-runs", "1"],
        capture_output=True, text=True, timeout=840, cwd=ROOT, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = got.stdout
    assert got.returncode in (0, 1), out[-3000:] + got.stderr[-3000:]
    assert "Traceback" not in got.stderr, got.stderr[-3000:]
    table = out.split("==== issue 21 'Done when', one run", 1)[1]
    for figure in ("sim page time 1,100 / 1,000", "preview 10: HTTP requests",
                   "preview 10 / 5: engine CPU", "up of 10 at parallelism 10",
                   "Terraform provider handshake", "terraform plan of 2 (no-op): DSP requests",
                   "terraform plan of 2 (no-op) / floor's plan, median of 2 pairs",
                   "terraform apply of 2 / floor's apply, back to back",
                   "terraform destroy of 2+1: requests per object + paging",
                   "Pulumi plugin start to port line", "pulumi up of 2 / no-op provider's",
                   "pulumi preview of 2 / no-op provider's"):
        assert figure in table, (figure, table)
    # the Terraform steps ran in turn: floor, datera, floor, datera ...
    steps = [line.split()[0] for line in out.splitlines()
             if line.startswith(("  floor ", "  terraform ")) and " requests, CPU " in line]
    assert steps == ["floor", "terraform"] * 4, steps
    # a destroy of 2 volumes + their tenant reads no volume by id: 2 writes each + paging
    assert "(5 writes, 0 reads by id;" in table, table
