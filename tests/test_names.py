"""One option-name mapping (datera_iac.names) for the engine, the Pulumi schema and the
Terraform schema, checked over every option and every field; unknown `-c` keys are errors."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import attrs
import pytest

from datera_iac.cli import main
from datera_iac.config import DateraConfig
from datera_iac.engine.yamlstack import split_config
from datera_iac.names import camel, did_you_mean, resolve, snake
from datera_iac.resources.base import KINDS

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = DateraConfig.option_names()


def _all_fields() -> set[str]:
    import datera_iac.resources as R  # noqa: F401 - registers every kind
    from datera_iac.resources import attachment, snapshot, tenant, volume, volume_image, volume_type  # noqa: F401

    seen: set[type] = set()
    names: set[str] = set()

    def walk(cls: type) -> None:
        if cls in seen or not attrs.has(cls):
            return
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for f in attrs.fields(cls):
            names.add(f.name)
            stack = [hints.get(f.name)]
            while stack:
                t = stack.pop()
                if isinstance(t, type):
                    walk(t)
                stack.extend(typing.get_args(t))

    for k in set(KINDS.values()):
        walk(k.Spec)
        walk(k.Outputs)
    return names


def test_digits_are_their_own_word():
    assert camel("datera_503_interval") == "datera503Interval"
    assert snake("datera503Interval") == "datera_503_interval"
    assert snake("datera503Timeout") == "datera_503_timeout"
    assert snake("sha256") == "sha256" and snake("sanIp") == "san_ip"
    assert resolve("datera503Interval", OPTIONS) == "datera_503_interval"
    assert resolve("datera_503_interval", OPTIONS) == "datera_503_interval"
    assert resolve("nope", OPTIONS) is None
    assert did_you_mean("sanLogn", ["san_login", "sanLogin"]) == " (did you mean 'sanLogin'?)"


@pytest.mark.parametrize("name", sorted(set(OPTIONS) | _all_fields()))
def test_round_trip_every_option_and_field(name):
    assert snake(camel(name)) == name
    assert snake(name) == name


def test_pulumi_schema_spells_every_option_by_the_mapping():
    schema = json.loads((ROOT / "datera_iac/pulumi/schema.json").read_text())
    assert set(schema["config"]["variables"]) == {camel(o) for o in OPTIONS}
    assert {snake(k) for k in schema["config"]["variables"]} == set(OPTIONS)
    assert {snake(k) for k in schema["provider"]["inputProperties"]} == set(OPTIONS)


def test_terraform_schema_uses_the_core_names():
    schema = json.loads((ROOT / "datera_iac_tf/schema.json").read_text())
    attributes = set(schema["provider"]["block"]["attributes"])
    assert attributes == set(OPTIONS)
    assert {resolve(camel(a), OPTIONS) for a in attributes} == set(OPTIONS)


def test_engine_reads_every_option_in_both_spellings():
    for o in OPTIONS:
        assert split_config({f"datera:{camel(o)}": "x"}, "p") == ({}, {o: "x"})
        assert split_config({f"datera:{o}": "x"}, "p") == ({}, {o: "x"})


STACK = """name: names
runtime: yaml
config:
  size:
    type: integer
    default: 1
resources:
  v:
    type: datera:index:Volume
    properties:
      name: vol1
      size: ${size}
"""


def _stack(tmp_path, monkeypatch):
    (tmp_path / "Pulumi.yaml").write_text(STACK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")


def test_cli_accepts_the_schema_spelling_of_503_options(sim, tmp_path, monkeypatch, capsys):
    """`-c datera:datera503Interval=...` (what the Pulumi schema advertises) is accepted."""
    _stack(tmp_path, monkeypatch)
    rc = main(["preview", "--endpoint", sim.http_url, "-c", "datera:datera503Interval=2",
               "-c", "datera:datera503Timeout=30"])
    assert rc == 0, capsys.readouterr()


def test_unknown_config_key_is_an_error_with_did_you_mean(sim, tmp_path, monkeypatch, capsys):
    _stack(tmp_path, monkeypatch)
    assert main(["preview", "--endpoint", sim.http_url, "-c", "sise=2"]) == 1
    err = capsys.readouterr().err
    assert "'sise'" in err and "did you mean 'size'?" in err
    assert main(["preview", "--endpoint", sim.http_url, "-c", "unknownKey=1"]) == 1
    assert "'unknownKey'" in capsys.readouterr().err
    assert main(["preview", "--endpoint", sim.http_url, "-c", "datera:sanLogn=x"]) == 1
    assert "did you mean 'san_login'?" in capsys.readouterr().err
    assert main(["preview", "--endpoint", sim.http_url, "-c", "size=2"]) == 0


def test_unknown_config_key_of_a_python_program_is_an_error(sim, tmp_path, monkeypatch, capsys):
    (tmp_path / "prog.py").write_text(
        "from datera_iac import engine\n"
        "engine.Volume('v', name='vol1', size=int(engine.config.get('size', 1)))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    assert main(["preview", "-f", "prog.py", "--endpoint", sim.http_url, "-c", "sise=2"]) == 1
    assert "'sise' is set but the program never reads it" in capsys.readouterr().err
    assert main(["preview", "-f", "prog.py", "--endpoint", sim.http_url, "-c", "size=2"]) == 0
