"""Discovery to code, Terraform side: `datera-iac import --discover --out main.tf` writes
HCL with one `import {}` block per object; the real Terraform's plan imports them with no
change, apply adopts them with 0 writes to the DSP, and the next plan is empty."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tfharness import REPO, sim_env

from tests.engine.estate import make_estate

pytestmark = pytest.mark.terraform


def sim_writes(sim):
    return {k: n for k, n in sim.counters().items()
            if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH") and "login" not in k}


def discover_to(sim, out, *args):
    env = {**os.environ, **sim_env(sim), "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "datera_iac.cli", "import", "--discover",
                        "--out", str(out), *args], capture_output=True, text=True, env=env,
                       cwd=out.parent, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    return p


def test_discover_hcl_round_trip(sim_tf, sim, dsp):
    _, ctx = dsp
    make_estate(ctx)
    sim_tf.dir.mkdir(parents=True, exist_ok=True)
    discover_to(sim, sim_tf.dir / "main.tf", "--tenant", "team-a")
    plan = sim_tf.plan_json()
    changes = plan["resource_changes"]
    assert len(changes) == 7
    for rc in changes:
        assert rc["change"]["actions"] == ["no-op"], rc["address"]
        assert rc["change"].get("importing", {}).get("id"), rc["address"]
    before = sim_writes(sim)
    out = sim_tf.apply()
    assert "7 imported, 0 added, 0 changed, 0 destroyed" in out.stdout
    assert sim_writes(sim) == before
    assert sim_tf.plan().returncode == 0
