"""Terraform create intents (issue 16, case 4): an intent is dropped as soon as Terraform
shows it holds the object (a read, an update, a delete of it), and a left-over intent
adopts only an object carrying exactly the token its create wrote - never a same-named
object someone else made. Driven through the provider's RPCs against the simulator."""

from __future__ import annotations

from typing import Any

import pytest
from tf.gen import tfplugin_pb2 as pb
from tf.utils import read_dynamic_value, to_dynamic_value
from tfharness import servicer_on

from datera_iac.resources import kind_for
from datera_iac.resources.base import Context, creating_with, new_create_token, token_uuid

T = {"Volume": "datera_volume", "Tenant": "datera_tenant", "VolumeType": "datera_volume_type"}
CFG = {"Volume": {"name": "same-name", "size": 1}, "Tenant": {"name": "same-name"},
       "VolumeType": {"name": "same_name", "materialize": True, "replica_count": 2}}


@pytest.fixture
def svc(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_DATA_DIR", str(tmp_path / "tfdata"))
    return servicer_on(sim)


def _cfg(svc: Any, kind: str) -> dict[str, Any]:
    cfg = {f.name: None for f in svc.app.adapters[T[kind]].schema.fields()}
    cfg.update(CFG[kind])
    return cfg


def _plan(svc: Any, kind: str, prior: Any, cfg: Any) -> Any:
    plan = svc.PlanResourceChange(pb.PlanResourceChange.Request(
        type_name=T[kind], prior_state=to_dynamic_value(prior),
        proposed_new_state=to_dynamic_value(cfg), config=to_dynamic_value(cfg)), None)
    assert not list(plan.diagnostics), list(plan.diagnostics)
    return plan


def _apply(svc: Any, kind: str, prior: Any, cfg: Any) -> tuple[dict[str, Any] | None, list[Any]]:
    plan = _plan(svc, kind, prior, cfg)
    resp = svc.ApplyResourceChange(pb.ApplyResourceChange.Request(
        type_name=T[kind], prior_state=to_dynamic_value(prior), planned_state=plan.planned_state,
        config=to_dynamic_value(cfg)), None)
    state = read_dynamic_value(resp.new_state) if resp.new_state.msgpack else None
    return state, list(resp.diagnostics)


def _intents(tmp_path) -> list[str]:
    d = tmp_path / "tfdata" / "datera-intents"
    return sorted(p.name for p in d.glob("*.json")) if d.is_dir() else []


def _interrupted(svc: Any, kind: str, token: str | None) -> None:
    """What a provider killed during a create leaves: its intent (with its token)."""
    adapter = svc.app.adapters[T[kind]]
    planned = read_dynamic_value(_plan(svc, kind, None, _cfg(svc, kind)).planned_state)
    key = adapter._intent_key(planned)
    adapter.intents.begin(key, kind_for(kind).token, CFG[kind]["name"], token)


def _foreign(svc: Any, kind: str) -> None:
    c = svc.app.client
    if kind == "Volume":
        c.post("/app_instances", {"name": "same-name", "storage_instances": [{
            "name": "storage-1", "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1}]}]})
    elif kind == "Tenant":
        c.post("/tenants", {"name": "same-name", "descr": "theirs"}, tenant="/root")
    else:
        c.post("/app_templates", {"name": "same_name", "descr": "theirs", "storage_templates": [
            {"name": "storage-1", "volume_templates": [
                {"name": "volume-1", "size": 1, "replica_count": 2}]}]})


def test_intent_is_dropped_once_terraform_holds_the_object(svc, tmp_path):
    """The issue's repro: the intent used to survive apply, refresh and destroy (its key,
    from the planned inputs, never matched the refreshed state's). Now the create records
    the id in it and the first read of that id drops it; an update or delete does too."""
    state, diags = _apply(svc, "Volume", None, _cfg(svc, "Volume"))
    assert not diags and state is not None
    assert len(_intents(tmp_path)) == 1  # kept until Terraform shows it recorded the id
    resp = svc.ReadResource(pb.ReadResource.Request(
        type_name=T["Volume"], current_state=to_dynamic_value(state)), None)
    assert not list(resp.diagnostics)
    assert _intents(tmp_path) == []
    # a create whose next call is the destroy (no refresh in between)
    state2, _ = _apply(svc, "Volume", None, {**_cfg(svc, "Volume"), "name": "other-vol"})
    assert len(_intents(tmp_path)) == 1
    _, diags = _apply(svc, "Volume", state2, None)
    assert not diags and _intents(tmp_path) == []


@pytest.mark.parametrize("kind", sorted(T))
def test_left_over_intent_never_adopts_someone_elses_object(svc, tmp_path, kind):
    """A provider killed before its POST left an intent; someone else then made a
    same-named object. The next apply meets a conflict with an import hint: it records
    nothing (before: the Volume was adopted by name, and `terraform destroy` deleted it)."""
    _interrupted(svc, kind, new_create_token())
    _foreign(svc, kind)
    state, diags = _apply(svc, kind, None, _cfg(svc, kind))
    assert state is None or not state.get("id"), state
    assert len(diags) == 1 and "import" in diags[0].detail + diags[0].summary, diags
    assert "did not make it" in diags[0].detail or "already exists" in diags[0].detail
    assert _intents(tmp_path) == []


@pytest.mark.parametrize("kind", sorted(T))
def test_left_over_intent_adopts_the_object_with_its_token(svc, tmp_path, kind):
    """The killed create did reach the DSP: its object carries the intent's token and
    the next apply adopts it (no twin, no conflict)."""
    token = "1234abcd" * 4
    _interrupted(svc, kind, token)
    k = kind_for(kind)
    ctx = Context(client=svc.app.client, config=svc.app.client.config)
    with creating_with(token):
        made = k.create(ctx, k.spec_from(CFG[kind]))
    state, diags = _apply(svc, kind, None, _cfg(svc, kind))
    assert not diags and state["id"] == made.id
    if kind == "Volume":
        [ai] = list(svc.app.client.list("/app_instances"))
        assert ai["uuid"] == token_uuid(token)


def test_two_writers_of_one_record_do_not_rename_each_others_file(tmp_path, monkeypatch):
    """Two creates with one key (identical inputs) or two provider processes write the same
    record: each writes its own temporary file. With one fixed name, the second writer's
    rename took the first one's file away (FileNotFoundError: a traceback for a create)."""
    import threading

    from datera_iac.resources import intents

    journal = intents.IntentJournal(tmp_path)
    real_fsync, nested = intents.os.fsync, []

    def fsync(fd: int) -> None:  # a second writer (thread) runs while the first syncs
        real_fsync(fd)
        if not nested:
            nested.append(threading.Thread(target=journal.begin, args=(
                "k", "datera:index:Volume", "twin", "token-2")))
            nested[0].start()
            nested[0].join()

    monkeypatch.setattr(intents.os, "fsync", fsync)
    journal.begin("k", "datera:index:Volume", "twin", "token-1")
    assert nested and journal.token("k") == "token-1"  # the first writer's rename came last
    assert [p.name for p in journal.dir.iterdir()] == ["k.json"]
