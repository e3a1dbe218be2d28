"""Write-only CHAP secrets (``x_wo`` + ``x_wo_version``, Terraform 1.11+): derived for every
sensitive input of every kind, flagged ``write_only`` on the wire, refused from a client that
does not announce write-only support, null in every state the provider returns, and - with a
real Terraform 1.15 against the simulator - never in terraform.tfstate while the DSP gets
the secret; an unchanged version plans nothing, a new version rotates the secret in place
(a Volume) or replaces (a NodeAttachment, whose CHAP fields are ``replace``); refresh and
import keep it null."""

from __future__ import annotations

import json
import re
import shutil
from typing import Any

import attrs
import pytest
from tf.gen import tfplugin_pb2 as pb
from tf.types import Unknown
from tf.utils import read_dynamic_value, to_dynamic_value
from tfharness import REPO, servicer_on

from datera_iac.resources.base import SENSITIVE
from datera_iac.resources.plan import secrets_as_applied
from datera_iac_tf._protocol import is_write_only
from datera_iac_tf.provider import DateraProvider
from datera_iac_tf.servicer import Servicer

V = "datera_volume"
A = "datera_node_attachment"
CHAP, CHAP2, MUTUAL = "Chap-S3cret-w01", "Chap-S3cret-w02", "Mutual-S3cr-w03"
#: ValidateResourceConfig.Request.client_capabilities (field 3) with
#: write_only_attributes_allowed (field 2) = true, as Terraform 1.11+ sends it
_CAPS = bytes([0x1A, 0x02, 0x10, 0x01])


@pytest.fixture(scope="module")
def app() -> DateraProvider:
    return DateraProvider()


def _svc_on(sim: Any) -> Servicer:
    return servicer_on(sim)


def _full(svc: Servicer, type_name: str, **values: Any) -> dict[str, Any]:
    return {**{n: None for n in svc._get_res_attrs(type_name)}, **values}


def _known(planned: dict[str, Any]) -> dict[str, Any]:
    """A planned state as a stored one: "known after apply" values become null."""
    return {k: (None if v is Unknown else v) for k, v in planned.items()}


def _validate(svc: Servicer, type_name: str, config: dict[str, Any], *, caps: bool) -> list[Any]:
    req = pb.ValidateResourceConfig.Request(type_name=type_name, config=to_dynamic_value(config))
    if caps:
        req = pb.ValidateResourceConfig.Request.FromString(req.SerializeToString() + _CAPS)
    return list(svc.ValidateResourceConfig(req, None).diagnostics)


def _plan(svc: Servicer, type_name: str, prior: dict | None, config: dict) -> tuple[dict, list[str], list]:
    req = pb.PlanResourceChange.Request(
        type_name=type_name, prior_state=to_dynamic_value(prior),
        proposed_new_state=to_dynamic_value(config), config=to_dynamic_value(config))
    resp = svc.PlanResourceChange(req, None)
    planned = read_dynamic_value(resp.planned_state) if resp.planned_state.msgpack else None
    return planned, [p.steps[0].attribute_name for p in resp.requires_replace], list(resp.diagnostics)


def _apply(svc: Servicer, type_name: str, prior: dict | None, planned: dict, config: dict) -> tuple[dict, list]:
    req = pb.ApplyResourceChange.Request(
        type_name=type_name, prior_state=to_dynamic_value(prior),
        planned_state=to_dynamic_value(planned), config=to_dynamic_value(config))
    resp = svc.ApplyResourceChange(req, None)
    return read_dynamic_value(resp.new_state), list(resp.diagnostics)


AUTH_PUT = "PUT /v2.2/app_instances/:id/storage_instances/:storage_instance_name/auth"


def _writes_since(sim: Any, before: dict[str, int]) -> dict[str, int]:
    """Write requests (no logins) the simulator served since ``before`` (its counters)."""
    return {k: v - before.get(k, 0) for k, v in sim.counters().items()
            if k.split()[0] in ("POST", "PUT", "PATCH", "DELETE") and "login" not in k
            and v != before.get(k, 0)}


def _auth(sim: Any) -> dict[str, Any]:
    """The volume's CHAP settings as the simulator stores them (secrets included)."""
    found = _walk(json.loads(sim.dump()))
    assert len(found) == 1, found
    return {k: v for k, v in found[0].items() if k != "path"}


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every stored ``auth`` object (a dict with a ``type`` and a ``target_pswd`` key)."""
    if isinstance(node, dict):
        here = [node] if {"type", "target_pswd"} <= set(node) else []
        return here + [x for v in node.values() for x in _walk(v)]
    if isinstance(node, list):
        return [x for v in node for x in _walk(v)]
    return []


# ---- schema ----------------------------------------------------------------------------------


def test_every_sensitive_input_has_a_write_only_pair(app):
    """Each optional SENSITIVE field x of each kind: x deprecated, x_wo write-only (flag 11
    on the wire) and sensitive, x_wo_version an ordinary number that forces replacement when
    x does; data sources carry none of them."""
    resp = Servicer(app).GetProviderSchema(pb.GetProviderSchema.Request(), None)
    seen = []
    for cls in app.get_resources():
        kind = cls.adapter.kind
        wire = {a.name: a for a in resp.resource_schemas[kind.tf_type].block.attributes}
        declared = {a.name: a for a in cls.get_schema().attributes}
        for f in attrs.fields(kind.Spec):
            if not f.metadata.get(SENSITIVE):
                assert not is_write_only(wire[f.name]) and f.name + "_wo" not in wire
                continue
            seen.append(f"{kind.tf_type}.{f.name}")
            wo, ver = wire[f.name + "_wo"], wire[f.name + "_wo_version"]
            assert is_write_only(wo) and wo.sensitive and wo.optional and not wo.computed
            assert not is_write_only(ver) and ver.optional and not ver.computed
            assert json.loads(ver.type) == "number"
            assert wire[f.name].deprecated and not is_write_only(wire[f.name])
            assert bool(declared[ver.name].requires_replace) == bool(
                declared[f.name].requires_replace)
    assert {"datera_volume.chap_secret", "datera_volume.chap_initiator_secret",
            "datera_node_attachment.chap_secret",
            "datera_node_attachment.chap_initiator_secret"} <= set(seen)
    for name, ds in resp.data_source_schemas.items():
        for a in ds.block.attributes:
            assert not is_write_only(a) and not a.name.endswith(("_wo", "_wo_version")), name
            assert not a.deprecated, (name, a.name)


# ---- validation --------------------------------------------------------------------------------


def test_write_only_refused_from_a_client_without_the_capability(app):
    """Terraform < 1.11 announces no write-only support and would store chap_secret_wo in
    its state: refused with the attribute's path and what to do; accepted from 1.11+."""
    svc = Servicer(app)
    cfg = _full(svc, V, name="wo-vol", size=1, chap_user="chapuser", chap_secret_wo=CHAP)
    [d] = _validate(svc, V, cfg, caps=False)
    assert d.severity == pb.Diagnostic.ERROR
    assert d.summary == "datera_volume: chap_secret_wo needs Terraform 1.11 or later"
    assert "Upgrade Terraform, or set chap_secret instead" in d.detail
    assert list(d.attribute.steps) == []  # no path: Terraform would print the source line
    assert CHAP not in d.summary + d.detail
    assert _validate(svc, V, cfg, caps=True) == []
    plain = _full(svc, V, name="wo-vol", size=1)  # no write-only value: no capability needed
    assert _validate(svc, V, plain, caps=False) == []


def test_conflicts_and_deprecation_are_diagnostics(app):
    """x with x_wo is an error naming x_wo; x_wo_version without x_wo is an error on it; x
    alone works with a warning that it lands in the state; a bad x_wo value is reported as
    x_wo, without the value. No diagnostic has a path into a secret attribute: Terraform
    would print the configuration line, a literal secret included."""
    svc = Servicer(app)

    def one(**cfg: Any) -> Any:
        [d] = _validate(svc, V, _full(svc, V, name="wo-vol", size=1, chap_user="chapuser", **cfg),
                        caps=True)
        return d.severity, d.summary, [s.attribute_name for s in d.attribute.steps], d.detail

    sev, summary, path, detail = one(chap_secret=CHAP, chap_secret_wo=CHAP)
    assert (sev, path) == (pb.Diagnostic.ERROR, [])  # never a path into a secret
    assert "chap_secret and chap_secret_wo are both set" in detail and CHAP not in detail
    sev, summary, path, detail = one(chap_secret=CHAP, chap_secret_wo_version=1)
    assert (sev, path) == (pb.Diagnostic.ERROR, ["chap_secret_wo_version"])
    assert "chap_secret_wo_version is set without chap_secret_wo" in detail
    sev, summary, path, detail = one(chap_secret=CHAP)
    assert (sev, path) == (pb.Diagnostic.WARNING, [])
    assert summary == "datera_volume: chap_secret is stored in the state in clear"
    assert "Use chap_secret_wo with chap_secret_wo_version" in detail
    sev, summary, path, detail = one(chap_secret_wo="short")
    assert (sev, path) == (pb.Diagnostic.ERROR, [])
    assert "field 'chap_secret_wo'" in detail and "short" not in detail


# ---- plan (pure) --------------------------------------------------------------------------------


def test_plan_keeps_secrets_out_and_rotates_only_on_a_new_version(app):
    """Planned states hold null for x_wo and x; with the version unchanged a new x_wo plans
    no change (Terraform cannot see it); a new version is an in-place update of a Volume and
    a replacement of a NodeAttachment, shown on the version attribute."""
    svc = Servicer(app)
    cfg = _full(svc, V, name="wo-vol", size=1, chap_user="chapuser", chap_secret_wo=CHAP,
                chap_secret_wo_version=1)
    planned, replace, diags = _plan(svc, V, None, cfg)
    assert not diags and replace == []
    assert planned["chap_secret_wo"] is None and planned["chap_secret"] is None
    assert planned["chap_secret_wo_version"] == 1
    prior = {**_known(planned), "id": "/root/x", "tenant": "/root", "chap_auth": "chap"}
    prior.update(extra_specs={}, snapshot_policies=[], replace_on_retype=False)
    same, replace, diags = _plan(svc, V, prior, {**cfg, "chap_secret_wo": CHAP2})
    assert not diags and replace == [] and same == prior  # nothing to do
    bumped, replace, diags = _plan(svc, V, prior, {**cfg, "chap_secret_wo": CHAP2,
                                                   "chap_secret_wo_version": 2})
    assert not diags and replace == [] and bumped["id"] == "/root/x"
    assert bumped["chap_secret_wo_version"] == 2 and bumped["chap_secret_wo"] is None

    att = _full(svc, A, volume_id="/root/x", chap_username="user1", chap_secret_wo=CHAP,
                chap_secret_wo_version=1)
    planned, replace, diags = _plan(svc, A, None, att)
    assert not diags and planned["chap_secret"] is None and planned["chap_secret_wo"] is None
    prior = _known(planned)
    prior["id"] = "att-1"
    _, replace, diags = _plan(svc, A, prior, att)
    assert not diags and replace == []
    _, replace, diags = _plan(svc, A, prior, {**att, "chap_secret_wo_version": 2})
    assert not diags and replace == ["chap_secret_wo_version"]


def test_an_unknown_write_only_value_plans_no_change(app):
    """A write-only value unknown at plan time (an ephemeral resource not yet opened) is not
    a change while the version stays: no perpetual update, no error; on create it plans."""

    svc = Servicer(app)
    cfg = _full(svc, V, name="wo-vol", size=1, chap_user="chapuser", chap_secret_wo=Unknown,
                chap_secret_wo_version=1)
    planned, replace, diags = _plan(svc, V, None, cfg)
    assert not diags and replace == [] and planned["chap_secret_wo"] is None
    prior = _known(planned)
    prior.update(id="/root/x", tenant="/root", extra_specs={}, snapshot_policies=[],
                 replace_on_retype=False, chap_secret=None)
    same, replace, diags = _plan(svc, V, prior, cfg)
    assert not diags and replace == [] and same == prior


def test_moving_from_the_deprecated_attribute_clears_it_from_state(app):
    """A state written with chap_secret (in clear) and a configuration moved to
    chap_secret_wo with the same value: an update that only empties chap_secret in the
    state; with another value, the update carries the new secret."""
    svc = Servicer(app)
    base = {"name": "wo-vol", "size": 1, "chap_user": "chapuser"}
    planned, _, _ = _plan(svc, V, None, _full(svc, V, **base, chap_secret=CHAP))
    prior = _known(planned)
    prior.update(id="/root/x", tenant="/root", chap_secret=CHAP, extra_specs={},
                 snapshot_policies=[], replace_on_retype=False)
    moved = _full(svc, V, **base, chap_secret_wo=CHAP, chap_secret_wo_version=1)
    new, replace, diags = _plan(svc, V, prior, moved)
    assert not diags and replace == [] and new["chap_secret"] is None
    adapter = app.adapters[V]

    def as_applied(new):  # the prior inputs with the secrets the DSP holds, as the core sees them
        core = adapter.core
        return adapter.kind.spec_from(secrets_as_applied(core.given(prior), core.written(new),
                                                         core.rotated(prior, new)))

    d = adapter.kind.diff(as_applied(moved), adapter.spec_of(moved))
    assert not d.changed  # the DSP already holds that secret: no call
    d = adapter.kind.diff(as_applied({**moved, "chap_secret_wo": CHAP2}),
                          adapter.spec_of({**moved, "chap_secret_wo": CHAP2}))
    assert d.fields == ("chap_secret",)


# ---- apply through the servicer, on the simulator ----------------------------------------------


def test_apply_sends_the_write_only_secret_and_returns_it_null(sim):
    """ApplyResourceChange takes chap_secret_wo from the configuration (the planned state
    has it null): the DSP gets it, the new state holds it nowhere; a rotation writes the new
    secret with one PUT of the auth; a read keeps it null."""
    svc = _svc_on(sim)
    cfg = _full(svc, V, name="wo-vol", size=1, chap_user="chapuser", chap_secret_wo=CHAP,
                chap_initiator_user="mutualuser", chap_initiator_secret_wo=MUTUAL,
                chap_secret_wo_version=1, chap_initiator_secret_wo_version=1)
    planned, _, diags = _plan(svc, V, None, cfg)
    assert not diags
    state, diags = _apply(svc, V, None, planned, cfg)
    assert not diags, diags
    assert _auth(sim) == {"type": "mchap", "target_user_name": "chapuser", "target_pswd": CHAP,
                          "initiator_user_name": "mutualuser", "initiator_pswd": MUTUAL}
    text = json.dumps(state, default=str)
    assert CHAP not in text and MUTUAL not in text
    assert state["chap_secret_wo"] is None and state["chap_secret"] is None

    rotated = {**cfg, "chap_secret_wo": CHAP2, "chap_secret_wo_version": 2}
    planned, replace, diags = _plan(svc, V, state, rotated)
    assert not diags and replace == []
    before = sim.counters()
    new, diags = _apply(svc, V, state, planned, rotated)
    assert not diags, diags
    assert _writes_since(sim, before) == {AUTH_PUT: 1}
    auth = _auth(sim)
    assert (auth["target_pswd"], auth["initiator_pswd"]) == (CHAP2, MUTUAL)
    assert CHAP2 not in json.dumps(new, default=str) and new["chap_secret_wo_version"] == 2

    req = pb.ReadResource.Request(type_name=V, current_state=to_dynamic_value(new))
    read = read_dynamic_value(svc.ReadResource(req, None).new_state)
    assert read["chap_secret_wo"] is None and read["chap_secret"] is None
    assert read["chap_secret_wo_version"] == 2
    same, _, _ = _plan(svc, V, read, rotated)
    assert same == read  # refreshed: still nothing to do


@pytest.mark.parametrize("secret", ["chap_secret", "chap_secret_wo"])
def test_an_update_of_another_field_writes_no_auth(sim, secret):
    """A CHAP volume's size grows (its secret in clear or write-only, unchanged): the apply
    writes the size and no auth, as the engine's up does."""
    svc = _svc_on(sim)
    cfg = _full(svc, V, name="wo-vol", size=1, chap_user="chapuser", **{secret: CHAP},
                **({"chap_secret_wo_version": 1} if secret.endswith("_wo") else {}))
    planned, _, diags = _plan(svc, V, None, cfg)
    state, diags = _apply(svc, V, None, planned, cfg)
    assert not diags, diags
    grown = {**cfg, "size": 2}
    planned, replace, diags = _plan(svc, V, state, grown)
    assert not diags and replace == []
    before = sim.counters()
    _, diags = _apply(svc, V, state, planned, grown)
    assert not diags, diags
    writes = _writes_since(sim, before)
    assert AUTH_PUT not in writes and sum(writes.values()) >= 1, writes


# ---- a real Terraform ----------------------------------------------------------------------------

#: examples/terraform/chap, run as written
EXAMPLE = REPO / "examples" / "terraform" / "chap"


@pytest.mark.terraform
def test_terraform_write_only_chap_secret(sim_tf, sim):
    """Terraform 1.15 runs examples/terraform/chap as written: apply with chap_secret_wo
    from an ephemeral variable - the DSP has the secret, terraform.tfstate holds it nowhere,
    the next plan is empty; a new secret alone plans nothing; a new chap_secret_wo_version
    rotates it in place (one PUT of the auth); refresh and import keep chap_secret_wo null,
    and after an import the configured version writes the secret once, then plans are
    empty."""
    tf = sim_tf
    shutil.copytree(EXAMPLE, tf.dir, dirs_exist_ok=True)
    tf.env["TF_VAR_chap_secret"] = CHAP
    tf.apply()

    def stored() -> list[str]:
        text = (tf.dir / "terraform.tfstate").read_text()
        return [s for s in (CHAP, CHAP2) if s in text]

    def volume() -> dict[str, Any]:  # the state file itself, not `terraform show`
        [res] = json.loads((tf.dir / "terraform.tfstate").read_text())["resources"]
        [inst] = res["instances"]
        return inst["attributes"]

    vol = volume()
    assert (vol["chap_secret_wo"], vol["chap_secret"], vol["chap_secret_wo_version"]) == (
        None, None, 1)
    assert _auth(sim)["target_pswd"] == CHAP and stored() == []
    assert tf.plan().returncode == 0

    tf.env["TF_VAR_chap_secret"] = CHAP2
    assert tf.plan().returncode == 0  # a write-only value is never compared
    plan = tf.plan("-var", "chap_secret_version=2")
    assert plan.returncode == 2 and "datera_volume.secure will be updated in-place" in plan.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in plan.stdout
    before = sim.counters()
    tf.apply("-var", "chap_secret_version=2")
    assert _writes_since(sim, before) == {AUTH_PUT: 1}
    assert _auth(sim)["target_pswd"] == CHAP2 and stored() == []
    assert tf.plan("-var", "chap_secret_version=2").returncode == 0

    tf.apply("-refresh-only", "-var", "chap_secret_version=2")
    vol = volume()
    assert vol["chap_secret_wo"] is None and vol["chap_secret_wo_version"] == 2
    assert stored() == []

    vid = vol["id"]
    tf.run("state", "rm", "datera_volume.secure")
    tf.write(f'import {{\n  to = datera_volume.secure\n  id = "{vid}"\n}}\n', "import.tf")
    # an import cannot know the version: the configured one writes the secret once
    applied = tf.apply("-var", "chap_secret_version=2").stdout
    assert re.search(r"\+ chap_secret_wo_version += 2\n", applied), applied
    assert "Apply complete! Resources: 1 imported, 0 added, 1 changed, 0 destroyed." in applied
    vol = volume()
    assert vol["id"] == vid and vol["chap_secret_wo"] is None and stored() == []
    assert _auth(sim)["target_pswd"] == CHAP2
    assert tf.plan("-var", "chap_secret_version=2").returncode == 0
