"""A field's former name in Terraform (issue 15, one CHAP vocabulary): ``chap_username``,
``chap_mutual_username``, ``chap_mutual_secret`` (+ ``_wo``, ``_wo_version``) of
``datera_node_attachment`` stay in the schema, deprecated and never computed; a
configuration written with them plans as with the new names, echoes them as written, keeps
write-only secrets out of the plan, and switching to the new names plans no replacement."""

from __future__ import annotations

import pytest
from test_write_only import CHAP, MUTUAL, _full, _known, _plan, _validate

from datera_iac_tf.provider import DateraProvider
from datera_iac_tf.servicer import Servicer

A = "datera_node_attachment"
FORMER = ("chap_username", "chap_mutual_username", "chap_mutual_secret", "chap_mutual_secret_wo",
          "chap_mutual_secret_wo_version")


@pytest.fixture(scope="module")
def svc() -> Servicer:
    return Servicer(DateraProvider())


def test_former_names_are_deprecated_optional_attributes(svc):
    """Each former name is an optional, deprecated, non-computed attribute of the resource,
    and none is in the data source."""
    from datera_iac_tf.schema import kind_schema
    from datera_iac.resources.base import kind_for

    ks = kind_schema(kind_for("NodeAttachment"))
    attrs_ = {f.name: f for f in ks.fields()}
    for name in FORMER:
        f = attrs_[name]
        assert f.deprecated and f.optional and not f.computed and not f.required, name
    assert attrs_["chap_mutual_secret_wo"].write_only and attrs_["chap_mutual_secret"].sensitive
    assert not {f.name for f in ks.data_source_fields({})} & set(FORMER)


def test_a_config_with_former_names_plans_like_the_new_names(svc):
    """Former names plan the same object as the new ones: the former names keep the
    configured values, the new ones mirror them, the write-only secret is nowhere."""
    old = _full(svc, A, volume_id="/root/x", chap_username="user1", chap_secret_wo=CHAP,
                chap_secret_wo_version=1, chap_mutual_username="tuser",
                chap_mutual_secret_wo=MUTUAL, chap_mutual_secret_wo_version=1)
    planned, replace, diags = _plan(svc, A, None, old)  # Terraform warns: deprecated
    assert not diags and replace == []
    assert planned["chap_username"] == planned["chap_user"] == "user1"
    assert planned["chap_mutual_username"] == planned["chap_initiator_user"] == "tuser"
    assert planned["chap_mutual_secret_wo_version"] == 1
    assert planned["chap_initiator_secret_wo_version"] is None  # the configuration's null
    assert CHAP not in repr(planned) and MUTUAL not in repr(planned)

    # the next plan with the same configuration: nothing to do
    prior = {**_known(planned), "id": "att-1"}
    same, replace, diags = _plan(svc, A, prior, old)
    assert not diags and replace == [] and same == prior

    # the configuration rewritten with the new names: no replacement
    new = _full(svc, A, volume_id="/root/x", chap_user="user1", chap_secret_wo=CHAP,
                chap_secret_wo_version=1, chap_initiator_user="tuser",
                chap_initiator_secret_wo=MUTUAL, chap_initiator_secret_wo_version=1)
    moved, replace, diags = _plan(svc, A, prior, new)
    assert not diags and replace == []
    assert all(moved[n] is None for n in FORMER)
    assert moved["chap_initiator_secret_wo_version"] == 1 and moved["chap_user"] == "user1"

    # a changed user under the former name replaces, shown on the name written
    _, replace, diags = _plan(svc, A, prior, {**old, "chap_username": "user2"})
    assert not diags and "chap_username" in replace


def test_both_names_set_differently_is_an_error(svc):
    """A former name and its new name with different values: one error naming the former."""
    cfg = _full(svc, A, volume_id="/root/x", chap_username="user1", chap_user="user2",
                chap_secret_wo=CHAP, chap_secret_wo_version=1)
    [d] = _validate(svc, A, cfg, caps=True)
    assert "chap_username and chap_user are both set" in d.summary + d.detail
