"""redact(): the one masking function."""

from datera_iac.dsp import MASK, is_secret_key, redact


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
