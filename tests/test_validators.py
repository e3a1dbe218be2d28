"""One validator kit (issue 15): the name patterns and the boolean words are defined once,
in ``datera_iac.validators``, and every kind, the configuration and the stack readers use
those objects (no second definition to drift)."""

from __future__ import annotations

import pytest

from datera_iac import cinder, validators
from datera_iac.resources import _util, layout


def test_the_patterns_are_the_kits():
    """cinder, the kinds' helpers and the layout module hand out the kit's own objects."""
    assert cinder.NAME_RE is validators.NAME_RE is _util.NAME_RE
    assert layout.AI_NAME_RE is validators.AI_NAME_RE is _util.AI_NAME_RE
    assert _util.SNAP_TS_RE is validators.SNAP_TS_RE
    assert _util.check is validators.check and _util.pattern is validators.pattern


@pytest.mark.parametrize(("text", "want"), [
    ("true", True), ("Yes", True), (" on ", True), ("1", True), ("y", True), ("T", True),
    ("false", False), ("NO", False), ("off", False), ("0", False), ("n", False),
    (True, True), (False, False)])
def test_parse_bool_reads_the_words(text, want):
    """Each word of the one boolean vocabulary, any case, surrounding blanks ignored."""
    assert validators.parse_bool(text) is want


@pytest.mark.parametrize("text", ["maybe", "", "2", None, 1])
def test_parse_bool_refuses_the_rest(text):
    """Anything else is a ValueError with the same short reason everywhere."""
    with pytest.raises(ValueError, match="^expected true or false$"):
        validators.parse_bool(text)


def test_every_reader_uses_the_one_parser():
    """The configuration, a stack file's config value, a program's config and a kind's
    boolean input agree on the words (they used to: config 6 words, stack and program 3,
    the VolumeType 'true'/'false' only; a program read 'on' and 'maybe' as False)."""
    from datera_iac.config import DateraConfig
    from datera_iac.engine.program import Config
    from datera_iac.engine.yamlstack import _coerce
    from datera_iac.resources.base import kind_for

    def err(msg, line):
        return ValueError(msg)

    for word, want in (("on", True), ("no", False)):
        assert DateraConfig.from_mapping({"san_ip": "h", "san_password": "p",
                                          "datera_debug": word},
                                         use_env=False).datera_debug is want
        assert Config({"flag": word}).get_bool("flag") is want
        assert _coerce(word, "boolean", "x", err, 1) is want
        vt = kind_for("VolumeType").spec_from({"name": "gold", "is_public": word})
        assert vt.is_public is want
    with pytest.raises(ValueError):
        _coerce("maybe", "boolean", "x", err, 1)
    with pytest.raises(ValueError):
        Config({"flag": "maybe"}).get_bool("flag")
