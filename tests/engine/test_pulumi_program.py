"""The engine runs Pulumi Python programs (`import pulumi`, the datera_iac.pulumi classes,
pulumi.Config, pulumi.export, resource options) - examples/pulumi as written - and the
docstring examples of datera_iac.engine and engine.program run as programs."""

from __future__ import annotations

import inspect
import re
import shutil
import textwrap
from pathlib import Path

import pytest

import datera_iac.engine as engine_pkg
import datera_iac.engine.program as program_mod
from datera_iac.cli import main

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import pulumi
from datera_iac.pulumi import Snapshot, Tenant, Volume, VolumeType

config = pulumi.Config()
size = config.get_int("volumeSize") or 5
tenant = Tenant("apps", name="apps")
gold = VolumeType("gold", name="gold", replica_count=2)
db = Volume("db", name="database", size=size, tenant=tenant.id, volume_type=gold.name,
            extra_specs=gold.extra_specs, opts=pulumi.ResourceOptions(protect=True))
snap = Snapshot("db-snap", volume_id=db.id, opts=pulumi.ResourceOptions(depends_on=[gold]))
pulumi.export("db_id", db.id)
pulumi.export("label", pulumi.Output.concat("vol-", db.name))
"""


@pytest.fixture
def dsp_env(sim, monkeypatch, tmp_path):
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    monkeypatch.chdir(tmp_path)
    return sim


def test_examples_pulumi_previews_under_the_engine(dsp_env, tmp_path, capsys):
    """`datera-iac preview -f examples/pulumi/Pulumi.yaml` (runtime: python) plans the whole
    program, pulumi.export included."""
    shutil.copytree(ROOT / "examples/pulumi", tmp_path / "p")
    assert main(["preview", "-f", "p/Pulumi.yaml", "--endpoint", dsp_env.http_url]) == 0, \
        capsys.readouterr()
    out = capsys.readouterr().out
    assert "8 to create" in out
    for name in ("Tenant apps", "VolumeType gold", "Volume db", "Snapshot db-snap",
                 "NodeAttachment db-on-node", "db_iqn:", "gold_openstack_command:"):
        assert name in out


def test_pulumi_program_applies_with_references_config_and_options(dsp_env, tmp_path, capsys):
    (tmp_path / "prog.py").write_text(PROGRAM)
    url = dsp_env.http_url
    assert main(["up", "--yes", "-f", "prog.py", "--endpoint", url, "-c", "volumeSize=7"]) == 0, \
        capsys.readouterr()
    out = capsys.readouterr().out
    assert "4 created" in out
    assert re.search(r'db_id: "/root/apps/[0-9a-f-]{36}"', out)
    assert 'label: "vol-database"' in out
    assert main(["preview", "--detailed-exitcode", "-f", "prog.py", "--endpoint", url,
                 "-c", "volumeSize=7"]) == 0  # converged: the next plan is empty
    capsys.readouterr()
    assert main(["destroy", "--yes", "-f", "prog.py", "--endpoint", url]) == 1  # protect kept
    assert "is protected" in capsys.readouterr().out


def _docstring_program(module) -> str:
    doc = inspect.getdoc(module) or ""
    m = re.search(r"::\n\n((?:    .*\n|\n)+)", doc + "\n")
    assert m, module.__name__
    return textwrap.dedent(m.group(1))


@pytest.mark.parametrize("module", [engine_pkg, program_mod], ids=lambda m: m.__name__)
def test_docstring_examples_run(module, dsp_env, tmp_path, capsys):
    (tmp_path / "doc.py").write_text(_docstring_program(module))
    assert main(["up", "--yes", "-f", "doc.py", "--endpoint", dsp_env.http_url]) == 0, \
        capsys.readouterr()
    assert "Done in" in capsys.readouterr().out
