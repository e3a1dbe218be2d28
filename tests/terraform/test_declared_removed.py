"""A ``DF:`` key taken out of a ``datera_volume``'s ``extra_specs`` goes back to its default
on the DSP, as with ``datera-iac up`` and Pulumi: the declaration an apply made is kept in
the resource's *private* state (never a secret), the next plan hands it to
``kind.declare_removed``, and a refresh keeps it. Driven through the servicer's RPCs
against the simulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tf.gen import tfplugin_pb2 as pb
from tf.utils import read_dynamic_value, to_dynamic_value
from test_sim_e2e import HEAD
from tfharness import SIM_PASSWORD, SIM_USER, servicer_on

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac_tf.servicer import Servicer

V = "datera_volume"
CHAP = "Chap-S3cret-p01"


def _svc(sim: Any) -> Servicer:
    return servicer_on(sim)


def _config(svc: Servicer, **values: Any) -> dict[str, Any]:
    return {**{n: None for n in svc._get_res_attrs(V)}, **values}


def _plan(svc: Servicer, prior: dict | None, config: dict, private: bytes = b"") -> tuple[dict, bytes]:
    resp = svc.PlanResourceChange(pb.PlanResourceChange.Request(
        type_name=V, prior_state=to_dynamic_value(prior), proposed_new_state=to_dynamic_value(config),
        config=to_dynamic_value(config), prior_private=private), None)
    assert not resp.diagnostics, resp.diagnostics
    return read_dynamic_value(resp.planned_state), resp.planned_private


def _apply(svc: Servicer, prior: dict | None, planned: dict, config: dict, private: bytes) -> tuple[dict, bytes]:
    resp = svc.ApplyResourceChange(pb.ApplyResourceChange.Request(
        type_name=V, prior_state=to_dynamic_value(prior), planned_state=to_dynamic_value(planned),
        config=to_dynamic_value(config), planned_private=private), None)
    assert not resp.diagnostics, resp.diagnostics
    return read_dynamic_value(resp.new_state), resp.private


def _read(svc: Servicer, state: dict, private: bytes) -> tuple[dict, bytes]:
    resp = svc.ReadResource(pb.ReadResource.Request(
        type_name=V, current_state=to_dynamic_value(state), private=private), None)
    assert not resp.diagnostics, resp.diagnostics
    return read_dynamic_value(resp.new_state), resp.private


def _policy(sim: Any, state: dict) -> dict[str, Any]:
    c = DspClient(DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": SIM_USER,
                                             "san_password": SIM_PASSWORD}))
    try:
        tenant, ai = state["id"].rsplit("/", 1)
        vol = c.get(f"/app_instances/{ai}", tenant=tenant or "/root")["storage_instances"][0]["volumes"][0]
    finally:
        c.close()
    qos = {k: v for k, v in (vol.get("performance_policy") or {}).items() if k.endswith("_max") and v}
    return {"replica_count": vol["replica_count"], **qos}


def test_removed_key_resets_and_private_state_holds_no_secret(sim):
    svc = _svc(sim)
    cfg = _config(svc, name="tf-qos", size=2, chap_user="chapuser", chap_secret_wo=CHAP,
                  chap_secret_wo_version=1,
                  extra_specs={"DF:write_iops_max": "5000", "DF:replica_count": "2"})
    planned, private = _plan(svc, None, cfg)
    state, private = _apply(svc, None, planned, cfg, private)
    assert _policy(sim, state) == {"replica_count": 2, "write_iops_max": 5000}
    assert json.loads(private)["declared"]["extra_specs"] == cfg["extra_specs"]
    assert CHAP not in private.decode()

    state, private = _read(svc, state, private)  # a refresh keeps the declaration
    assert json.loads(private)["declared"]["extra_specs"] == cfg["extra_specs"]

    # the last QoS key goes: the plan shows the change, the apply takes the limit off
    less = {**cfg, "extra_specs": {"DF:replica_count": "2"}}
    planned, private = _plan(svc, state, less, private)
    assert planned["extra_specs"] == less["extra_specs"] != state["extra_specs"]
    state, private = _apply(svc, state, planned, less, private)
    assert _policy(sim, state) == {"replica_count": 2}
    assert json.loads(private)["declared"]["extra_specs"] == less["extra_specs"]
    again, _ = _plan(svc, state, less, private)
    assert again == state  # nothing left to do

    # DF:replica_count goes back to the driver's default (3: a grow, in place)
    bare = {**less, "extra_specs": None}
    planned, private = _plan(svc, state, bare, private)
    state, private = _apply(svc, state, planned, bare, private)
    assert _policy(sim, state) == {"replica_count": 3}


def test_without_a_recorded_declaration_nothing_is_reset(sim):
    """An imported volume (no private state yet) keeps what the DSP has for keys the
    configuration leaves out: the provider cannot tell a removed key from one never given."""
    svc = _svc(sim)
    cfg = _config(svc, name="tf-imp", size=1, extra_specs={"DF:write_iops_max": "4000"})
    planned, private = _plan(svc, None, cfg)
    state, _ = _apply(svc, None, planned, cfg, private)
    less = {**cfg, "extra_specs": None}
    planned, private = _plan(svc, state, less, b"")
    state, _ = _apply(svc, state, planned, less, private)
    assert _policy(sim, state) == {"replica_count": 3, "write_iops_max": 4000}


@pytest.mark.terraform
def test_terraform_removing_a_df_key_resets_it(sim_tf, sim):
    """With a real Terraform: the private state survives apply, refresh and plan, so a QoS
    key taken out of the configuration takes its limit off the DSP; then the plan is empty."""
    tf = sim_tf
    tf.write(HEAD + """
variable "specs" {
  type    = map(string)
  default = { "DF:write_iops_max" = "5000", "DF:replica_count" = "2" }
}
resource "datera_volume" "v" {
  name        = "tf-reset"
  size        = 1
  extra_specs = var.specs
}
""")
    tf.apply()
    state = json.loads(tf.run("show", "-json").stdout)["values"]["root_module"]["resources"][0]["values"]
    assert _policy(sim, state) == {"replica_count": 2, "write_iops_max": 5000}
    keep = ["-var", 'specs={"DF:replica_count" = "2"}']
    tf.apply(*keep)
    assert _policy(sim, state) == {"replica_count": 2}
    assert tf.plan(*keep).returncode == 0
