"""How the engine finds the plugin: the console script on PATH, and the install archive.

Each variant is started exactly as the engine starts a plugin executable (engine address
as the argument, port read from stdout) and answers GetPluginInfo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import grpc
import yaml

from datera_iac.pulumi.package import build_archive
from datera_iac.pulumi.provider import plugin_version
from datera_iac.pulumi.testing import Rpc, stop_plugin

ROOT = Path(__file__).resolve().parents[2]


def _handshake(argv: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.Popen([*argv, "127.0.0.1:1"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=cwd)
    try:
        port = proc.stdout.readline().decode().strip()
        assert port.isdigit(), f"no port handshake from {argv}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            return Rpc(channel).GetPluginInfo().version
    finally:
        stop_plugin(proc)


def test_console_script_on_path():
    """``pip install datera-iac`` puts ``pulumi-resource-datera`` on PATH; it serves."""
    exe = shutil.which("pulumi-resource-datera")
    assert exe, "pulumi-resource-datera is not on PATH: pip install -e . first"
    assert _handshake([exe]) == plugin_version()


def test_archive_for_plugin_install(tmp_path):
    """The archive holds one executable launcher named as the engine expects."""
    archive = build_archive(tmp_path / "dist")
    assert archive.name.startswith(f"pulumi-resource-datera-v{plugin_version()}-")
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["pulumi-resource-datera"]
        assert tar.getmember("pulumi-resource-datera").mode & 0o111
        tar.extractall(tmp_path / "plugin", filter="data")
    exe = tmp_path / "plugin" / "pulumi-resource-datera"
    assert os.access(exe, os.X_OK)
    assert _handshake([str(exe)]) == plugin_version()


def test_manifest_declares_the_python_runtime():
    """PulumiPlugin.yaml names the runtime a source-based plugin is run with."""
    manifest = yaml.safe_load((ROOT / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"


def test_source_based_plugin_directory_runs(tmp_path):
    """The language host runs a plugin directory with a ``__main__.py`` as
    ``python <directory> <engine address>``, from the stack's directory: it serves."""
    assert (ROOT / "requirements.txt").read_text().splitlines()[-1] == "-e ."
    # run from elsewhere: the directory argument alone must suffice
    assert _handshake([sys.executable, str(ROOT)], cwd=tmp_path) == plugin_version()


def test_cli_subcommands(tmp_path):
    """``datera-iac pulumi schema/gen --check/package`` work from the main CLI."""
    import json

    from click.testing import CliRunner

    from datera_iac.cli import cli
    from datera_iac.pulumi.gen import SCHEMA_PATH

    runner = CliRunner()
    out = runner.invoke(cli, ["pulumi", "schema"])
    assert out.exit_code == 0 and json.loads(out.output) == json.loads(SCHEMA_PATH.read_text())
    assert runner.invoke(cli, ["pulumi", "gen", "--check"]).exit_code == 0
    built = runner.invoke(cli, ["pulumi", "package", "--out", str(tmp_path)])
    assert built.exit_code == 0 and Path(built.output.splitlines()[0]).is_file()
