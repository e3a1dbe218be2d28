"""docs/pulumi.md's sessions, one per language (YAML, Python, TypeScript, Go), run as
written with the built Pulumi CLI against the simulator: each line in bash from a copy of
the repository, the environment and directory carried from line to line (so `export` and
`cd` work as in a terminal). The only input from outside is what the doc asks the reader
to set first: DATERA_ENDPOINT and DATERA_SAN_PASSWORD, here the simulator's.

Between lines the test checks what each line's comment claims on the DSP: `# creates`
(the stack's tenant and volume exist), `# no changes` (not one DSP write), `# grows` (the
volume has the new size and the same id), `# deletes` (the tenant is gone). These are also
the TypeScript and Go SDKs' end-to-end tests: a program on the generated SDK, run by our
language host under the real CLI: up, a no-op up, an update in place, destroy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pulumi.cli import ROOT, pulumi_bin
from tests.pulumi.test_cli_e2e import SAN_PASSWORD, client, volumes
from tests.tools import require

DOC = ROOT / "docs" / "pulumi.md"


@dataclass(frozen=True)
class Session:
    heading: str  # the "### <heading>" the block is under
    tenant: str   # the tenant the program makes
    volume: str   # the volume its `volumeSize` config sizes
    tools: tuple[str, ...] = ()


SESSIONS = {
    "yaml": Session("YAML", "demo", "demo-db"),
    "python": Session("Python", "apps", "database"),
    "typescript": Session("TypeScript", "web", "web-data", ("node", "npm")),
    "go": Session("Go", "ops", "ops-data", ("go",)),
}


def session_block(heading: str) -> str:
    """The first ```sh block under `### <heading>` of the "Sessions" section."""
    text = DOC.read_text()
    section = text.split("\n## Sessions", 1)[1].split("\n## ", 1)[0]
    part = section.split(f"\n### {heading}\n", 1)[1].split("\n### ", 1)[0]
    return re.search(r"```sh\n(.*?)```", part, re.S).group(1)


def setup_block() -> str:
    """The block every session starts with (before the first ### heading)."""
    section = DOC.read_text().split("\n## Sessions", 1)[1].split("\n### ", 1)[0]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def copy_repository(dst: Path) -> Path:
    """What the sessions touch: the demo Pulumi.yaml, examples/, sdk/, tools/."""
    dst.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", dst / "Pulumi.yaml")
    skip = shutil.ignore_patterns("node_modules", "bin", ".pulumi*", "Pulumi.*.yaml", "__pycache__")
    for d in ("examples", "sdk", "tools"):
        shutil.copytree(ROOT / d, dst / d, ignore=skip)
    return dst


class Terminal:
    """Runs lines one by one in bash, keeping the environment and directory between them."""

    def __init__(self, cwd: Path, env: dict[str, str], scratch: Path) -> None:
        self.cwd, self.env, self.scratch = cwd, env, scratch
        self.output: list[str] = []

    def run(self, line: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        envf, pwdf = self.scratch / "env", self.scratch / "pwd"
        script = f"set -eo pipefail\n{line}\nenv -0 > {envf}\npwd > {pwdf}\n"
        got = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, text=True,
                             capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        self.output += [got.stdout, got.stderr]
        assert got.returncode == 0, f"`{line}` failed ({got.returncode}):\n" \
                                    f"{got.stdout[-3000:]}\n{got.stderr[-3000:]}"
        self.env = dict(kv.split("=", 1) for kv in envf.read_text().split("\0") if "=" in kv)
        self.cwd = Path(pwdf.read_text().strip())
        return got


def writes(sim) -> dict[str, int]:
    """DSP requests that change something (a login, which every invoke's first DSP call
    makes, changes nothing)."""
    return {k: n for k, n in sim.counters().items()
            if k.split()[0] in ("POST", "PUT", "PATCH", "DELETE") and "/v2." in k
            and not k.endswith("/login")}


def _size(sim, tenant: str, name: str) -> int:
    return volumes(sim, f"/root/{tenant}")[name]["storage_instances"][0]["volumes"][0]["size"]


def _tenants(sim) -> list[str]:
    return [t["name"] for t in client(sim).list("/tenants", tenant="/root")]


@pytest.mark.parametrize("lang", list(SESSIONS))
def test_session_runs_as_written(lang, tmp_path, make_sim):
    s = SESSIONS[lang]
    if s.tools == ("go",):
        if not shutil.which("go"):
            pytest.fail("go not found: install the Go toolchain (>= 1.26)", pytrace=False)
    elif s.tools:
        require(*s.tools)
    pulumi_bin()  # fails with the build command when the CLI is not built
    sim = make_sim(users={"admin": SAN_PASSWORD})
    repo = copy_repository(tmp_path / "repo")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATERA_", "PULUMI_"))}
    env.update({
        # the doc asks the reader to set these two to their DSP
        "DATERA_ENDPOINT": sim.http_url, "DATERA_SAN_PASSWORD": SAN_PASSWORD,
        # a fresh home (~/.pulumi, the state), the machine's download caches kept
        "HOME": str(home),
        "PULUMI_HOME": str(home / ".pulumi"),  # Pulumi resolves ~ from the passwd entry
        # the CLI that pulumi_bin() found: without this, build.sh under the fresh HOME
        # would link the whole CLI again (~100 s on a loaded machine, 4 sessions)
        "DATERA_PULUMI_CACHE": os.environ.get("DATERA_PULUMI_CACHE")
        or str(Path.home() / ".cache" / "datera-iac" / "pulumi"),
        "GOPATH": os.environ.get("GOPATH") or str(Path.home() / "go"),
        "GOCACHE": os.environ.get("GOCACHE") or str(Path.home() / ".cache" / "go-build"),
        "npm_config_cache": os.environ.get("npm_config_cache")
        or str(Path.home() / ".cache" / "datera-iac" / "npm"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "NO_COLOR": "1",
        # this Python's console scripts (pulumi-resource-datera, python3) first
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    })
    term = Terminal(repo, env, tmp_path)
    lines = [ln for ln in (setup_block() + session_block(s.heading)).splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert any("# creates" in ln for ln in lines) and any("# deletes" in ln for ln in lines)
    size = None
    for line in lines:
        cmd, _, comment = line.partition("  #")
        before = writes(sim)
        if m := re.search(r"config set volumeSize (\d+)", cmd):
            size = int(m.group(1))
        term.run(cmd.strip())
        if "no changes" in comment:
            assert writes(sim) == before, f"{line}: the DSP was written to"
        elif "creates" in comment:
            assert s.volume in volumes(sim, f"/root/{s.tenant}"), line
            made = volumes(sim, f"/root/{s.tenant}")[s.volume]["id"]
        elif "grows" in comment:
            assert size and _size(sim, s.tenant, s.volume) == size, line
            assert volumes(sim, f"/root/{s.tenant}")[s.volume]["id"] == made, "replaced, not grown"
        elif "deletes" in comment:
            assert s.tenant not in _tenants(sim), line
    assert SAN_PASSWORD not in "\n".join(term.output), "the DSP password was printed"
    state = "\n".join(p.read_text(errors="replace") for p in home.rglob("*") if p.is_file())
    assert SAN_PASSWORD not in state, "the DSP password is in clear in the state"
