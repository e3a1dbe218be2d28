"""`datera-iac --help` / `--version` start fast: they import no subcommand (the engine, the
simulator, the Pulumi SDK...). Times are measured by bench/bench_startup.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from datera_iac import __version__
from datera_iac.cli import COMMANDS, SUMMARIES, cli

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import sys, json\nfrom datera_iac.cli import main\nrc = main(sys.argv[1:])\n"
         "print(json.dumps(sorted(m for m in sys.modules if m.startswith('datera_iac') "
         "or m in ('pulumi', 'aiohttp', 'requests', 'attrs', 'yaml'))))")


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_no_subcommand(flag):
    p = subprocess.run([sys.executable, "-c", PROBE, flag], capture_output=True, text=True,
                       timeout=60, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    loaded = json.loads(p.stdout.strip().splitlines()[-1])
    assert set(loaded) <= {"datera_iac", "datera_iac.cli", "datera_iac.errors"}, loaded
    if flag == "--version":
        assert f"datera-iac, version {__version__}" in p.stdout


def test_summaries_match_each_commands_own_help():
    """The help listing shows what each command says of itself (no stale summary)."""
    assert set(SUMMARIES) == set(COMMANDS)
    ctx = click.Context(cli)
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None, name
        for limit in (30, 45, 70, 200):
            assert click.utils.make_default_short_help(SUMMARIES[name], limit) == \
                cmd.get_short_help_str(limit), (name, limit)


def test_version_is_the_package_version():
    from importlib.metadata import version

    assert __version__ == version("datera-iac")
