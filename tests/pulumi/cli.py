"""Running the real Pulumi CLI (built by tools/pulumi/build.sh) against the simulator.

``PulumiCli`` runs ``pulumi`` with a private PULUMI_HOME, a local file backend, a
passphrase secrets provider and no plugin downloads; every command's output is kept so a
test can check that no secret was ever printed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "pulumi" / "build.sh"
PASSPHRASE = "correct horse battery staple"


def pulumi_bin() -> Path:
    """The directory holding the built CLI and language hosts; FAILS (never skips) with
    the command that builds them when they are missing."""
    got = subprocess.run(["bash", str(BUILD), "--where"], capture_output=True, text=True)
    where = Path(got.stdout.strip())
    if got.returncode != 0:
        pytest.fail(f"the Pulumi CLI is not built ({where} is incomplete): install Go and run "
                    f"`bash {BUILD.relative_to(ROOT)}` (cold build: tens of minutes on 2 cores; "
                    ".ci/run does it and caches the result under ~/.cache/datera-iac/pulumi)")
    return where


class PulumiCli:
    def __init__(self, workdir: Path, env: Mapping[str, str] | None = None) -> None:
        self.bin = pulumi_bin()
        self.workdir = workdir
        self.home = workdir / ".pulumi-home"
        self.state = workdir / ".pulumi-state"
        self.home.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)
        scripts = Path(sys.executable).parent
        self.env = {
            **os.environ,
            # the built CLI and hosts first; then this Python's console scripts
            # (pulumi-resource-datera, the plugin installed "on PATH")
            "PATH": os.pathsep.join([str(self.bin), str(scripts), os.environ.get("PATH", "")]),
            "PULUMI_HOME": str(self.home),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            "NO_COLOR": "1",
            **(env or {}),
        }
        self.env.pop("PULUMI_ACCESS_TOKEN", None)
        self.outputs: list[str] = []
        self.run("login", f"file://{self.state}")

    def run(self, *args: str, cwd: Path | None = None, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        got = subprocess.run([str(self.bin / "pulumi"), *args, "--non-interactive"],
                             cwd=cwd or self.workdir, env=self.env, capture_output=True,
                             text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        self.outputs += [got.stdout, got.stderr]
        if check and got.returncode != 0:
            errors = [line for line in got.stdout.splitlines() if '"severity":"error"' in line]
            try:  # preview --json: one document with its diagnostics
                errors += [d.get("message", "") for d in json.loads(got.stdout).get(
                    "diagnostics", []) if d.get("severity") == "error"]
            except ValueError:
                pass
            raise AssertionError(f"pulumi {' '.join(args)} failed ({got.returncode}):\n"
                                 + "\n".join(errors[-5:]) + "\n"
                                 f"{got.stdout[-3000:]}\n{got.stderr[-3000:]}")
        return got

    def json(self, *args: str, cwd: Path | None = None) -> Any:
        return json.loads(self.run(*args, "--json", cwd=cwd).stdout)

    def preview(self, cwd: Path | None = None, *extra: str) -> dict[str, Any]:
        """``pulumi preview --json``: {"steps": [...], "changeSummary": {...}}."""
        return self.json("preview", *extra, cwd=cwd)

    def events(self, *args: str, cwd: Path | None = None) -> dict[str, Any]:
        """A command whose ``--json`` output is an event stream (up, refresh, destroy):
        {"changeSummary": the summary event's resource changes, "events": [...]}."""
        out = self.run(*args, "--json", cwd=cwd).stdout
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        summary = next(e["summaryEvent"] for e in reversed(events) if "summaryEvent" in e)
        return {"changeSummary": summary.get("resourceChanges") or {}, "events": events}

    def up(self, cwd: Path | None = None, *extra: str) -> dict[str, Any]:
        return self.events("up", "--yes", "--skip-preview", *extra, cwd=cwd)

    def config(self, key: str, value: str, *, secret: bool = False,
               cwd: Path | None = None) -> None:
        self.run("config", "set", *(["--secret"] if secret else []), key, value, cwd=cwd)

    def export(self, cwd: Path | None = None) -> dict[str, Any]:
        return json.loads(self.run("stack", "export", cwd=cwd).stdout)

    def all_output(self) -> str:
        return "\n".join(self.outputs)


def changes(summary: Mapping[str, Any]) -> dict[str, int]:
    """A change summary without the unchanged count."""
    return {k: v for k, v in (summary.get("changeSummary") or summary).items()
            if k != "same" and v}


def ops(preview: Mapping[str, Any]) -> dict[str, str]:
    """resource name -> operation of a ``preview --json`` (resources of the datera package)."""
    out = {}
    for step in preview.get("steps") or []:
        urn = step.get("urn", "")
        if "::datera:index:" in urn:
            out[urn.rsplit("::", 1)[-1]] = step["op"]
    return out


def copy_program(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.is_file():
            shutil.copy(item, dst / item.name)
    return dst
