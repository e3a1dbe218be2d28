"""The provider's generic derivation and tfplugin6 RPCs, called directly with protobuf
messages (no Terraform): schema flags from field metadata, config-aware planning, errors as
diagnostics, secrets scrubbed, timeouts parsed."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from tf.gen import tfplugin_pb2 as pb
from tf.types import Unknown
from tf.utils import read_dynamic_value, to_dynamic_value
from tfprov_toy import Disk, FileStore, ToyConfig, toy_provider

from datera_iac.errors import InputError
from datera_iac.resources.base import Timeouts, out_field, spec_field
from datera_iac_tf._types import UnsupportedType
from datera_iac_tf.diagnostics import scrub
from datera_iac_tf.schema import config_fields, kind_schema
from datera_iac_tf.servicer import Servicer
from datera_iac_tf.timeouts import parse_duration, timeouts_from

T = "datera_disk"


@pytest.fixture
def svc(tmp_path) -> Servicer:
    app = toy_provider()
    app.configure({"path": str(tmp_path / "store.json"), "password": "pr0vider-pass"})
    return Servicer(app)


def _attrs(svc: Servicer) -> dict[str, Any]:
    resp = svc.GetProviderSchema(pb.GetProviderSchema.Request(), None)
    return {a.name: a for a in resp.resource_schemas[T].block.attributes}


def _full(**values: Any) -> dict[str, Any]:
    base = {n: None for n in ("id", "name", "size", "tenant", "labels", "secret", "secret_wo",
                              "secret_wo_version", "mode", "serial", "generation", "timeouts")}
    base.update(values)
    return base


def _plan(svc, prior, config):
    req = pb.PlanResourceChange.Request(
        type_name=T,
        prior_state=to_dynamic_value(prior),
        proposed_new_state=to_dynamic_value(config),
        config=to_dynamic_value(config),
    )
    resp = svc.PlanResourceChange(req, None)
    planned = read_dynamic_value(resp.planned_state) if resp.planned_state.msgpack else None
    replace = [p.steps[0].attribute_name for p in resp.requires_replace]
    return planned, replace, list(resp.diagnostics)


def _apply(svc, prior, planned):
    req = pb.ApplyResourceChange.Request(
        type_name=T, prior_state=to_dynamic_value(prior), planned_state=to_dynamic_value(planned),
        config=to_dynamic_value(planned))
    resp = svc.ApplyResourceChange(req, None)
    new = read_dynamic_value(resp.new_state) if resp.new_state.msgpack else None
    return new, list(resp.diagnostics)


def test_schema_flags_come_from_field_metadata(svc):
    """required/optional/computed/requires_replace/sensitive/description follow the kind."""
    a = _attrs(svc)
    assert a["name"].required and not a["name"].computed
    assert a["size"].optional and a["size"].computed  # has a default
    assert a["secret"].sensitive and a["secret"].optional
    assert a["serial"].computed and not a["serial"].optional
    assert a["id"].computed and a["timeouts"].optional
    assert a["size"].description == "Size in GiB; grows in place, never shrinks."
    ks = kind_schema(Disk())
    assert {f.name for f in ks.inputs if f.replace} == {"name", "tenant"}
    assert list(a) == ["id", "name", "size", "tenant", "labels", "secret", "secret_wo",
                       "secret_wo_version", "mode", "serial", "generation", "timeouts"]


def test_provider_block_is_derived_from_dateraconfig():
    """Every DateraConfig field is an optional provider attribute; passwords are sensitive
    and each names its environment variable."""
    from datera_iac.config import DateraConfig, env_name

    fields = {f.name: f for f in config_fields(DateraConfig, env_name)}
    assert set(fields) == {f.name for f in attrs.fields(DateraConfig)}
    assert all(f.optional and not f.required for f in fields.values())
    assert fields["san_password"].sensitive and fields["chap_password"].sensitive
    assert not fields["san_login"].sensitive
    assert "`DATERA_SAN_IP`" in fields["san_ip"].doc
    assert fields["datera_api_port"].deprecated


def test_unsupported_field_type_is_a_schema_error():
    """A kind field type with no Terraform equivalent fails loudly, naming the field."""

    @attrs.frozen
    class S:
        x: complex = spec_field(doc="x")

    @attrs.frozen
    class O:
        y: str | None = out_field(doc="y")

    class Bad(Disk):
        Spec = S
        Outputs = O

    with pytest.raises(UnsupportedType, match=r"Disk\.x"):
        kind_schema(Bad())


def test_create_plan_fills_defaults_and_unknowns(svc):
    """A create plan shows the core's defaults, keeps the user's form and leaves
    server-assigned values unknown."""
    planned, replace, diags = _plan(svc, None, _full(name="disk-a", tenant="team"))
    assert not diags and replace == []
    assert planned["size"] == 1 and planned["labels"] == {} and planned["tenant"] == "team"
    assert planned["mode"] is Unknown and planned["serial"] is Unknown and planned["id"] is Unknown
    assert planned["secret"] is Unknown  # optional, default None: the DSP decides


def test_apply_create_read_update_delete_roundtrip(svc, tmp_path):
    """create -> read equals create -> grow updates in place (serial kept, generation
    unknown in plan) -> a vanished object reads as null -> delete."""
    planned, _, _ = _plan(svc, None, _full(name="disk-a", tenant="team", size=2,
                                           secret="s3cret-value", timeouts={"create": "90s"}))
    state, diags = _apply(svc, None, planned)
    assert not diags, diags
    store = FileStore(ToyConfig(path=str(tmp_path / "store.json")))
    assert store.load()["/root/team/disk-a"]["timeout_create"] == 90.0  # Context.timeouts
    assert state["timeouts"] == {"create": "90s"}
    assert state["id"] == "/root/team/disk-a" and state["tenant"] == "team"
    assert state["secret"] == "s3cret-value"  # not echoed by the DSP: kept from the plan
    read = svc.ReadResource(pb.ReadResource.Request(type_name=T, current_state=to_dynamic_value(state)), None)
    assert read_dynamic_value(read.new_state) == state

    cfg = {**{k: state[k] for k in ("name", "tenant", "secret")}, "size": 3}
    planned2, replace, diags = _plan(svc, state, _full(**cfg))
    assert not diags and replace == []
    assert planned2["serial"] == state["serial"]  # stable_outputs
    assert planned2["generation"] is Unknown and planned2["id"] == state["id"]
    assert planned2["mode"] == "hybrid"  # unset, diff says equal: keep the prior value
    state2, diags = _apply(svc, state, planned2)
    assert not diags and state2["size"] == 3 and state2["generation"] == 2

    store.save({})
    gone = svc.ReadResource(pb.ReadResource.Request(type_name=T, current_state=to_dynamic_value(state2)), None)
    assert not gone.new_state.msgpack and not list(gone.diagnostics)
    new, diags = _apply(svc, state2, None)
    assert new is None and not diags  # deleting what is gone succeeds


def test_plan_errors_are_diagnostics_with_attribute_paths(svc):
    """A shrink, a bad value and a bad timeout are error diagnostics pointing at the
    attribute; nothing leaks a secret or a traceback."""
    prior = _full(id="/root/d-1", name="disk-a", size=5, tenant="/root", labels={},
                  secret="s3cret-value", mode="hybrid", serial="x", generation=1)
    for cfg, attr, text in [
        ({"size": 4}, "size", "cannot shrink from 5 to 4 GiB"),
        ({"name": "X!"}, "name", "must be 3-32 lowercase"),
        ({"timeouts": {"create": "soon"}}, "timeouts", "'soon' is not a duration"),
    ]:
        config = _full(**{**{k: prior[k] for k in ("name", "size", "secret")}, **cfg})
        planned, _, diags = _plan(svc, prior, config)
        assert planned is None and len(diags) == 1
        d = diags[0]
        assert d.severity == pb.Diagnostic.ERROR and text in d.detail
        assert d.attribute.steps[0].attribute_name == attr
        assert "Traceback" not in d.detail and "s3cret-value" not in d.detail


def test_replace_and_unknown_values(svc):
    """A changed replace field is reported in requires_replace; a replace field whose value
    is unknown at plan time forces replacement too; outputs become unknown."""
    prior = _full(id="/root/disk-a", name="disk-a", size=1, tenant="/root", labels={},
                  mode="hybrid", serial="x", generation=1)
    planned, replace, diags = _plan(svc, prior, _full(name="disk-b"))
    assert replace == ["name"] and planned["serial"] is Unknown and not diags
    planned, replace, diags = _plan(svc, prior, _full(name="disk-a", tenant=Unknown))
    assert replace == ["tenant"] and not diags
    planned, replace, diags = _plan(svc, prior, _full(name="disk-a", size=Unknown))
    assert replace == [] and planned["generation"] is Unknown


def test_unexpected_exception_is_a_diagnostic_not_a_traceback(svc, monkeypatch):
    """A bug in a kind surfaces as one diagnostic naming the exception; the prior state of
    an update is kept (the object still exists)."""

    def boom(self, ctx, id, old, new):
        raise KeyError("generation")

    monkeypatch.setattr(Disk, "update", boom)
    planned, _, _ = _plan(svc, None, _full(name="disk-a"))
    state, _ = _apply(svc, None, planned)
    planned2, _, _ = _plan(svc, state, _full(name="disk-a", size=2))
    new, diags = _apply(svc, state, planned2)
    assert new == state
    assert "internal error" in diags[0].summary and "KeyError" in diags[0].detail


def test_provider_configuration_errors_hide_the_password():
    """A bad provider block is one diagnostic naming the option, never the password."""
    from datera_iac_tf.provider import DateraProvider

    svc = Servicer(DateraProvider(kinds=[], data_sources=[]))
    req = pb.ConfigureProvider.Request(config=to_dynamic_value(
        {"san_ip": "10.0.0.1", "san_password": "hunter2-secret", "request_timeout": -1}))
    resp = svc.ConfigureProvider(req, None)
    (d,) = list(resp.diagnostics)
    assert "request_timeout" in d.detail and "hunter2-secret" not in d.detail + d.summary


def test_not_configured_is_a_clear_error(tmp_path):
    """Using a resource before configure names the environment variables to set."""
    svc = Servicer(toy_provider())
    planned, _, _ = _plan(svc, None, _full(name="disk-a"))
    new, diags = _apply(svc, None, planned)
    assert new is None and "DATERA_SAN_IP" in diags[0].detail


def test_timeouts():
    """Go-style durations; unknown keys and bad values name timeouts.<key>."""
    assert parse_duration("1h30m") == 5400 and parse_duration("90s") == 90
    assert parse_duration("1.5h") == 5400 and parse_duration("250ms") == 0.25
    assert timeouts_from({"create": "2m"}) == Timeouts(create=120.0)
    assert timeouts_from(None) == Timeouts()
    with pytest.raises(InputError) as e:
        timeouts_from({"craete": "2m"}, kind="Volume")
    assert e.value.field == "timeouts.craete" and "create" in str(e.value)
    for bad in ("", "10", "m", "0s", "10 m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_scrub():
    """Secrets are replaced wherever they appear; short or empty values are left alone."""
    assert scrub("login as admin:hunter22 failed", ["hunter22", ""]) == \
        "login as admin:(sensitive) failed"


def test_refined_unknowns_are_unknown(svc):
    """Terraform 1.6+ sends `format("disk-%d", count.index)` at validation as a refined
    unknown (msgpack extension 12); it is treated as unknown, not as a bad name."""
    import msgpack

    config = _full(name=msgpack.ExtType(12, b"\x82\x01\xc2\x02\xa5disk-"), size=2)
    raw = pb.DynamicValue(msgpack=msgpack.packb(config))
    resp = svc.ValidateResourceConfig(pb.ValidateResourceConfig.Request(type_name=T, config=raw), None)
    assert list(resp.diagnostics) == []
    planned, _, diags = _plan(svc, None, {**_full(size=2), "name": Unknown})
    assert not diags and planned["name"] is Unknown and planned["size"] == 2


def test_upgrade_state_fits_the_current_schema(svc):
    """A state written when the kind had another field set fits the current schema:
    dropped attributes are removed, new ones are null."""
    import json

    old = {"id": "/root/d", "name": "disk-a", "size": 3, "legacy_field": "x"}
    req = pb.UpgradeResourceState.Request(type_name=T, version=0,
                                          raw_state=pb.RawState(json=json.dumps(old).encode()))
    resp = svc.UpgradeResourceState(req, None)
    state = read_dynamic_value(resp.upgraded_state)
    assert not list(resp.diagnostics)
    assert "legacy_field" not in state and state["name"] == "disk-a" and state["mode"] is None
    assert set(state) == set(_full())


def test_configure_with_unknown_values_is_deferred(tmp_path):
    """A provider block with values known only after apply is not an error at plan time;
    using the DSP before a real configure says what is missing."""
    svc = Servicer(toy_provider())
    req = pb.ConfigureProvider.Request(config=to_dynamic_value({"path": Unknown, "password": None}))
    assert list(svc.ConfigureProvider(req, None).diagnostics) == []
    planned, _, diags = _plan(svc, None, _full(name="disk-a"))
    assert not diags and planned["name"] == "disk-a"  # planning needs no DSP


def test_replacement_discovered_at_apply_is_a_clear_error(svc):
    """A value unknown at plan time that turns out to need a replacement stops the update
    with an error naming the field; the prior state is kept."""
    planned, _, _ = _plan(svc, None, _full(name="disk-a"))
    state, _ = _apply(svc, None, planned)
    _, replace, _ = _plan(svc, state, _full(name="disk-a", tenant=Unknown))
    assert replace == ["tenant"]  # the plan itself already replaces an unknown tenant
    bad = {**state, "tenant": "other"}  # as if Terraform had planned an in-place update
    new, diags = _apply(svc, state, bad)
    assert new == state and diags[0].attribute.steps[0].attribute_name == "tenant"
    assert "run `terraform apply` again" in diags[0].detail


def test_concurrent_reads_share_bulk_reads(svc, tmp_path):
    """Ten refreshes arriving together are served by a few read_many calls, with the same
    answers as single reads; a vanished object still reads as gone."""
    from concurrent.futures import ThreadPoolExecutor

    states = []
    for i in range(10):
        planned, _, _ = _plan(svc, None, _full(name=f"disk-{i}"))
        states.append(_apply(svc, None, planned)[0])
    adapter = svc.app.adapters[T]
    single = [adapter.read(svc.app.context, st) for st in states]
    store = FileStore(ToyConfig(path=str(tmp_path / "store.json")))
    data = store.load()
    del data["/root/disk-3"]
    store.save(data)
    before = len(adapter.batcher.batches)
    adapter.batcher.window = 1.0  # a loaded CI machine may start threads slowly
    with ThreadPoolExecutor(10) as pool:
        got = list(pool.map(lambda st: adapter.read(svc.app.context, st), states))
    assert got[3] is None and [g for i, g in enumerate(got) if i != 3] == \
        [s for i, s in enumerate(single) if i != 3]
    made = adapter.batcher.batches[before:]
    assert sorted(i for b in made for i in b) == sorted(st["id"] for st in states)
    assert len(made) <= 2, made


def test_prior_state_the_core_no_longer_accepts_still_plans(svc):
    """A stored value the current validators reject does not block planning: raw values
    are compared and the configured value is planned."""
    prior = _full(id="/root/Old_Name", name="Old_Name", size=1, tenant="/root", labels={},
                  mode="hybrid", serial="x", generation=1)
    planned, replace, diags = _plan(svc, prior, _full(name="disk-a"))
    assert not diags and replace == ["name"] and planned["name"] == "disk-a"
    assert planned["mode"] == "hybrid"  # unset: keeps the prior value
