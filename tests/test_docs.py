"""Documentation a user follows: links stay inside the repository and resolve, no document
points at paths of the machine it was written on, and the commands written in the examples'
headers run as written (from the repository root, on the bundled simulator)."""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from datera_iac.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted({ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("examples/**/*.md"),
               *ROOT.glob("datera_iac_tf/*.md"), *ROOT.glob("datera_iac_tf/docs/**/*.md")})


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve_inside_the_repository(doc):
    text = doc.read_text()
    assert "/work/" not in text, "a path of the machine the doc was written on"
    assert "engineer's" not in text, "the team's internal roles mean nothing to a reader"
    for m in re.finditer(r"\]\(([^)#\s]+)(#[^)]*)?\)", text):
        target = m.group(1)
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        p = (doc.parent / target).resolve()
        assert p.exists() and (p == ROOT or ROOT in p.parents), target


def _header_commands() -> list[tuple[str, str]]:
    """`datera-iac ...` lines of the examples' headers (comments and docstrings)."""
    out = []
    for f in sorted(ROOT.glob("examples/*/*")):
        if f.suffix not in (".yaml", ".py"):
            continue
        for line in f.read_text().splitlines()[:20]:
            m = re.match(r"^#?\s+(datera-iac (?:up|preview|destroy|refresh)\b.*?)(\s{2,}\(.*\))?$", line)
            if m and ">" not in m.group(1):
                out.append((str(f.relative_to(ROOT)), " ".join(m.group(1).split())))
    return out


class _Tty(io.StringIO):
    def isatty(self) -> bool:  # a user at a terminal answering "y"
        return True


@pytest.mark.parametrize("where, command", _header_commands())
def test_example_header_commands_run_as_written(where, command, tmp_path, monkeypatch, capsys):
    for k in list(os.environ):
        if k.startswith("DATERA_"):
            monkeypatch.delenv(k)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", _Tty("y\n" * 4))
    argv = shlex.split(command)[1:]
    assert main(argv) == 0, (where, command, capsys.readouterr())


def test_every_example_header_command_is_found():
    found = {c for _, c in _header_commands()}
    assert "datera-iac preview -f examples/yaml/Pulumi.yaml -s staging" in found
    assert "datera-iac up -f examples/yaml/Pulumi.yaml -s prod" in found
    assert "datera-iac up -f examples/python/__main__.py -c replicas=2 -c volumes=3" in found


@pytest.mark.parametrize("example", sorted(ROOT.glob("examples/*/*.yaml")), ids=lambda p: p.name)
def test_example_headers_promise_only_what_the_file_holds(example):
    text = example.read_text()
    header = "\n".join(ln for ln in text.splitlines()[:8] if ln.startswith("#"))
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    if re.search(r"\badopted\b", header):
        assert "import:" in body, "the header promises an adopted object the file does not import"
    if "protected" in header:
        assert "protect: true" in body
    if "kept on the DSP" in header:
        assert "retainOnDelete: true" in body
    if "snapshot" in header:
        assert "datera:index:Snapshot" in body
