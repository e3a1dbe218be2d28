"""docs/listing.md: its engine command block runs as written, line by line, against a
simulator holding the estate the page describes; the discovered stack adopts it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from datera_iac.resources.manage import ALREADY_OURS
from tests.engine.estate import make_estate

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "listing.md"


def sh_blocks() -> list[list[str]]:
    """The ```sh blocks of the page, as lists of command lines."""
    return [[ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]
            for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)]


def cli_env(sim, bindir: Path) -> dict[str, str]:
    """``datera-iac`` on PATH running this tree, connected to ``sim`` like a user's shell."""
    bindir.mkdir(parents=True, exist_ok=True)
    exe = bindir / "datera-iac"
    exe.write_text(f"#!{sys.executable}\nimport sys\nfrom datera_iac.cli import main\n"
                   "sys.exit(main())\n")
    exe.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATERA_")}
    return {**env, "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": str(REPO), "DATERA_ENDPOINT": sim.http_url,
            "DATERA_SAN_LOGIN": "admin", "DATERA_SAN_PASSWORD": "password"}


@pytest.fixture
def dsp_ctx(sim):
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient
    from datera_iac.resources.base import Context

    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                     "san_password": "password"}, use_env=False)
    client = DspClient(cfg)
    yield Context(client=client, config=cfg)
    client.close()


def test_engine_block_runs_as_written(sim, dsp_ctx, tmp_path):
    make_estate(dsp_ctx)
    env = cli_env(sim, tmp_path / "bin")
    work = tmp_path / "work"
    work.mkdir()
    lines = sh_blocks()[0]
    assert lines[0] == "datera-iac ls tenants --table" and len(lines) == 12
    out = {}
    for line in lines:
        p = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True,
                           text=True, timeout=120, check=False)
        assert p.returncode == 0, f"{line}\n{p.stdout}\n{p.stderr}"
        assert "Traceback" not in p.stderr, line
        out[line] = p.stdout
    assert "/root/team-a" in out["datera-iac ls tenants --table"]
    gold = json.loads(out["datera-iac ls volumes --tenant team-a --volume-type gold --json"])
    assert [r["name"] for r in gold] == ["db-1"]
    assert out["datera-iac import --discover --tenant team-a --out adopted/Pulumi.yaml"] == (
        "wrote adopted/Pulumi.yaml: 1 Tenant, 1 VolumeType, 3 Volume, 2 Snapshot\n")
    assert "to import" in out["datera-iac preview -f adopted/Pulumi.yaml"]
    assert "No changes" in out["datera-iac preview -f adopted/Pulumi.yaml --detailed-exitcode"]
    final = json.loads(out[lines[-1]])
    reasons = {r["name"]: r["reason_not_safe"] for r in final}
    assert reasons["db-1"] == reasons["web-1"] == ALREADY_OURS
