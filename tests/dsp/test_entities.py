"""The System entity and the converter: tolerant of new and stringly fields."""

from __future__ import annotations

import attrs
import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datera_iac.dsp import System, api_converter, from_api, make_converter

SYSTEM_SAMPLE = {
    "path": "/system", "uuid": "9b02", "name": "dsp-1", "sw_version": "3.3.5.0",
    "op_state": "running", "health": "ok", "total_capacity": "1099511627776",
    "available_capacity": 5.5e11, "compression_enabled": False, "brand_new_field": {"x": 1},
}


def test_structures_system():
    """/system structures into System; unknown keys are ignored, numbers sent as strings
    convert."""
    system = from_api(SYSTEM_SAMPLE, System)
    assert (system.name, system.sw_version, system.total_capacity,
            system.available_capacity) == ("dsp-1", "3.3.5.0", 2**40, 5.5e11)
    assert from_api({"sw_version": 3.3}, System).sw_version == "3.3"


def test_type_errors_carry_the_path():
    """An impossible value (a word for a number, a list for a string) raises a cattrs
    error whose path names the field."""
    with pytest.raises(cattrs.ClassValidationError) as e:
        from_api({"total_capacity": "big"}, System)
    assert cattrs.transform_error(e.value) == [
        "invalid value for type, expected int | float | None @ $.total_capacity"]
    with pytest.raises(cattrs.ClassValidationError) as e:  # not its printed form "['3.3']"
        from_api({"sw_version": ["3.3"]}, System)
    assert cattrs.transform_error(e.value) == [
        "invalid value for type, expected str | None @ $.sw_version"]


def test_forbid_extra_keys_variant():
    """make_converter(forbid_extra_keys=True) rejects unknown keys (for user-facing data)."""
    with pytest.raises(cattrs.ClassValidationError):
        make_converter(forbid_extra_keys=True).structure({"nme": "x"}, System)


@settings(deadline=None)  # no timing flakes on a loaded CI machine
@given(st.builds(System, **{
    f.name: st.one_of(st.none(), st.integers(0, 2**50))
    for f in attrs.fields(System) if f.name.endswith("_capacity")
}))
def test_round_trip(system):
    """Unstructure then structure gives the same entity."""
    assert from_api(api_converter().unstructure(system), System) == system
