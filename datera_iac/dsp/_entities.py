"""The DSP's ``/system`` entity as an attrs class, and the cattrs converter factory for it.

The kinds read app_instances, storage instances and volumes as the dicts the DSP sends
(:mod:`datera_iac.resources.layout` finds the parts of the Cinder layout in them); typed
entities for them were never used and are gone. ``System`` is structured because its
numbers arrive in several spellings (strings, ints, floats) and the Terraform data source
``datera_system`` derives its schema from it.

Why tolerant: newer DSPs add fields, so responses are structured with
``forbid_extra_keys=False``; every field is optional with a default.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.preconf.json import make_converter as _json_converter

from datera_iac.validators import structure_text

__all__ = ["System", "api_converter", "from_api", "make_converter"]

T = TypeVar("T")

_entity = attrs.define(kw_only=True, slots=True)


@_entity
class System:
    """The cluster: version (``sw_version``, e.g. "3.3.5.0") and capacities in bytes."""

    path: str | None = None
    uuid: str | None = None
    name: str | None = None
    sw_version: str | None = None
    build_version: str | None = None
    op_state: str | None = None
    health: str | None = None
    total_capacity: int | float | None = None
    available_capacity: int | float | None = None
    total_provisioned_capacity: int | float | None = None
    all_flash_total_capacity: int | float | None = None
    all_flash_available_capacity: int | float | None = None
    hybrid_total_capacity: int | float | None = None
    hybrid_available_capacity: int | float | None = None
    compression_enabled: bool | None = None
    compression_ratio: Any = None
    l3_enabled: bool | None = None


def make_converter(*, forbid_extra_keys: bool = False) -> cattrs.Converter:
    """A JSON converter for DSP entities (cattrs' ``preconf.json`` shape).

    ``forbid_extra_keys=False`` (the default, for API responses): unknown keys are ignored,
    because newer DSPs add fields. Use ``True`` only where an unknown key is a user mistake.
    """
    conv = _json_converter(forbid_extra_keys=forbid_extra_keys)
    # A DSP writes some strings as numbers and vice versa (but never a list as a string).
    conv.register_structure_hook(str, structure_text)
    conv.register_structure_hook_func(
        lambda t: t == int | float or t == int | float | None,
        lambda v, _: None if v is None else _number(v),
    )
    return conv


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                pass
    raise TypeError(f"{value!r} is not a number")


@functools.cache
def api_converter() -> cattrs.Converter:
    """The shared response converter (tolerant: ``forbid_extra_keys=False``)."""
    return make_converter(forbid_extra_keys=False)


def from_api(data: Any, cls: type[T]) -> T:
    """Structure a response's ``data`` (a dict) into an entity.

    Raises :class:`cattrs.ClassValidationError` when a known field has an impossible type.
    """
    return api_converter().structure(data, cls)
