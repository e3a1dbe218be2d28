"""The kind contract in datera_iac.resources.base: metadata, structuring errors, diffs."""

import attrs
import pytest
from attrs import validators as v

from datera_iac.errors import InputError
from datera_iac.resources.base import (
    REPLACE,
    SENSITIVE,
    Kind,
    camel,
    diff_specs,
    out_field,
    snake,
    spec_field,
)


@attrs.frozen(kw_only=True)
class _Spec:
    name: str = spec_field(doc="Name.", replace=True, validator=v.matches_re(r"[a-z]{3,}"))
    size: int = spec_field(doc="Size in GiB.", default=1, validator=v.ge(1))
    secret: str | None = spec_field(doc="A secret.", default=None, sensitive=True)


@attrs.frozen(kw_only=True)
class _Out:
    id: str | None = out_field(doc="Id.")


class _Toy(Kind):
    name = "Toy"
    token = "datera:index:Toy"
    tf_type = "datera_toy"
    Spec = _Spec
    Outputs = _Out

    def read(self, ctx, id):  # pragma: no cover - not exercised
        return None

    create = update = delete = find = adopt = read


def test_metadata_is_readable():
    """Adapters read replace/sensitive from field metadata, and secrets stay out of repr."""
    f = attrs.fields(_Spec)
    assert f.name.metadata[REPLACE] is True
    assert f.secret.metadata[SENSITIVE] is True
    assert "hunter2" not in repr(_Spec(name="abc", secret="hunter2"))


def test_spec_from_names_kind_field_and_fix():
    """An unknown key and a bad value both raise InputError naming kind, field and fix."""
    toy = _Toy()
    with pytest.raises(InputError) as e:
        toy.spec_from({"name": "abc", "sise": 3}, resource="r1")
    assert e.value.kind == "Toy" and e.value.resource == "r1"
    assert "known fields" in str(e.value)
    with pytest.raises(InputError) as e:
        toy.spec_from({"name": "abc", "size": 0})
    assert e.value.field == "size"
    assert toy.spec_from({"name": "abcd", "size": "3"}).size == 3


def test_diff_marks_replace_and_masks_secrets():
    """diff_specs flags replace fields and never shows sensitive values."""
    d = diff_specs(_Spec(name="abc", secret="a"), _Spec(name="abd", size=2, secret="b"))
    assert d.replaces == ("name",)
    assert set(d.fields) == {"name", "size", "secret"}
    sec = [c for c in d.changes if c.name == "secret"][0]
    assert sec.shown() == ("(sensitive)", "(sensitive)")
    assert not diff_specs(_Spec(name="abc"), _Spec(name="abc")).changed


def test_camel_snake_round_trip():
    """Pulumi property names map to and from the core's field names."""
    for n in ["replica_count", "total_iops_max", "name", "iops_per_gb"]:
        assert snake(camel(n)) == n
