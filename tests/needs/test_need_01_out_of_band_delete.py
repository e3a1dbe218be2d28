"""user-needs §2.1: out-of-band deletion is a normal state, not an error.

Acceptance: create a volume, delete it through the DSP API, then Terraform ``plan``, the
Pulumi provider's refresh (what ``pulumi preview --refresh`` calls) and the engine's
``preview`` each report "changes present" with exactly 1 create and no error; ``destroy``
of the same vanished volume exits 0 in every front end.
"""

from __future__ import annotations

import json

import pytest
from needkit import TF_HEAD, app_instances, configure, delete_out_of_band

from datera_iac.cli import main

STACK = """\
name: need01
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: oob-vol
      size: 2
"""


def test_engine_plans_one_create_and_destroy_exits_0(sim, sim_ws, dsp, capsys):
    ws = sim_ws(STACK)
    _, result = ws.up()
    assert result.ok
    [ai] = app_instances(dsp)
    delete_out_of_band(dsp, ai["id"])

    f = str(ws.stack_file)
    capsys.readouterr()
    assert main(["preview", "-f", f, "--endpoint", sim.http_url, "--detailed-exitcode",
                 "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    actions = [(c["name"], c["action"]) for c in doc["actions"]]
    assert actions == [("v", "create")], doc
    assert not doc["errors"] and doc["summary"]["create"] == 1
    # destroy of the vanished volume: exit 0, state empty, nothing sent but reads
    assert main(["destroy", "-f", f, "--endpoint", sim.http_url, "--yes"]) == 0
    assert not sim_ws(STACK).load_state().resources
    assert app_instances(dsp) == []


@pytest.mark.terraform
def test_terraform_plan_exit_2_one_create_and_destroy_exit_0(sim_tf, dsp):
    sim_tf.write(TF_HEAD + 'resource "datera_volume" "v" {\n  name = "oob-vol"\n  size = 2\n}\n')
    sim_tf.run("init", "-no-color")
    sim_tf.apply()
    [ai] = app_instances(dsp)
    delete_out_of_band(dsp, ai["id"])
    plan = sim_tf.run("plan", "-detailed-exitcode", "-no-color", "-out=tfplan", ok=(2,))
    assert "Error" not in plan.stdout + plan.stderr
    shown = json.loads(sim_tf.run("show", "-json", "tfplan").stdout)
    assert [(rc["address"], rc["change"]["actions"]) for rc in shown["resource_changes"]] == [
        ("datera_volume.v", ["create"])]
    assert sim_tf.destroy().returncode == 0
    assert app_instances(dsp) == []


def test_pulumi_refresh_reads_gone_and_delete_succeeds(plugin, sim, dsp):
    from datera_iac.pulumi.testing import plain

    V = "datera:index:Volume"
    configure(plugin, sim)
    inputs = plain(plugin.check(V, "oob", {"size": 2}).inputs)
    made = plugin.create(V, "oob", inputs)
    state = plain(made.properties)
    delete_out_of_band(dsp, state["aiId"])
    # an empty id from Read is how a provider tells the Pulumi engine "gone": the next
    # preview plans a create instead of failing
    assert plugin.read(V, "oob", made.id, state, inputs).id == ""
    plugin.delete(V, "oob", made.id, state)  # deleting what is already gone: no error
    assert app_instances(dsp) == []
