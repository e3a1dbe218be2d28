"""user-needs §2.11: CI-grade outputs: exit codes, refresh-only drift mode, machine-readable
plan, readable summary.

Acceptance: ``preview --detailed-exitcode`` returns exactly 0 (nothing to do), 1 (error)
and 2 (changes); ``--refresh-only`` returns 2 only when the DSP differs from the state, not
for a pending configuration edit, and names the drifted attributes; the JSON plan validates
against the shipped JSON Schema (datera_iac/engine/plan.schema.json) and one plan lists all
six actions create/update/replace/delete/import/forget. The scheduled drift example printing
which attributes drifted is tests/engine/test_examples_cli.py::test_drift_report_names_attributes.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from needkit import app_instances

from datera_iac.cli import main
from datera_iac.engine.render import plan_schema

BASE = """\
name: need11
runtime: yaml
config:
  size: {type: integer, default: 1}
resources:
  keep:
    type: datera:index:Volume
    properties:
      name: ci-keep
      size: ${size}
  grow:
    type: datera:index:Volume
    properties:
      name: ci-grow
      size: 1
  move:
    type: datera:index:Volume
    properties:
      name: ci-move
      size: 1
  gone:
    type: datera:index:Volume
    properties:
      name: ci-gone
      size: 1
  left:
    type: datera:index:Volume
    options:
      retainOnDelete: true
    properties:
      name: ci-left
      size: 1
  t:
    type: datera:index:Tenant
    properties:
      name: ci-team
"""


@pytest.fixture
def cli(sim, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    f = tmp_path / "Pulumi.yaml"

    def run(text, *args):
        f.write_text(text)
        capsys.readouterr()
        code = main([args[0], "-f", str(f), "--endpoint", sim.http_url, *args[1:]])
        return code, capsys.readouterr()

    return run


def test_exit_codes_refresh_only_and_drift_names(cli, dsp):
    assert cli(BASE, "preview", "--detailed-exitcode")[0] == 2  # all to create
    assert cli(BASE.replace("size: ${size}", "size: 0"), "preview", "--detailed-exitcode")[0] == 1
    assert cli(BASE, "up", "--yes")[0] == 0
    assert cli(BASE, "preview", "--detailed-exitcode")[0] == 0
    assert cli(BASE, "preview", "--detailed-exitcode", "--refresh-only")[0] == 0
    # a pending config edit: a change for the normal plan, no drift
    assert cli(BASE, "preview", "--detailed-exitcode", "-c", "size=2")[0] == 2
    assert cli(BASE, "preview", "--detailed-exitcode", "--refresh-only", "-c", "size=2")[0] == 0
    # drift on the DSP: refresh-only exits 2 and names the attribute
    ai = next(a for a in app_instances(dsp) if a["name"] == "ci-grow")
    dsp.put(f"{ai['storage_instances'][0]['volumes'][0]['path']}", {"size": 3})
    code, out = cli(BASE, "preview", "--detailed-exitcode", "--refresh-only", "--json")
    assert code == 2
    doc = json.loads(out.out)
    jsonschema.validate(doc, plan_schema())
    assert doc["mode"] == "refresh-only" and doc["has_changes"] is True
    assert [(d["name"], d["fields"]) for d in doc["drift"]] == [("grow", ["size"])]
    code, out = cli(BASE, "preview", "--detailed-exitcode", "--refresh-only")
    assert code == 2 and "grow" in out.out and "size" in out.out


def test_json_plan_lists_all_six_actions_and_validates(cli, dsp):
    assert cli(BASE, "up", "--yes")[0] == 0
    outside = dsp.post("/app_instances", {"name": "ci-outside", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 1, "replica_count": 3}]}]})
    text = (BASE.replace("size: ${size}", "size: 2")  # update
            .replace("      name: ci-move\n", "      name: ci-move\n      tenant: ${t.name}\n")
            .replace("  gone:\n    type: datera:index:Volume\n    properties:\n"
                     "      name: ci-gone\n      size: 1\n", "")  # delete
            .replace("  left:\n    type: datera:index:Volume\n    options:\n"
                     "      retainOnDelete: true\n    properties:\n      name: ci-left\n"
                     "      size: 1\n", "")  # forget
            + "  new:\n    type: datera:index:Volume\n    properties:\n      name: ci-new\n"
              "      size: 1\n"
            + f"  adopted:\n    type: datera:index:Volume\n    options:\n"
              f"      import: /root/{outside['id']}\n    properties:\n      name: ci-outside\n"
              "      size: 1\n      extraSpecs:\n        replica_count: 3\n")
    code, out = cli(text, "preview", "--detailed-exitcode", "--json")
    assert code == 2, out
    doc = json.loads(out.out)
    jsonschema.validate(doc, plan_schema())
    acts = {a["name"]: a["action"] for a in doc["actions"]}
    assert acts == {"keep": "update", "move": "replace", "gone": "delete", "left": "forget",
                    "new": "create", "adopted": "import"}, acts
    assert doc["summary"] == {"create": 1, "update": 1, "replace": 1, "delete": 1,
                              "import": 1, "forget": 1}
    move = next(a for a in doc["actions"] if a["name"] == "move")
    assert move["strategy"] in ("delete-before-create", "temporary-name", "create-before-delete")
    # the readable summary says the same
    code, out = cli(text, "preview", "--detailed-exitcode")
    assert code == 2
    for word in ("create", "update", "replace", "delete", "import", "forget"):
        assert word in out.out.lower(), (word, out.out)
