"""A CLI a user can debug: -v/-vv/--verbose and --debug (the DSP wire trace, secrets masked),
datera:dateraDebug honoured, every log line on stderr as "HH:MM:SS.mmm LEVEL logger: msg"."""

from __future__ import annotations

import re

import pytest

from datera_iac.cli import main

PASSWORD = "S3cret-pw-for-logs"
STACK = """name: logs
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: vol1
      size: 1
"""
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR) datera_iac[\w.]*: ")
WIRE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} DEBUG datera_iac\.dsp\.wire: -> (GET|POST|PUT) ", re.M)


@pytest.fixture
def stack(make_sim, tmp_path, monkeypatch):
    server = make_sim(users={"admin": PASSWORD})
    (tmp_path / "Pulumi.yaml").write_text(STACK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", PASSWORD)
    monkeypatch.setenv("DATERA_DEBUG", "false")  # restored after --debug set it
    return server


def _err(capsys) -> str:
    return capsys.readouterr().err


def test_no_flag_no_trace(stack, capsys):
    assert main(["up", "--yes", "--endpoint", stack.http_url]) == 0
    assert not WIRE.search(_err(capsys))


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_prints_the_wire_trace_masked(stack, capsys, where):
    args = ["up", "--yes", "--endpoint", stack.http_url]
    argv = ["--debug", *args] if where == "before" else [*args, "--debug"]
    assert main(argv) == 0
    err = _err(capsys)
    assert WIRE.search(err), err
    assert re.search(r"datera_iac\.dsp\.wire: <- (GET|POST|PUT) \S+ 20\d", err)
    assert PASSWORD not in err and "login" in err  # the login body is masked
    logs = [ln for ln in err.splitlines() if LINE.match(ln)]
    assert logs and all(LINE.match(ln) for ln in err.splitlines() if "datera_iac." in ln[:40])


def test_datera_debug_config_is_honoured(stack, capsys):
    assert main(["up", "--yes", "--endpoint", stack.http_url, "-c", "datera:dateraDebug=true"]) == 0
    assert WIRE.search(_err(capsys))


def test_verbose_levels(stack, capsys):
    assert main(["up", "--yes", "-vv", "--endpoint", stack.http_url]) == 0
    err = _err(capsys)
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} DEBUG datera_iac\.dsp: logged in", err, re.M), err
    assert not WIRE.search(err)  # -vv is DEBUG logs, not the wire trace
    assert main(["--verbose", "up", "--yes", "--endpoint", stack.http_url]) == 0
    assert " DEBUG " not in _err(capsys)


def test_help_lists_the_flags(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--verbose" in out and "--debug" in out and "HH:MM:SS.mmm LEVEL logger" in out
