"""`python -m datera_iac_tf.install`: the two documented install modes write an executable
launcher where Terraform looks for it and print the matching CLI configuration."""

from __future__ import annotations

import os
import subprocess
import sys

from datera_iac_tf.install import EXECUTABLE, main, os_arch
from datera_iac_tf.provider import PROVIDER_VERSION


def test_mirror_layout_and_config(tmp_path, capsys):
    """The unpacked mirror layout and a filesystem_mirror block limited to our namespace."""
    assert main(["mirror", str(tmp_path / "m"), "--pythonpath", "/src"]) == 0
    out = capsys.readouterr().out
    exe = (tmp_path / "m" / "registry.terraform.io" / "datera" / "datera" / PROVIDER_VERSION
           / os_arch() / f"{EXECUTABLE}_v{PROVIDER_VERSION}")
    assert exe.is_file() and os.access(exe, os.X_OK)
    text = exe.read_text()
    assert text.startswith(f"#!{sys.executable} -S\n") and "sys.path.insert(0, '/src')" in text
    assert f'path    = "{tmp_path / "m"}"' in out
    assert 'include = ["registry.terraform.io/datera/*"]' in out and "direct {" in out


def test_dev_overrides_config(tmp_path, capsys):
    """dev_overrides names the directory holding terraform-provider-datera."""
    assert main(["dev-overrides", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "d" / EXECUTABLE).is_file()
    assert f'"registry.terraform.io/datera/datera" = "{tmp_path / "d"}"' in out


def test_launcher_outside_terraform_explains_itself(tmp_path):
    """Run by hand (no go-plugin cookie), the provider says what it is instead of hanging."""
    main(["dev-overrides", str(tmp_path / "d"), "--pythonpath", str(
        __import__("pathlib").Path(__file__).resolve().parents[2])])
    env = {k: v for k, v in os.environ.items() if k != "TF_PLUGIN_MAGIC_COOKIE"}
    p = subprocess.run([str(tmp_path / "d" / EXECUTABLE)], check=False, capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 1 and "Terraform provider plugin" in p.stderr


def test_the_distribution_installs_no_generic_top_level_package():
    """The wheel's top-level packages are datera_iac and datera_iac_tf: none
    named ``provider`` (issue 15; any other distribution could install one too, and the
    second install would overwrite the first), and the console script names the new one."""
    import tomllib
    from pathlib import Path

    from setuptools import find_packages

    repo = Path(__file__).resolve().parents[2]
    project = tomllib.loads((repo / "pyproject.toml").read_text())
    found = project["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(where=str(repo), include=found["include"],
                             exclude=found.get("exclude", ()))
    assert {p.split(".")[0] for p in packages} == {"datera_iac", "datera_iac_tf"}
    assert project["project"]["scripts"][EXECUTABLE] == "datera_iac_tf.main:main"
