"""Stack files built to exhaust memory: a YAML alias bomb, variables that double each other,
nesting deeper than libyaml's composer survives. Each is refused by ``datera-iac preview``
with one located error (file:line, the limit, the variable that raises it), in a process
limited to 1 GB of address space: before the limits the bomb took 7 GB and the doubling
file 23.5 GB, so the same runs ended in MemoryError tracebacks (or a C stack overflow).

The figures (seconds and peak RSS of each refusal) are printed by bench/fault_report.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# 9 x 9 lists, 9 levels: 387 million strings once expanded, 514 bytes on disk
_BOMB_HEAD = "name: bomb\nruntime: yaml\nvariables:\n  lol: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
BOMB = _BOMB_HEAD + "".join(
    f"  l{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
) + "resources:\n  t:\n    type: datera:index:Tenant\n    properties: {name: x}\n"

DOUBLING = "name: dbl\nruntime: yaml\nvariables:\n  v0: \"ab\"\n" + "".join(
    f'  v{i}: "${{v{i - 1}}}${{v{i - 1}}}"\n' for i in range(1, 41)
) + "resources:\n  t:\n    type: datera:index:Tenant\n    properties:\n      name: \"${v40}\"\n"

DEEP = "name: deep\nruntime: yaml\nvariables:\n  v: " + "[" * 200_000 + "]" * 200_000 + "\nresources: {}\n"

REPO = Path(__file__).resolve().parents[2]

#: runs the CLI and prints its time and its own peak RSS (VmHWM, see bench/_peak.py: not
#: ru_maxrss, which carries pytest's peak into this child); 1 GB of address space at most
_DRIVER = f"""
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
sys.path.insert(0, {str(REPO / "bench")!r})
from _peak import peak_rss_kb
from datera_iac.cli import main
t0 = time.monotonic()
rc = main(sys.argv[1:])
print("SECONDS", round(time.monotonic() - t0, 3), file=sys.stderr)
print("RSS_KB", peak_rss_kb(), file=sys.stderr)
sys.exit(rc)
"""

CASES = {
    "alias bomb": (BOMB, 9, "aliases expand to more than", "DATERA_IAC_YAML_MAX_ALIAS_NODES"),
    "doubling variables": (DOUBLING, 24, "an interpolated string would be", "DATERA_IAC_MAX_STRING"),
    "deep nesting": (DEEP, 4, "nesting deeper than 256 levels", "DATERA_IAC_YAML_MAX_DEPTH"),
}


def run_cli(stack: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, **(env or {}), "DATERA_ENDPOINT": "http://127.0.0.1:9"}  # never contacted
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", _DRIVER, *args, "-f", str(stack), "--no-color"],
                       cwd=stack.parent, env=env, capture_output=True, text=True, timeout=120)
    return p, time.monotonic() - t0


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_stack_refused_with_located_error(tmp_path, figure, case):
    """The stack is refused with one line naming the file, the line, the limit crossed and
    the environment variable that raises it; no traceback, and the process stays small."""
    text, line, what, var = CASES[case]
    if case == "alias bomb":
        assert len(text.encode()) <= 600, len(text.encode())
    stack = tmp_path / "Pulumi.yaml"
    stack.write_text(text)
    p, seconds = run_cli(stack, "preview")
    rss_kb = int(p.stderr.rsplit("RSS_KB", 1)[1]) if "RSS_KB" in p.stderr else -1
    in_cli = float(p.stderr.rsplit("SECONDS", 1)[1].split()[0]) if "SECONDS" in p.stderr else -1.0
    figure("hostile_stacks", case=case, bytes=len(text.encode()), seconds=in_cli,
           process_seconds=round(seconds, 2),
           peak_rss_mb=round(rss_kb / 1024, 1), refused=p.returncode != 0 and what in p.stderr)
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    err = p.stderr.rsplit("SECONDS", 1)[0]
    assert "Traceback" not in err, err[-2000:]
    assert f"{stack}:{line}:" in err and what in err and var in err, err[-2000:]


def test_limits_can_be_raised_for_a_legitimate_stack(tmp_path):
    """A stack over a lowered limit is refused, and accepted once the limit is raised: the
    error's advice works."""
    text = ("name: ok\nruntime: yaml\nvariables:\n  base: &b {a: 1, b: 2, c: 3}\n"
            "  copies: [*b, *b, *b, *b]\nresources: {}\noutputs:\n  n: ${copies}\n")
    stack = tmp_path / "Pulumi.yaml"
    stack.write_text(text)
    from datera_iac.engine import load_yaml
    from datera_iac.engine.model import StackError

    os.environ["DATERA_IAC_YAML_MAX_ALIAS_NODES"] = "10"
    try:
        with pytest.raises(StackError) as e:
            load_yaml(stack)
        assert "DATERA_IAC_YAML_MAX_ALIAS_NODES" in str(e.value) and f"{stack}:5" in str(e.value)
        os.environ["DATERA_IAC_YAML_MAX_ALIAS_NODES"] = "28"
        got = load_yaml(stack)
    finally:
        del os.environ["DATERA_IAC_YAML_MAX_ALIAS_NODES"]
    assert got.outputs["n"] == [{"a": 1, "b": 2, "c": 3}] * 4
    assert json.dumps(got.outputs)
