"""`.ci/run` on a bare machine: its apt list covers every tool the tests run (the table in
tests/tools.py), each tool is really there after it, and a missing tool fails a test with
"install <package>" instead of skipping it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.tools import TOOLS, have, missing, require

CI_RUN = Path(__file__).resolve().parents[1] / ".ci" / "run"


def apt_packages() -> set[str]:
    """The packages of .ci/run's `apt-get install` command (continuation lines joined)."""
    text = CI_RUN.read_text().replace("\\\n", " ")
    [line] = [ln for ln in text.splitlines() if re.match(r"\s*apt-get install\b", ln)]
    words = shlex.split(line.split(">")[0])
    return {w for w in words[2:] if not w.startswith("-")}


def test_ci_run_installs_the_package_of_every_tool_the_tests_run():
    pkgs = apt_packages()
    assert "qemu-block-extra" in pkgs  # qemu-img's iscsi:// driver: only recommended
    assert not {TOOLS[t] for t in TOOLS} - pkgs, sorted({TOOLS[t] for t in TOOLS} - pkgs)


def test_every_tool_is_installed_here():
    """On a machine .ci/run prepared, nothing is missing (this names what is)."""
    require(*TOOLS)
    assert all(have(t) for t in TOOLS)


def test_a_missing_tool_fails_with_install_message():
    TOOLS["no-such-tool-xyz"] = "no-such-package"
    try:
        assert missing("tgtd", "no-such-tool-xyz") == (
            "no-such-tool-xyz not found: install no-such-package (apt-get install "
            "--no-install-recommends no-such-package; `bash .ci/run` does)")
        with pytest.raises(pytest.fail.Exception, match="install no-such-package"):
            require("no-such-tool-xyz")
    finally:
        del TOOLS["no-such-tool-xyz"]


def test_no_test_skips_for_a_missing_tool():
    """Tool checks go through tests/tools.py: no skipif/skip/importorskip on a which()."""
    root = Path(__file__).resolve().parent
    bad = []
    for f in root.rglob("*.py"):
        text = f.read_text()
        for pat in (r"skipif\([^)]*which", r"importorskip\(", r"pytest\.skip\([^)]*(install|not found)"):
            if re.search(pat, text):
                bad.append(f"{f.relative_to(root)}: {pat}")
    assert bad == []


def test_ci_runs_the_real_kernel_suite():
    """Every CI runs tests/vm: .ci/run builds (or reuses) the guest image before the tests,
    then runs the tests marked ``vm`` (tests/vm/conftest.py marks every test there) in a
    pytest run of one worker, so that one guest serves them (xdist_group is not honoured
    under pytest 9), and its status counts."""
    from _pytest.mark.expression import Expression

    text = CI_RUN.read_text()
    assert re.search(r"^python3 tests/vm/vmkit\.py build\b", text, re.M)
    runs = [shlex.split(ln) for ln in text.splitlines() if re.match(r"python3 -m pytest\b", ln)]

    def selects_vm(argv: list[str]) -> bool:
        opts = argv[3:]  # after "python3 -m pytest"
        expr = opts[opts.index("-m") + 1] if "-m" in opts else ""
        return not expr or Expression.compile(expr).evaluate(lambda m: m == "vm")

    [vm] = [argv for argv in runs if selects_vm(argv)]
    assert vm[vm.index("-n") + 1] == "1" and "tests/vm" in vm, vm
    assert not [a for a in vm if a.startswith(("-k", "--ignore", "--deselect"))], vm
    assert re.search(r'exit "\$vm_rc"', text)
    conftest = (CI_RUN.parents[1] / "tests" / "vm" / "conftest.py").read_text()
    assert "item.add_marker(pytest.mark.vm)" in conftest
