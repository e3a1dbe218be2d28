"""Ownership (issue 16, case 4): crash recovery adopts only an object carrying exactly the
token the interrupted create wrote, never one found by its name."""

from __future__ import annotations

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.engine.plan import recover_pending
from datera_iac.engine.state import PendingOp, State
from datera_iac.resources import kind_for
from datera_iac.resources.base import Context, creating_with, new_create_token, token_uuid
from datera_iac.resources._util import with_owner_mark


@pytest.fixture
def ctx(sim):
    c = DspClient(DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                             "san_password": "password"}, use_env=False))
    yield Context(client=c, config=c.config)
    c.close()


def _pending(name: str, kind: str, spec: dict, token: str | None) -> State:
    st = State(stack="dev")
    op = PendingOp(op_id="op1", op="create", name=name, type=kind_for(kind).token, spec=spec,
                   token=token)
    st.apply_delta({"pending_add": [op.to_json()]})
    return st


def _volume(ctx, name: str, uuid: str | None = None) -> dict:
    body = {"name": name, "storage_instances": [{"name": "storage-1", "volumes": [
        {"name": "volume-1", "size": 1, "replica_count": 1}]}]}
    if uuid:
        body["uuid"] = uuid
    return ctx.client.post("/app_instances", body)


# (kind, spec the journal holds, what someone else made under that name)
def _foreign(ctx, kind: str) -> None:
    if kind == "Volume":
        _volume(ctx, "same-name")
    elif kind == "Tenant":
        # made by another datera-iac stack: it carries a token, just not this create's
        ctx.client.post("/tenants", {"name": "same-name",
                                     "descr": with_owner_mark("theirs", new_create_token())},
                        tenant="/root")
    else:
        ctx.client.post("/app_templates", {
            "name": "same_name", "descr": with_owner_mark(None, new_create_token()),
            "storage_templates": [{"name": "storage-1", "volume_templates": [
                {"name": "volume-1", "size": 1, "replica_count": 2}]}]})


SPECS = {"Volume": {"name": "same-name", "size": 1},
         "Tenant": {"name": "same-name"},
         "VolumeType": {"name": "same_name", "materialize": True, "replica_count": 2}}


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_recovery_never_adopts_a_same_named_object_of_someone_else(ctx, kind):
    """A create journaled with its token, killed before its POST; someone else then made
    a same-named object (for Tenant/VolumeType: another datera-iac stack, so it carries
    a token too, another one). Recovery clears the intent and adopts nothing (before: the
    Volume was adopted by name, the Tenant/template by any datera-iac token)."""
    _foreign(ctx, kind)
    st = _pending("r", kind, SPECS[kind], new_create_token())
    deltas, notes = recover_pending(ctx, st, {})
    assert "r" not in st.resources and not st.pending, (deltas, notes)
    assert "had not completed" in notes[0]
    # an old journal without a token proves nothing either
    st = _pending("r", kind, SPECS[kind], None)
    recover_pending(ctx, st, {})
    assert "r" not in st.resources


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_recovery_adopts_the_object_carrying_its_own_token(ctx, kind):
    """The create did reach the DSP before the process died: the object carries the
    journaled token, and recovery records it."""
    k = kind_for(kind)
    token = new_create_token()
    with creating_with(token):
        made = k.create(ctx, k.spec_from(SPECS[kind]))
    st = _pending("r", kind, SPECS[kind], token)
    recover_pending(ctx, st, {})
    assert st.resources["r"].id == made.id
    if kind == "Volume":
        assert ctx.client.get(f"/app_instances/{made.id.rsplit('/', 1)[-1]}")["uuid"] == \
            token_uuid(token)
