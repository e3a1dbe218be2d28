"""The struct codec: secrets and unknowns survive the round trip; integers stay integers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pulumi.runtime import rpc

from datera_iac.pulumi._codec import (
    SECRET_SIG,
    SIG,
    UNKNOWN,
    Secret,
    decode,
    encode,
    has_unknown,
    is_secret,
    reveal,
)
from datera_iac.pulumi.testing import run

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**52), 2**52), st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4),
        inner.map(Secret),
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=6))
def test_round_trip(props):
    """decode(encode(x)) == x for nested values with secrets."""
    assert decode(encode(props)) == props


def test_wire_format_matches_the_sdk():
    """A Secret is the SDK's secret signature object; the SDK reads it back as a secret."""
    s = encode({"pw": Secret("x"), "n": 3})
    assert s.fields["pw"].struct_value.fields[SIG].string_value == SECRET_SIG
    back = rpc.deserialize_properties(s, keep_unknowns=True)
    assert rpc.is_rpc_secret(back["pw"]) and back["n"] == 3
    assert rpc.UNKNOWN == UNKNOWN
    sdk = run(rpc.serialize_properties({"s": rpc.wrap_rpc_secret("v"), "u": UNKNOWN}, {}))
    assert decode(sdk) == {"s": Secret("v"), "u": UNKNOWN}


def test_helpers():
    """is_secret / has_unknown look inside containers; reveal strips every wrapper."""
    v = {"a": [1, Secret({"b": UNKNOWN})]}
    assert is_secret(v) and has_unknown(v)
    assert reveal(v) == {"a": [1, {"b": UNKNOWN}]}
    assert repr(Secret("hunter2")) == "Secret(***)"


def test_rejects_other_special_values():
    """Assets and resource references are not datera inputs: a clear error, not garbage."""
    s = encode({"x": {SIG: "c44067f5952c0a294b673a41bacd8c17", "path": "/etc/passwd"}})
    with pytest.raises(ValueError, match="only plain values, secrets and unknowns"):
        decode(s)
