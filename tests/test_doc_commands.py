"""Every shell block of README, docs/ and examples/ is run by a test: the ones a machine
without a DSP or the Pulumi CLI can run are run here as written (bash, a fresh directory,
no DATERA_* in the environment); each other one names the test that runs it or why it
cannot run in CI. A new block without an entry fails test_every_shell_block_is_accounted_for."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: (file, index of its shell block) -> who runs it
ELSEWHERE = {
    ("README.md", 0): "step 1: tests/engine/test_examples_cli.py::test_demo_stack_deploys_on_embedded_simulator "
                      "(`datera-iac up --yes` on the demo); step 2 is CI itself (tests/test_ci_run.py checks it)",
    ("docs/engine.md", 1): "needs a real DSP at 10.0.0.5 and a PostgreSQL host: the same command on the "
                           "simulator and a local PostgreSQL is tests/engine/test_pg_backend.py",
    ("docs/pulumi.md", 0): "tests/pulumi/test_cli_e2e.py::test_python_program_lifecycle (builds the archive and "
                           "installs it with pulumi plugin install --file); tests/pulumi/test_packaging.py",
    ("docs/pulumi.md", 1): "needs the Pulumi CLI: the same keys are read by tests/test_names.py "
                           "(every option's camelCase name)",
    ("docs/listing.md", 0): "tests/engine/test_docs_listing.py (the engine block, line by line)",
    ("docs/listing.md", 1): "tests/terraform/test_docs_listing_tf.py (the Terraform block)",
    ("docs/listing.md", 2): "tests/terraform/test_query_tf.py (the same commands against the "
                            "simulator; apply with -auto-approve)",
    ("docs/security.md", 0): "the fault report benchmark (minutes): its items are tests/fault/",
    ("examples/gitops/README.md", 0): "tests/engine/test_gitops_workflow.py",
    ("examples/terraform/README.md", 0): "tests/terraform/test_examples.py::"
                                         "test_terraform_test_after_apply_as_the_readme_says",
    ("datera_iac_tf/README.md", 0): "tests/terraform/test_install.py (mirror, dev-overrides) and "
                               "tests/terraform/test_sim_e2e.py (terraform init from the mirror)",
    ("datera_iac_tf/README.md", 1): "tests/terraform/test_schema_docs.py (datera_iac_tf.gen --check)",
    **{("docs/pulumi.md", i): "tests/pulumi/test_doc_sessions.py::test_session_runs_as_written (the setup "
                              "block, then each language's session, as written, against the simulator)"
       for i in range(3, 8)},
    ("docs/pulumi.md", 2): "tests/pulumi/test_generated.py (datera_iac.pulumi.gen --check)",
    ("datera_iac_tf/docs_index_intro.md", 0): "tests/terraform/test_install.py (dev-overrides) and "
                                         "tests/terraform/conftest.py (terraform with that config)",
    ("datera_iac_tf/docs_index_intro.md", 1): "tests/terraform/test_sim_e2e.py (mirror, terraform init, apply)",
}
RUN_HERE = {("docs/engine.md", 0), ("docs/engine.md", 2), ("docs/volume-types.md", 0)}


def shell_blocks() -> dict[tuple[str, int], str]:
    docs = [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md")), *sorted(ROOT.glob("examples/**/*.md")),
            *sorted(ROOT.glob("datera_iac_tf/*.md"))]
    out = {}
    for f in docs:
        blocks = re.findall(r"```(?:sh|console|bash|shell)\n(.*?)```", f.read_text(), re.S)
        for i, text in enumerate(blocks):
            out[(str(f.relative_to(ROOT)), i)] = text
    return out


def test_every_shell_block_is_accounted_for():
    found = set(shell_blocks())
    assert found == set(ELSEWHERE) | RUN_HERE, sorted(found ^ (set(ELSEWHERE) | RUN_HERE))


def _commands(block: str) -> list[tuple[str, list[str]]]:
    """(command, documented output lines) for a console block of `$ ` lines."""
    out: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
    return out


def _bash(cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATERA_")}
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_engine_quick_start_runs_as_written(tmp_path):
    """docs/engine.md's quick start in a directory holding the demo Pulumi.yaml (`pip
    install -e .` is what the test environment already did)."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    cmds = _commands(shell_blocks()[("docs/engine.md", 0)])
    assert [c for c, _ in cmds][0] == "pip install -e ."
    results = []
    for cmd, _ in cmds[1:]:
        if cmd.split("#")[0].strip() == "datera-iac up":
            cmd = "datera-iac up --yes"  # the doc's user answers the prompt on a terminal
        p = _bash(cmd.split("  #")[0], tmp_path)
        assert p.returncode == 0, (cmd, p.stdout, p.stderr)
        results.append(p.stdout)
    assert "Done in" in results[0]
    assert "No changes. The DSP matches the stack." in results[1]  # as the comment says
    assert '"create": 0' in results[2] and '"delete": 0' in results[2]
    assert "deleted" in results[3]


def test_volume_types_examples_print_what_the_doc_shows(tmp_path):
    for cmd, documented in _commands(shell_blocks()[("docs/volume-types.md", 0)]):
        p = _bash(cmd, tmp_path)
        assert p.returncode == 0, p.stderr
        assert p.stdout.rstrip("\n").splitlines() == documented, cmd


def test_engine_calls_session_prints_what_the_doc_shows(tmp_path):
    """docs/engine.md's `preview --show-calls` session, as written, in a directory holding
    the doc's calls.yaml: each command's output is the documented one (app_instance ids
    read as `<id>`)."""
    doc = (ROOT / "docs/engine.md").read_text()
    section = doc[doc.index("## The DSP calls a plan sends"):]
    (tmp_path / "calls.yaml").write_text(re.search(r"```yaml\n(.*?)```", section, re.S)[1])
    for cmd, documented in _commands(shell_blocks()[("docs/engine.md", 2)]):
        p = _bash(cmd, tmp_path)
        assert p.returncode == 0, (cmd, p.stdout, p.stderr)
        shown = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>",
                       p.stdout)
        assert shown.rstrip("\n").splitlines() == documented, cmd

