"""Body validation driven by the ``/api`` schema dump.

The dump uses a JSON-Schema dialect with extra keys (``descr``, ``fmthelp``,
``containment``...). Only the checking keys matter here: ``type``, ``enum``, ``pattern``,
``minimum``/``maximum``, ``minLength``/``maxLength``, ``properties``, ``required``,
``additionalProperties``, ``items`` and ``format: date-time``. A small validator of our own
keeps the error text precise (``storage_instances[0].volumes[0].size: 0 is below the minimum
1``) and is much faster than a general JSON-Schema engine on the hot path.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from typing import Any

from datera_iac.sim.errors import ValidationFailed

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _type_ok(value: Any, name: str) -> bool:
    types = _TYPES.get(name)
    if types is None:
        return True
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, types)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def validate(value: Any, schema: dict[str, Any] | None, path: str = "") -> None:
    """Raise :class:`ValidationFailed` naming the first offending field of ``value``."""
    if not schema:
        return
    where = path or "body"
    t = schema.get("type")
    if t is not None:
        names = t if isinstance(t, list) else [t]
        if not any(_type_ok(value, n) for n in names):
            raise ValidationFailed(
                f"expected {' or '.join(names)}, got {type(value).__name__}", field=where
            )
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        raise ValidationFailed(f"{value!r} is not one of {enum}", field=where)
    if isinstance(value, str):
        pat = schema.get("pattern")
        if isinstance(pat, str) and not _regex(pat).search(value):
            help_ = schema.get("fmthelp") or f"must match {pat}"
            raise ValidationFailed(f"{value!r} is invalid: {help_}", field=where)
        mn, mx = schema.get("minLength"), schema.get("maxLength")
        if isinstance(mn, int) and len(value) < mn:
            raise ValidationFailed(f"must be at least {mn} characters", field=where)
        if isinstance(mx, int) and len(value) > mx:
            raise ValidationFailed(f"must be at most {mx} characters", field=where)
        if schema.get("format") == "date-time":
            try:
                _dt.datetime.fromisoformat(value)
            except ValueError:
                raise ValidationFailed(f"{value!r} is not an ISO 8601 timestamp", field=where)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if isinstance(lo, (int, float)) and value < lo:
            raise ValidationFailed(f"{value} is below the minimum {lo}", field=where)
        if isinstance(hi, (int, float)) and value > hi:
            raise ValidationFailed(f"{value} is above the maximum {hi}", field=where)
    elif isinstance(value, dict):
        _validate_object(value, schema, path)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                validate(item, items, _join(path, i))


def _validate_object(value: dict[str, Any], schema: dict[str, Any], path: str) -> None:
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    for req in schema.get("required") or ():
        if req not in value:
            raise ValidationFailed("is required", field=_join(path, req))
    extra = schema.get("additionalProperties")
    for key, sub in value.items():
        if not isinstance(key, str):
            raise ValidationFailed("keys must be strings", field=path or "body")
        if key in props:
            validate(sub, props[key], _join(path, key))
        elif extra is False:
            allowed = ", ".join(sorted(props)) or "none"
            raise ValidationFailed(
                f"unknown field (allowed: {allowed})", field=_join(path, key)
            )
        elif isinstance(extra, dict):
            validate(sub, extra, _join(path, key))
