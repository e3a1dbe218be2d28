"""One CHAP vocabulary (issue 15): Volume and NodeAttachment both say ``chap_user``,
``chap_secret``, ``chap_initiator_user``, ``chap_initiator_secret`` (the DSP's
target_user_name/target_pswd/initiator_user_name/initiator_pswd), follow one rule for a
secret and one for a user name, and the NodeAttachment's former names
(``chap_username``, ``chap_mutual_username``, ``chap_mutual_secret``) are still read, with
a deprecation warning, by the core and every front end."""

from __future__ import annotations

import attrs
import pytest

import datera_iac.resources  # noqa: F401  (registers the kinds)
from datera_iac.errors import InputError
from datera_iac.fields import ALIASES, aliases_of
from datera_iac.resources.base import kind_for

VOLUME, ATTACH = kind_for("Volume"), kind_for("NodeAttachment")
CHAP_FIELDS = ("chap_user", "chap_secret", "chap_initiator_user", "chap_initiator_secret")
SECRET, MUTUAL = "abcdefghijkl", "zyxwvutsrqpo"


def _vol(**kw):
    return VOLUME.spec_from({"name": "vol-a", "size": 1, **kw})


def _att(**kw):
    return ATTACH.spec_from({"volume_id": "/root/a", **kw})


def test_both_kinds_use_one_vocabulary():
    """The CHAP fields have the same names on both kinds; the former names are aliases
    of the NodeAttachment's fields only, never fields of their own."""
    for kind in (VOLUME, ATTACH):
        names = {f.name for f in attrs.fields(kind.Spec)}
        assert set(CHAP_FIELDS) <= names
        assert not names & {"chap_username", "chap_mutual_username", "chap_mutual_secret"}
    assert aliases_of(ATTACH.Spec) == {"chap_username": "chap_user",
                                       "chap_mutual_username": "chap_initiator_user",
                                       "chap_mutual_secret": "chap_initiator_secret"}
    assert aliases_of(VOLUME.Spec) == {}


@pytest.mark.parametrize("secret", ["abc def ghi jklm", "short", "x" * 17, "abcdefghijkl\n",
                                    "abcdéfghijkl"])
def test_one_secret_rule_for_both_kinds(secret):
    """A secret one kind refuses the other refuses too, with the same message (which never
    holds the secret)."""
    errors = []
    for build in (lambda: _vol(chap_user="user1", chap_secret=secret),
                  lambda: _att(chap_user="user1", chap_secret=secret)):
        with pytest.raises(InputError) as ei:
            build()
        assert ei.value.field == "chap_secret" and secret not in str(ei.value)
        errors.append(ei.value.reason)
    assert errors[0] == errors[1] and "12-16" in errors[0]


@pytest.mark.parametrize("user", ["u", "user;id", "-u", "user\n"])
def test_one_user_name_rule_for_both_kinds(user):
    """The DSP's name rule for CHAP user names, on both kinds (the attachment had none)."""
    for build in (lambda: _vol(chap_user=user, chap_secret=SECRET),
                  lambda: _att(chap_user=user, chap_secret=SECRET)):
        with pytest.raises(InputError) as ei:
            build()
        assert ei.value.field == "chap_user" and "3-64" in ei.value.fix


def test_a_valid_secret_passes_on_both_kinds():
    """12-16 printable characters, punctuation included, are accepted by both kinds."""
    for s in (SECRET, "Ab1!~#$%^&*()_+", "0123456789abcdef"):
        assert _vol(chap_user="user1", chap_secret=s).chap_secret == s
        assert _att(chap_user="user1", chap_secret=s).chap_secret == s


def test_former_names_read_as_the_fields_with_a_warning():
    """The NodeAttachment's former names give the same spec as the new ones, each with a
    DeprecationWarning naming the new name; the old attribute names still read."""
    new = _att(chap_user="user1", chap_secret=SECRET, chap_initiator_user="tuser",
               chap_initiator_secret=MUTUAL)
    with pytest.warns(DeprecationWarning) as record:
        old = _att(chap_username="user1", chap_secret=SECRET, chap_mutual_username="tuser",
                   chap_mutual_secret=MUTUAL)
    assert old == new
    said = sorted(str(w.message) for w in record)
    assert said == ["NodeAttachment.chap_mutual_secret is deprecated: write chap_initiator_secret",
                    "NodeAttachment.chap_mutual_username is deprecated: write chap_initiator_user",
                    "NodeAttachment.chap_username is deprecated: write chap_user"]
    assert (old.chap_username, old.chap_mutual_username, old.chap_mutual_secret) == (
        "user1", "tuser", MUTUAL)


def test_an_error_names_the_field_as_written():
    """An invalid value under a former name is reported under that name; both names set
    differently is an error naming the former one; set equal is accepted."""
    with pytest.warns(DeprecationWarning), pytest.raises(InputError) as ei:
        _att(chap_username="u", chap_secret=SECRET)
    assert ei.value.field == "chap_username"
    with pytest.raises(InputError) as ei:
        _att(chap_username="user1", chap_user="user2", chap_secret=SECRET)
    assert ei.value.field == "chap_username" and "both set" in ei.value.reason
    assert ei.value.fix == "keep only chap_user; chap_username is its deprecated name"
    with pytest.warns(DeprecationWarning):
        assert _att(chap_username="user1", chap_user="user1", chap_secret=SECRET).chap_user == "user1"


def test_field_for_maps_former_names():
    """``Kind.field_for`` (used by the engine's stack readers) maps a former name to its
    field with a warning, a field to itself, anything else to None."""
    assert ATTACH.field_for("chap_user") == "chap_user"
    with pytest.warns(DeprecationWarning):
        assert ATTACH.field_for("chap_mutual_secret") == "chap_initiator_secret"
    assert ATTACH.field_for("colour") is None and VOLUME.field_for("chap_username") is None


def test_the_aliases_metadata_is_what_front_ends_read():
    """The former names live in the field metadata (``ALIASES``), nowhere else."""
    f = attrs.fields_dict(ATTACH.Spec)["chap_initiator_secret"]
    assert f.metadata[ALIASES] == ("chap_mutual_secret",)


def test_pulumi_check_reads_former_names():
    """The Pulumi provider's Check takes the former camelCase names and returns the inputs
    under the new ones; a bad value under a former name fails on that property."""
    from datera_iac.pulumi._adapter import ResourceAdapter

    pa = ResourceAdapter(ATTACH)
    urn = "urn:pulumi:dev::p::datera:index:NodeAttachment::att"
    with pytest.warns(DeprecationWarning):
        inputs, failures = pa.check(urn, {}, {"volumeId": "/root/a", "chapUsername": "user1",
                                              "chapSecret": SECRET})
    assert not failures and inputs["chapUser"] == "user1" and "chapUsername" not in inputs
    with pytest.warns(DeprecationWarning):
        _, failures = pa.check(urn, {}, {"volumeId": "/root/a", "chapUsername": "u",
                                         "chapSecret": SECRET})
    assert [f.property for f in failures] == ["chapUsername"]


def test_pulumi_diff_of_an_unknown_former_name_is_the_fields_change():
    """An input under a former name not known yet (preview) diffs as its field: a change
    that replaces the attachment (chap_user is ``replace``), not a plan error."""
    from datera_iac.pulumi._adapter import ResourceAdapter
    from datera_iac.pulumi._codec import UNKNOWN

    pa = ResourceAdapter(ATTACH)
    urn = "urn:pulumi:dev::p::datera:index:NodeAttachment::att"
    olds, _ = pa.check(urn, {}, {"volumeId": "/root/a", "chapUser": "user1",
                                 "chapSecret": SECRET})
    news, failures = pa.check(urn, olds, {"volumeId": "/root/a", "chapUsername": UNKNOWN,
                                          "chapSecret": SECRET})
    d = pa.diff(urn, olds, news)
    assert not failures and d.replaces == ("chapUser",) and not d.reason, d
