"""docs/listing.md: its Terraform block runs as written with the real Terraform: the
discovered HCL imports, apply adopts with 0 writes, the next plan is empty (exit 0)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.engine.estate import make_estate
from tests.engine.test_docs_listing import cli_env, sh_blocks

pytestmark = pytest.mark.terraform


def _writes(sim):
    return {k: n for k, n in sim.counters().items()
            if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH") and "login" not in k}


def test_terraform_block_runs_as_written(sim_tf, sim, dsp, terraform_bin, tmp_path):
    _, ctx = dsp
    make_estate(ctx)
    env = {**cli_env(sim, tmp_path / "bin"), **{k: v for k, v in sim_tf.env.items()
                                               if k.startswith("TF_") or k == "CHECKPOINT_DISABLE"}}
    env["PATH"] = f"{terraform_bin.parent}:{env['PATH']}"
    lines = sh_blocks()[1]
    assert lines[0].startswith("datera-iac import --discover") and len(lines) == 4
    before = None
    for line in lines:
        if line == "terraform apply -auto-approve":
            before = _writes(sim)
        p = subprocess.run(["bash", "-c", line], cwd=sim_tf.dir, env=env, capture_output=True,
                           text=True, timeout=300, check=False)
        assert p.returncode == 0, f"{line}\n{p.stdout}\n{p.stderr}"
        if line == "terraform plan":
            plain = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout)
            assert "Plan: 7 to import, 0 to add, 0 to change, 0 to destroy." in plain
        if line == "terraform apply -auto-approve":
            assert _writes(sim) == before
