"""redact(): the one masking function."""

from hypothesis import given, settings
from hypothesis import strategies as st

from datera_iac.dsp import MASK, is_secret_key, redact

_TEXT = st.text(alphabet=st.characters(blacklist_characters="*", codec="utf-8"), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["name", "password", "target_pswd", "descr", "key"]) | _TEXT,
                      inner, max_size=4),
    max_leaves=20,
)


def test_masks_secret_keys_at_any_depth():
    """Passwords, CHAP pswd fields, tokens, keys are masked in nested bodies and headers."""
    body = {
        "name": "admin", "password": "pw",
        "storage_instances": [{"auth": {"type": "chap", "target_user_name": "u",
                                        "target_pswd": "t", "initiator_pswd": "i"}}],
        "Auth-Token": "abc", "key": "k", "secret_key": "s", "chap_password": "c",
    }
    out = redact(body)
    auth = out["storage_instances"][0]["auth"]
    assert (out["password"], auth["target_pswd"], auth["initiator_pswd"]) == (MASK,) * 3
    assert (out["Auth-Token"], out["key"], out["secret_key"], out["chap_password"]) == (MASK,) * 4
    assert out["name"] == "admin" and auth["target_user_name"] == "u"
    assert body["password"] == "pw"  # a copy


def test_removes_known_secrets_from_text():
    """Known clear-text secrets are cut out of any string, longest first."""
    assert redact("login pw-1 failed for pw-12", ["pw-1", "pw-12", None, ""]) == "login *** failed for ***"
    assert redact(["x pw-1"], ["pw-1"]) == ["x ***"]


def test_hidden_and_empty_values_kept():
    """The DSP's own "(hidden)" and empty values are left alone (nothing to hide)."""
    assert redact({"target_pswd": "(hidden)", "initiator_pswd": ""}) == {
        "target_pswd": "(hidden)", "initiator_pswd": ""}


def test_is_secret_key():
    """Key names that hold secrets."""
    assert all(map(is_secret_key, ["password", "target_pswd", "Auth-Token", "key", "api_key"]))
    assert not any(map(is_secret_key, ["name", "keys_total", "monkey", "path", "initiator_user_name"]))


@settings(deadline=None)  # no timing flakes on a loaded CI machine
@given(_JSON, st.text(alphabet="abcXYZ019-_", min_size=3, max_size=10))
def test_known_secret_never_survives(value, secret):
    """Whatever the structure, a known secret's clear text is absent from the redacted dump."""
    planted = {"message": f"login failed for {secret}", "items": [value, secret]}
    assert not [t for t in _strings(redact(planted, [secret])) if secret in t]


def _strings(value):
    """Every string in a JSON-like value, mapping keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
