"""The source-based install of docs/pulumi.md (Install, 3.): a checkout with PulumiPlugin.yaml
named by `plugins: providers: [{name: datera, path: ...}]` in a stack's Pulumi.yaml. The
real CLI runs it through the Python language host (RunPlugin) with the checkout's `.venv`;
no ambient or installed plugin can stand in (PULUMI_IGNORE_AMBIENT_PLUGINS, empty plugin
cache). Without the `.venv` the engine says so instead of falling back."""

from __future__ import annotations

import shutil
import subprocess
import sys

import yaml

from tests.pulumi.cli import ROOT, PulumiCli
from tests.pulumi.test_cli_e2e import SAN_PASSWORD, client


def test_pulumiplugin_yaml_checkout_serves_a_stack(tmp_path, make_sim):
    sim = make_sim(users={"admin": SAN_PASSWORD})
    src = tmp_path / "datera-iac"
    src.mkdir()
    for f in ("PulumiPlugin.yaml", "__main__.py", "requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / f, src / f)
    shutil.copytree(ROOT / "datera_iac", src / "datera_iac",
                    ignore=shutil.ignore_patterns("__pycache__"))
    prog = tmp_path / "stack"
    prog.mkdir()
    (prog / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": "from-source", "runtime": "yaml",
        "plugins": {"providers": [{"name": "datera", "path": str(src)}]},
        "resources": {"t": {"type": "datera:index:Tenant", "properties": {"name": "fromsource"}}},
    }))
    cli = PulumiCli(tmp_path, env={"PULUMI_IGNORE_AMBIENT_PLUGINS": "true"})
    cli.env.pop("PYTHONPATH", None)  # the checkout alone (run as `python <dir>`)
    cli.run("stack", "init", "dev", cwd=prog)
    cli.config("datera:endpoint", sim.http_url, cwd=prog)
    cli.config("datera:sanPassword", SAN_PASSWORD, secret=True, cwd=prog)

    missing = cli.run("preview", cwd=prog, check=False)
    assert missing.returncode != 0
    assert f"{src}/.venv/bin/python: no such file or directory" in missing.stdout + missing.stderr

    # the venv the manifest names; --system-site-packages: this Python's dependencies
    # (a user runs `.venv/bin/pip install -r requirements.txt`, which needs the network)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(src / ".venv")],
                   check=True)
    cli.up(prog)
    assert "fromsource" in [t["name"] for t in client(sim).list("/tenants", tenant="/root")]
    cli.events("destroy", "--yes", "--skip-preview", cwd=prog)
    assert "fromsource" not in [t["name"] for t in client(sim).list("/tenants", tenant="/root")]
    assert not (cli.home / "plugins").exists() or not any((cli.home / "plugins").iterdir())
