"""user-needs §2.12: forget / retain / protect by configuration.

Acceptance: Terraform's ``removed { destroy = false }`` block, and the engine's
``retainOnDelete`` (the "unmanage" of the stack file) and ``state rm``, each drop the volume
from state while it stays on the DSP, untouched; ``protect: true`` turns a planned
replace or delete into a plan error with 0 write requests. Pulumi's ``retainOnDelete`` is
handled by the Pulumi engine itself (it never calls the provider's Delete), so the provider
has nothing to do; it cannot be driven here without the Pulumi CLI (docs/user-needs.md).
"""

from __future__ import annotations

import pytest
from needkit import TF_HEAD, app_instances, engine_ws, writes_of

VOL = """\
  v:
    type: datera:index:Volume
{opts}    properties:
      name: kept-vol
      size: 1
{extra}"""
HEAD = "name: need12\nruntime: yaml\nresources:\n"
OTHER = "  w:\n    type: datera:index:Volume\n    properties:\n      name: other-vol\n      size: 1\n"


def _stack(opts="", extra="", with_v=True):
    return HEAD + (VOL.format(opts=opts, extra=extra) if with_v else "") + OTHER


def test_engine_retain_on_delete_and_state_rm_keep_the_volume(sim, dsp, tmp_path):
    ws = lambda t: engine_ws(sim, tmp_path / "s", t)
    retain = "    options:\n      retainOnDelete: true\n"
    assert ws(_stack(retain)).up()[1].ok
    [v] = [a for a in app_instances(dsp) if a["name"] == "kept-vol"]
    before = writes_of(sim)
    plan, result = ws(_stack(with_v=False)).up()
    assert [(s.name, s.action) for s in plan.changes] == [("v", "forget")] and result.ok
    assert writes_of(sim) == before  # nothing sent to the DSP
    assert "v" not in ws(_stack(with_v=False)).load_state().resources
    assert [a["id"] for a in app_instances(dsp) if a["name"] == "kept-vol"] == [v["id"]]
    # and state rm (datera-iac state rm): the same, by command
    assert ws(_stack(with_v=False)).state_rm(["w"]) == ["w"]
    assert "other-vol" in [a["name"] for a in app_instances(dsp)]


def test_engine_protect_turns_replace_and_delete_into_plan_errors(sim, dsp, tmp_path):
    ws = lambda t: engine_ws(sim, tmp_path / "s", t)
    prot = "    options:\n      protect: true\n"
    assert ws(_stack(prot)).up()[1].ok
    before = writes_of(sim)
    # replace (tenant change) of a protected volume: plan error, nothing sent
    plan, result = ws(_stack(prot, extra="      tenant: /root/elsewhere\n")).up()
    assert plan.errors and "protected" in " ".join(plan.errors)
    assert result is None or not result.ok
    # delete (removed from the stack) of a protected volume: plan error
    plan, _ = ws(_stack(with_v=False)).up()
    assert plan.errors and "protected" in " ".join(plan.errors)
    plan, _ = ws(_stack(prot)).up(destroy=True)
    assert plan.errors and "protected" in " ".join(plan.errors)
    assert writes_of(sim) == before
    assert "kept-vol" in [a["name"] for a in app_instances(dsp)]


@pytest.mark.terraform
def test_terraform_removed_block_keeps_the_volume(sim_tf, dsp, sim):
    sim_tf.write(TF_HEAD + 'resource "datera_volume" "v" {\n  name = "kept-tf"\n  size = 1\n}\n')
    sim_tf.run("init", "-no-color")
    sim_tf.apply()
    [ai] = app_instances(dsp)
    sim_tf.write(TF_HEAD + 'removed {\n  from = datera_volume.v\n  lifecycle {\n'
                 '    destroy = false\n  }\n}\n')
    before = writes_of(sim)
    p = sim_tf.apply()
    assert "0 destroyed" in p.stdout or "no longer be managed" in p.stdout.lower(), p.stdout
    assert writes_of(sim) == before
    assert sim_tf.state() == {}
    assert [a["id"] for a in app_instances(dsp)] == [ai["id"]]
