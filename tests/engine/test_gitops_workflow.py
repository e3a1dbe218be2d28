"""examples/gitops as a user copies it (its README's commands) into a repository holding
stacks/Pulumi.yaml: every script the workflow runs exists there, and the preview, up and
nightly drift steps run as written (bash, the job's env) against the simulator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GITOPS = ROOT / "examples" / "gitops"


def _readme_sh() -> str:
    text = (GITOPS / "README.md").read_text()
    [block] = re.findall(r"```sh\n(.*?)```", text, re.S)
    return block


def _steps(workflow: dict, job: str) -> list[str]:
    return [s["run"] for s in workflow["jobs"][job]["steps"] if "run" in s
            and not s["run"].startswith("pip install")]


def test_workflow_runs_in_a_users_repository(sim, tmp_path):
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "examples/yaml/minimal.yaml", repo / "stacks/Pulumi.yaml")
    env = {**os.environ, "DATERA_IAC": str(ROOT)}
    subprocess.run(["bash", "-euc", _readme_sh()], cwd=repo, env=env, check=True, timeout=60)
    wf_text = (repo / ".github/workflows/datera-iac.yml").read_text()
    wf = yaml.safe_load(wf_text)
    # every script a step runs is a file of the user's repository
    for script in re.findall(r"python3? (\S+\.py)", wf_text):
        assert (repo / script).is_file(), f"the workflow runs {script}, absent from the repo"
    job_env = {k: v for k, v in wf["env"].items() if "${{" not in str(v)}
    run_env = {**os.environ, **{k: str(v) for k, v in job_env.items()},
               "DATERA_ENDPOINT": sim.http_url, "DATERA_SAN_LOGIN": "admin",
               "DATERA_SAN_PASSWORD": "password", "GITHUB_OUTPUT": str(tmp_path / "out"),
               "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    run_env.pop("DATERA_IAC_BACKEND", None)  # the secret: file state in the repo here

    def run(job: str) -> list[subprocess.CompletedProcess[str]]:
        return [subprocess.run(["bash", "-ec", s], cwd=repo, env=run_env, capture_output=True,
                               text=True, timeout=300, stdin=subprocess.DEVNULL)
                for s in _steps(wf, job)]

    [preview, fail_step] = run("preview")
    assert preview.returncode == 0, preview.stderr
    assert "rc=2" in (tmp_path / "out").read_text()  # changes present
    assert "scratch" in (repo / "comment.md").read_text()
    [up] = run("up")
    assert up.returncode == 0, up.stderr + up.stdout
    [drift] = run("drift")
    assert drift.returncode == 0, drift.stderr + drift.stdout
    assert "no drift" in (tmp_path / "summary").read_text()
