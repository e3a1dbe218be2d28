"""The provider's generic derivation over gRPC, with a test-only kind (no DSP).

Each test drives the in-process server through ``pulumirpc.ResourceProvider`` as the engine
would and checks what crosses the wire: check failures, normalized inputs, diffs, preview
unknowns, secrets, error statuses."""

from __future__ import annotations

import grpc
import pytest
from datera_iac.pulumi.testing import plain, struct
from pulumi.runtime.proto import provider_pb2 as pb

from datera_iac.pulumi._codec import UNKNOWN, Secret

T = "test:index:Disk"


def test_plugin_info_and_configure(toy):
    """GetPluginInfo gives the version; Configure accepts secrets and supports preview."""
    assert toy.GetPluginInfo().version == "9.9.9"
    resp = toy.configure(sanIp="127.0.0.1", sanPassword=Secret("pw"), version="1.0.0")
    assert resp.acceptSecrets and resp.supportsPreview
    assert not resp.acceptResources and not resp.acceptOutputs


def test_check_normalizes_and_defaults_name(toy):
    """Check returns the core's normalized inputs: defaults filled, name from the URN."""
    resp = toy.check(T, "disk-a", {"size": 10})
    assert list(resp.failures) == []
    assert plain(resp.inputs) == {"name": "disk-a", "size": 10, "tags": {}, "mode": "hybrid"}


def test_check_failures_name_the_property(toy):
    """Bad input comes back as CheckFailures on the Pulumi property name, with the fix."""
    bad = toy.check(T, "disk-a", {"size": 0})
    assert [f.property for f in bad.failures] == ["size"]
    assert "size" in bad.failures[0].reason
    typo = toy.check(T, "disk-a", {"size": 1, "sizze": 2})
    assert typo.failures[0].property == "sizze"
    assert "known properties: name, size, tags, password, mode" in typo.failures[0].reason
    enum = toy.check(T, "disk-a", {"size": 1, "mode": "fast"})
    assert enum.failures[0].property == "mode"


def test_check_refuses_a_list_or_map_for_a_text_property(toy):
    """A list or map given for a string property is a CheckFailure naming the property,
    not its printed form ("['a', 'b']") stored and sent; a secret's value is not echoed."""
    bad = toy.check(T, "disk-a", {"size": 1, "password": ["hunter22hunter", "x"]})
    assert [f.property for f in bad.failures] == ["password"]
    assert "expected a string, got a list" in bad.failures[0].reason
    assert "hunter22" not in bad.failures[0].reason
    tags = toy.check(T, "disk-a", {"size": 1, "tags": {"team": {"a": "b"}}})
    assert [f.property[:4] for f in tags.failures] == ["tags"]
    assert "expected a string, got a mapping" in tags.failures[0].reason


def test_check_marks_sensitive_inputs_secret(toy):
    """A sensitive field is returned as a secret even when the program sent it in clear."""
    resp = toy.check(T, "d", {"name": "ddd", "size": 1, "password": "hunter2"})
    assert plain(resp.inputs)["password"] == Secret("hunter2")


def test_check_with_unknown_defers_validation(toy):
    """While a value is unknown (preview), Check passes the inputs through untouched."""
    resp = toy.check(T, "d", {"name": "ddd", "size": UNKNOWN})
    assert list(resp.failures) == []
    assert plain(resp.inputs)["size"] == UNKNOWN


def test_lifecycle(toy, toy_store):
    """Preview create, create, diff none/update/replace, update, read drift, delete, import."""
    toy.configure()
    inputs = plain(toy.check(T, "d", {"name": "ddd", "size": 5, "password": "pw"}).inputs)

    pre = toy.create(T, "d", inputs, preview=True)
    assert pre.id == "" and toy_store == {}
    pstate = plain(pre.properties)
    assert pstate["iqn"] == UNKNOWN and pstate["diskId"] == UNKNOWN and pstate["size"] == 5

    made = toy.create(T, "d", inputs, timeout=42)
    rid, state = made.id, plain(made.properties)
    assert rid in toy_store and toy_store[rid]["timeouts"].create == 42
    assert state["iqn"] == "iqn.2013-05.com.daterainc:ddd" and state["diskId"] == rid
    assert state["password"] == Secret("pw") and state["token"] == Secret(f"tok-{rid}")

    none = toy.diff(T, "d", rid, state, inputs)
    assert none.changes == pb.DiffResponse.DIFF_NONE and list(none.replaces) == []

    grown = {**inputs, "size": 8, "tags": {"a": "b"}}
    upd = toy.diff(T, "d", rid, state, grown)
    assert upd.changes == pb.DiffResponse.DIFF_SOME and list(upd.replaces) == []
    assert {k: v.kind for k, v in upd.detailedDiff.items()} == {
        "size": pb.PropertyDiff.UPDATE, "tags": pb.PropertyDiff.UPDATE}

    renamed = {**inputs, "name": "eee"}
    rep = toy.diff(T, "d", rid, state, renamed)
    assert list(rep.replaces) == ["name"] and rep.deleteBeforeReplace
    assert rep.detailedDiff["name"].kind == pb.PropertyDiff.UPDATE_REPLACE

    unknown = toy.diff(T, "d", rid, state, {**inputs, "name": UNKNOWN})
    assert list(unknown.replaces) == ["name"]

    prev = plain(toy.update(T, "d", rid, state, grown, preview=True).properties)
    assert prev["size"] == 8 and toy_store[rid]["spec"].size == 5

    state = plain(toy.update(T, "d", rid, state, grown).properties)
    assert state["size"] == 8 and toy_store[rid]["spec"].size == 8

    # drift: someone grew it out of band; refresh reports the DSP's value
    toy_store[rid]["spec"] = __import__("attrs").evolve(toy_store[rid]["spec"], size=12)
    got = toy.read(T, "d", rid, state, grown)
    assert got.id == rid and plain(got.properties)["size"] == 12
    assert plain(got.inputs)["size"] == 12 and "mode" in plain(got.inputs)

    # import by name: the full spec comes back as inputs
    imp = toy.read(T, "d2", "ddd")
    assert imp.id == rid and plain(imp.inputs)["name"] == "ddd"
    assert plain(imp.inputs)["password"] == Secret("pw")
    assert toy.read(T, "d3", "nope").id == ""

    toy.delete(T, "d", rid, state)
    assert toy_store == {}
    assert toy.read(T, "d", rid, state, grown).id == ""  # gone: the engine drops it
    toy.delete(T, "d", rid, state)  # already gone is success


def test_shrink_is_a_clear_check_failure(toy):
    """A plan-time error from the kind's diff is a check failure on the property (so
    preview and up stop on it with the kind's message); Diff, which the engine's refresh
    calls with the sides swapped to show drift, reports the property as an update."""
    toy.configure()
    inputs = plain(toy.check(T, "d", {"name": "ddd", "size": 5}).inputs)
    state = plain(toy.create(T, "d", inputs).properties)
    checked = toy.check(T, "d", {**inputs, "size": 4}, olds=inputs)
    assert [f.property for f in checked.failures] == ["size"]
    # the engine prints it as "<type> resource 'd': property size value ... has a problem:"
    assert checked.failures[0].reason == "cannot shrink from 5 to 4 (grow it or replace the disk)"
    assert "Traceback" not in checked.failures[0].reason
    d = toy.diff(T, "d", "x", state, {**inputs, "size": 4})
    assert d.changes == pb.DiffResponse.DIFF_SOME and list(d.diffs) == ["size"]


def test_dsp_errors_map_to_status(toy):
    """A DSP error keeps its message and gets a matching status; no traceback."""
    toy.configure()
    inputs = plain(toy.check(T, "d", {"name": "ddd", "size": 5}).inputs)
    toy.create(T, "d", inputs)
    with pytest.raises(grpc.RpcError) as e:
        toy.create(T, "d2", inputs)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert e.value.details().startswith("test:index:Disk 'd2': ")
    assert "POST /disks: HTTP 409 disk ddd exists" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        toy.update(T, "d", "disk-missing", inputs, inputs)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_type_and_unconfigured(toy):
    """An unknown token fails with the known ones; a real call before Configure fails."""
    with pytest.raises(grpc.RpcError) as e:
        toy.check("test:index:Nope", "x", {})
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "test:index:Disk" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        toy.create(T, "d", {"name": "ddd", "size": 1})
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not configured" in e.value.details()


def test_preview_makes_no_context(toy):
    """Preview create/update never builds the DSP context (no login during preview)."""
    toy.configure(sanIp="127.0.0.1")
    toy.create(T, "d", {"name": "ddd", "size": 1}, preview=True)
    toy.update(T, "d", "x", {"name": "ddd", "size": 1}, {"name": "ddd", "size": 2}, preview=True)
    assert toy.configs == []
    toy.create(T, "d", {"name": "ddd", "size": 1})
    assert toy.configs == [{"san_ip": "127.0.0.1"}]


def test_secret_config_is_revealed_only_to_the_core(toy):
    """A secret config value reaches the context factory in clear, never echoed back."""
    toy.configure(sanPassword=Secret("s3cret"), sanLogin="admin")
    toy.create(T, "d", {"name": "ddd", "size": 1})
    assert toy.configs[-1] == {"san_password": "s3cret", "san_login": "admin"}


def test_check_config(toy):
    """CheckConfig validates with DateraConfig and marks the password secret."""
    ok = toy.CheckConfig(pb.CheckRequest(
        urn="urn:pulumi:dev::proj::pulumi:providers:datera::default",
        news=struct({"sanIp": "10.0.0.1", "sanPassword": "pw"})))
    assert list(ok.failures) == []
    assert plain(ok.inputs)["sanPassword"] == Secret("pw")
    bad = toy.CheckConfig(pb.CheckRequest(
        urn="urn:pulumi:dev::proj::pulumi:providers:datera::default",
        news=struct({"sanIp": "10.0.0.1", "sanPassword": "pw", "datera503Timeout": -3})))
    assert [f.property for f in bad.failures] == ["datera503Timeout"]
    assert "datera_503_timeout" in bad.failures[0].reason


def test_diff_config(toy):
    """A changed endpoint is an in-place provider update, never a replacement."""
    d = toy.DiffConfig(pb.DiffRequest(
        urn="urn:pulumi:dev::proj::pulumi:providers:datera::default",
        olds=struct({"sanIp": "a", "version": "1"}),
        news=struct({"sanIp": "b", "version": "2"})))
    assert d.changes == pb.DiffResponse.DIFF_SOME and list(d.diffs) == ["sanIp"]
    assert list(d.replaces) == []


def test_ignore_changes_drops_the_property(toy):
    """A property in ignoreChanges is left out of the diff (the rest still counts)."""
    toy.configure()
    inputs = plain(toy.check(T, "d", {"name": "ddd", "size": 5}).inputs)
    state = plain(toy.create(T, "d", inputs).properties)
    news = {**inputs, "size": 6, "tags": {"x": "y"}}
    d = toy.Diff(pb.DiffRequest(urn="urn:pulumi:dev::proj::test:index:Disk::d", id="x",
                                olds=struct(state), news=struct(news), ignoreChanges=["tags"]))
    assert list(d.diffs) == ["size"]
    d = toy.Diff(pb.DiffRequest(urn="urn:pulumi:dev::proj::test:index:Disk::d", id="x",
                                olds=struct(state), news=struct(news),
                                ignoreChanges=["tags", "size"]))
    assert d.changes == pb.DiffResponse.DIFF_NONE


def test_configure_from_legacy_variables(toy):
    """Engines that send only ``variables`` (JSON strings for non-strings) configure too."""
    toy.Configure(pb.ConfigureRequest(variables={
        "datera:config:sanIp": "10.1.1.1", "datera:config:datera503Timeout": "30",
        "datera:config:tlsVerify": "false"}, acceptSecrets=True))
    toy.create(T, "d", {"name": "ddd", "size": 1})
    assert toy.configs[-1] == {"san_ip": "10.1.1.1", "datera_503_timeout": 30,
                               "tls_verify": False}


def test_state_from_an_older_version(toy):
    """A property the kind no longer has, left in old state, does not break the diff."""
    toy.configure()
    inputs = plain(toy.check(T, "d", {"name": "ddd", "size": 5}).inputs)
    state = plain(toy.create(T, "d", inputs).properties)
    d = toy.diff(T, "d", "x", {**state, "retiredField": "x"}, inputs)
    assert d.changes == pb.DiffResponse.DIFF_NONE


def test_a_value_sent_as_secret_stays_secret(toy, toy_store):
    """Any input the program marks secret is secret in the checked inputs and the state,
    and reaches the kind in clear."""
    toy.configure()
    inputs = plain(toy.check(T, "d", {"name": Secret("ddd"), "size": 1}).inputs)
    assert inputs["name"] == Secret("ddd") and inputs["size"] == 1
    made = toy.create(T, "d", inputs)
    assert plain(made.properties)["name"] == Secret("ddd")
    assert toy_store[made.id]["spec"].name == "ddd"


def test_unknown_configuration(toy):
    """A configuration value still unknown (preview) lets preview run but stops real calls
    with a clear error."""
    from datera_iac.pulumi._codec import UNKNOWN as U

    toy.configure(sanPassword=U)
    toy.create(T, "d", {"name": "ddd", "size": 1}, preview=True)
    with pytest.raises(grpc.RpcError) as e:
        toy.create(T, "d", {"name": "ddd", "size": 1})
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not known yet" in e.value.details()


def test_defaulted_name_failure_says_so(toy):
    """When the resource name, used as the default DSP name, is not a valid name, the
    failure says where the name came from and what to do."""
    bad = toy.check(T, "X", {"size": 1})
    assert bad.failures[0].property == "name"
    assert "defaulted to the resource name 'X': set name explicitly" in bad.failures[0].reason
