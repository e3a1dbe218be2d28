"""The demo stack on the embedded simulator, the examples, Python programs, and the CLI surface."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datera_iac.cli import main
from datera_iac.engine.model import StackError
from datera_iac.engine.program import load_program

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_dsp_env(monkeypatch):
    """No DSP configured anywhere: the engine must fall back to the bundled simulator."""
    for k in list(os.environ):
        if k.startswith("DATERA_"):
            monkeypatch.delenv(k, raising=False)


def test_demo_stack_deploys_on_embedded_simulator(tmp_path, monkeypatch, capsys, no_dsp_env):
    """`datera-iac up` on a fresh copy of the repo's Pulumi.yaml deploys the demo on the
    bundled simulator (data kept beside the state); a second up reports no changes."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["up", "--yes"]) == 0
    out = capsys.readouterr()
    assert "7 to create" in out.out and "bundled simulator" in out.err
    assert "openstack volume type create datera_2way" in out.out
    assert "DF:write_iops_max=5000" in out.out
    assert (tmp_path / ".datera-iac" / "dsp-sim").is_dir()
    assert main(["up", "--yes"]) == 0
    assert "No changes" in capsys.readouterr().out
    assert main(["preview", "--detailed-exitcode"]) == 0
    capsys.readouterr()
    assert main(["state", "list"]) == 0
    listed = capsys.readouterr().out
    for name in ("tenant", "datera_2way", "datera_iops", "db", "logs", "dbSnapshot", "dbClone"):
        assert f"{name}\t" in listed


@pytest.mark.parametrize("example, args", [
    ("examples/python", []),
    ("examples/yaml", ["-f", "Pulumi.yaml"]),
    ("examples/yaml", ["-f", "Pulumi.yaml", "-s", "prod"]),
    ("examples/yaml", ["-f", "minimal.yaml"]),
])
def test_examples_apply_then_plan_clean(sim, tmp_path, monkeypatch, capsys, example, args):
    """Every example applies and then plans no change."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    shutil.copytree(ROOT / example, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    assert main(["up", "--yes", "--endpoint", sim.http_url, *args]) == 0, capsys.readouterr()
    assert main(["preview", "--detailed-exitcode", "--endpoint", sim.http_url, *args]) == 0
    capsys.readouterr()


def test_prod_stack_config_file_is_read(sim, tmp_path, monkeypatch, capsys):
    """Pulumi.<stack>.yaml supplies the stack's config (-s prod -> dbSize 200)."""
    shutil.copytree(ROOT / "examples/yaml", tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    assert main(["preview", "--json", "-s", "prod", "--endpoint", sim.http_url]) == 0
    plan = json.loads(capsys.readouterr().out)
    db = next(a for a in plan["actions"] if a["name"] == "db")
    assert next(c for c in db["changes"] if c["field"] == "size")["new"] == 200
    assert next(a for a in plan["actions"] if a["name"] == "tenant")["changes"][0]["new"] == "shop-prod"


def test_drift_report_names_attributes(sim, tmp_path, monkeypatch, capsys):
    """The GitOps nightly drift check (as examples/gitops runs it: --refresh-only
    --refresh=full) reports the drifted object and attributes, an out-of-band volume
    metadata edit included."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    shutil.copy(ROOT / "examples/yaml/minimal.yaml", tmp_path / "Pulumi.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["up", "--yes", "--endpoint", sim.http_url]) == 0
    from datera_iac.engine.core import Workspace

    st = Workspace(stack_file=tmp_path / "Pulumi.yaml").load_state()
    tenant, ai = st.resources["scratch"].id.rsplit("/", 1)
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    c = DspClient(DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                             "san_password": "password"}))
    c.put(f"/app_instances/{ai}", {"name": "scratch-renamed"}, tenant=tenant)
    c.put(f"/app_instances/{ai}/metadata", {"owner": "someone-else"}, tenant=tenant)
    c.close()
    capsys.readouterr()
    assert main(["preview", "--refresh-only", "--refresh=full", "--json", "--detailed-exitcode",
                 "--endpoint", sim.http_url]) == 2
    (tmp_path / "drift.json").write_text(capsys.readouterr().out)
    r = subprocess.run([sys.executable, str(ROOT / "examples/gitops/drift_report.py"), "drift.json"],
                       capture_output=True, text=True, check=True)
    assert "`scratch`" in r.stdout and "`name`" in r.stdout and "scratch-renamed" in r.stdout
    assert "`metadata`" in r.stdout and "someone-else" in r.stdout


def test_program_errors_point_at_the_program_line(tmp_path):
    """A bad property in a Python program is reported with the program's file and line."""
    prog = tmp_path / "prog.py"
    prog.write_text("from datera_iac import engine\n\nengine.Volume('v', name='vol-a', size=1)\n"
                    "engine.Volume('w', name='vol-b', sise=1)\n")
    with pytest.raises(StackError) as e:
        load_program(prog)
    assert str(e.value).startswith(f"{prog}:4:") and "unknown property 'sise'" in str(e.value)
    prog.write_text("from datera_iac import engine\nengine.Volume('v', name='vol-a', size=0)\n")
    with pytest.raises(StackError) as e:
        load_program(prog)
    assert f"{prog}:2:" in str(e.value) and "size" in str(e.value)


def test_program_refs_and_outputs(toy, tmp_path):
    """Attribute access gives references that order the graph and feed outputs."""
    prog = tmp_path / "prog.py"
    prog.write_text(
        "from datera_iac import engine\n"
        "a = engine.EngineToy('a', name='alpha')\n"
        "b = engine.EngineToy('b', name='beta', parent_id=a.id, tags={'src': a.serial})\n"
        "engine.export('ids', [a.id, b.id])\n")
    st = load_program(prog)
    assert st.resources["b"].dependencies() == {"a"}
    assert str(st.outputs["ids"][0]) == "${a.id}"


def test_every_command_has_help_with_examples(capsys):
    """--help works everywhere and shows examples."""
    for cmd in (["preview"], ["up"], ["refresh"], ["destroy"], ["import"], ["state"]):
        assert main([*cmd, "--help"]) == 0
        assert "Examples" in capsys.readouterr().out, cmd
    for sub in ("list", "show", "rm", "unlock"):
        assert main(["state", sub, "--help"]) == 0
