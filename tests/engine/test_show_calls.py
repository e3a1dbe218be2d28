"""`preview --show-calls` / the JSON plan list the DSP calls, and `up` sends exactly those.

The calls come from ``Volume.calls`` (pure, from what the refresh read); the simulator's
request log is the proof that the listing is what an update and a plain create send."""

from __future__ import annotations

import json

import jsonschema

from datera_iac.cli import main
from datera_iac.engine.render import plan_json, plan_schema, render_plan
from datera_iac.resources.calls import flatten

SECRET = "s3cret-s3cret1"
STACK = """name: calls
runtime: yaml
resources:
  db:
    type: datera:index:Volume
    properties:
{props}
"""
BEFORE = """      name: calls-db
      size: 10
      extraSpecs: {"DF:total_iops_max": "1000"}
      metadata: {team: a}"""
AFTER = f"""      name: calls-db-2
      size: 20
      extraSpecs: {{"DF:total_iops_max": "2000", "DF:replica_count": "4"}}
      snapshotPolicies: ["daily:1day:7"]
      chapUser: app1
      chapSecret: {SECRET}
      metadata: {{team: b}}"""


def _writes_since(sim, start: int) -> list[tuple[str, str]]:
    """(method, path) of the write requests the simulator served after entry ``start``."""
    return [(e["method"], e["path"].split("?")[0].removeprefix("/v2.2"))
            for e in sim.request_log()[start:]
            if e["method"] in ("POST", "PUT", "DELETE") and "login" not in e["path"]]


def test_an_update_sends_exactly_the_calls_the_preview_listed(sim, sim_ws):
    """Rename, grow, replica count, QoS, CHAP, a snapshot policy and metadata: the preview
    lists seven calls, secrets masked, the JSON plan validates, and `up` sends those seven
    in that order and nothing else."""
    ws = sim_ws(STACK.format(props=BEFORE))
    plan, result = ws.up()
    assert result.ok, result.failures
    ws = sim_ws(STACK.format(props=AFTER))
    plan = ws.preview(with_calls=True)
    step, = plan.changes
    listed = [(c.method, c.path) for c in flatten(step.calls)]
    ai = "/app_instances/" + step.id.rsplit("/", 1)[1]
    si = ai + "/storage_instances/storage-1"
    vol = si + "/volumes/volume-1"
    assert listed == [("PUT", ai), ("PUT", vol), ("PUT", vol), ("PUT", vol + "/performance_policy"),
                      ("PUT", si + "/auth"), ("POST", vol + "/snapshot_policies"),
                      ("PUT", ai + "/int_ecosystem_data")]
    doc = plan_json(plan)
    jsonschema.validate(doc, plan_schema())
    text = render_plan(plan) + json.dumps(doc)
    assert SECRET not in text and '"target_pswd": "(sensitive)"' in text
    start = len(sim.request_log())
    _, result = ws.up()
    assert result.ok, result.failures
    assert _writes_since(sim, start) == listed


def test_a_plain_create_sends_its_listed_post_and_metadata(sim, sim_ws):
    """A plain create lists one nested POST and the metadata PUT, and sends those."""
    ws = sim_ws(STACK.format(props=BEFORE))
    step, = ws.preview(with_calls=True).changes
    listed = [(c.method, c.path) for c in flatten(step.calls)]
    assert listed == [("POST", "/app_instances"),
                      ("PUT", "/app_instances/<id>/int_ecosystem_data")]
    start = len(sim.request_log())
    _, result = ws.up()
    assert result.ok, result.failures
    sent = _writes_since(sim, start)
    ai_id = ws.load_state().resources["db"].id.rsplit("/", 1)[1]
    assert sent == [(m, p.replace("<id>", ai_id)) for m, p in listed]


def test_show_calls_flag_and_json(sim, sim_ws, capsys):
    """--show-calls prints the calls under the update; --json carries them without the flag;
    a plain preview does not compute them."""
    ws = sim_ws(STACK.format(props=BEFORE))
    ws.up()
    f = str(sim_ws(STACK.format(props=AFTER.replace("size: 20", "size: 30"))).stack_file)
    assert main(["preview", "-f", f, "--endpoint", sim.http_url]) == 0
    assert "calls:" not in capsys.readouterr().out
    assert main(["preview", "-f", f, "--endpoint", sim.http_url, "--show-calls"]) == 0
    out = capsys.readouterr().out
    assert "      calls:\n" in out and '{"size": 30}  (grow 10 -> 30 GiB)' in out
    assert main(["preview", "-f", f, "--endpoint", sim.http_url, "--json"]) == 0
    action, = json.loads(capsys.readouterr().out)["actions"]
    assert [c["why"] for c in action["calls"]][:2] == ["rename", "grow 10 -> 30 GiB"]
