"""Helpers shared by the resource kinds: bounded waits, name patterns, tenant paths,
input validators that raise :class:`~datera_iac.errors.InputError` naming kind, field
and fix, and small DSP-shape helpers.

Why a module of its own: every kind needs the same rules (a tenant written ``x`` and
``/root/x`` is one tenant; a wait never blocks forever and says what it waited for), and
one place keeps the rules from drifting apart between kinds.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import attrs
from cattrs.gen import make_dict_structure_fn

from datera_iac.errors import DspError, InputError, NotFound, WaitTimeout
from datera_iac.fields import aliases_of
from datera_iac.validators import (  # noqa: F401  (re-exported: kinds import them from here)
    AI_NAME_RE,
    NAME_FIX,
    NAME_RE,
    SNAP_TS_RE,
    check,
    pattern,
)
from datera_iac.tenants import (  # noqa: F401  (re-exported: kinds import them from here)
    ROOT,
    TENANT_SEGMENT_RE,
    check_tenant,
    join_id,
    normalize_tenant,
    split_id,
    tenant_boundary,
    tenant_name,
    tenant_parent,
)

__all__ = [
    "split_owner_mark",
    "with_owner_mark",
    "AI_NAME_RE",
    "NAME_FIX",
    "NAME_RE",
    "ROOT",
    "SNAP_TS_RE",
    "TENANT_SEGMENT_RE",
    "NamesResource",
    "OperationFailed",
    "check",
    "join_id",
    "normalize_tenant",
    "path_tail",
    "pattern",
    "delete_app_instance",
    "uuid_finder",
    "restore_timestamp",
    "split_id",
    "tenant_boundary",
    "volume_ref",
    "check_tenant",
    "str_list",
    "str_map",
    "strict_spec",
    "tenant_name",
    "tenant_parent",
    "to_gib",
    "to_int",
    "wait_for",
]

class OperationFailed(DspError):
    """The DSP reports that an asynchronous operation ended in a failed state."""

    status = None


# ---- bounded waits ------------------------------------------------------------------


def wait_for(
    refresh: Callable[[], str],
    *,
    target: Collection[str],
    what: str,
    timeout: float,
    pending: Collection[str] | None = None,
    failed: Collection[str] = ("failed", "error"),
    hint: str = "",
    interval: float = 0.05,
    max_interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll ``refresh()`` until it returns a state in ``target``; return that state.

    A :class:`~datera_iac.errors.NotFound` from ``refresh`` is the state ``"deleted"`` (so
    a delete waits with ``target={"deleted"}``). A state in ``failed`` raises
    :class:`OperationFailed` with ``hint`` appended. With ``pending=None`` every other
    state means "keep waiting" (the DSP's intermediate op_states are undocumented); with a
    ``pending`` set, a state outside pending, target and failed raises too.

    The interval grows from ``interval`` to ``max_interval`` (x1.5 per poll) and the total
    is bounded by ``timeout`` seconds: past it, :class:`WaitTimeout` names ``what`` and the
    last state seen. ``clock`` and ``sleep`` are injectable for tests.
    """
    deadline = clock() + timeout
    delay = interval
    last: str = ""
    while True:
        try:
            state = refresh()
        except NotFound:
            state = "deleted"
        last = state
        if state in target:
            return state
        tail = f" ({hint})" if hint else ""
        if state in failed:
            raise OperationFailed(f"{what}: the DSP reports state {state!r}{tail}")
        if pending is not None and state not in pending:
            raise OperationFailed(f"{what}: unexpected state {state!r}{tail}")
        now = clock()
        if now >= deadline:
            raise WaitTimeout(what, timeout, last)
        sleep(min(delay, max(0.0, deadline - now)))
        delay = min(delay * 1.5, max_interval)


def path_tail(path: str | None) -> str | None:
    """The last segment of a DSP path ("/access_network_ip_pools/default" -> "default")."""
    if not path:
        return None
    return path.rstrip("/").rsplit("/", 1)[-1]


def restore_timestamp(value: str) -> str:
    """The snapshot timestamp of a ``restore_point`` (a timestamp or a snapshot id)."""
    return value.strip().rpartition("/")[2]


def delete_app_instance(client: Any, url: str, tenant: str) -> None:
    """Offline (force), then delete (force) an app_instance; one already gone is success."""
    try:
        client.put(url, {"admin_state": "offline", "force": True}, tenant=tenant)
        client.delete(url, {"force": True}, tenant=tenant)
    except NotFound:
        return


# ---- input validation --------------------------------------------------------------


def strict_spec(cls: type) -> type:
    """Class decorator: structure this spec with its attrs *converters* in charge.

    cattrs would otherwise coerce by annotation first (``int(10.5)`` is ``10``,
    ``int(True)`` is ``1``) and hide bad input; with this hook a field's converter sees
    the raw value and can reject it with a precise InputError. Fields without a converter
    keep cattrs' structuring. Registered on the shared spec converter of ``base``."""
    from datera_iac.resources import base

    conv = base.spec_conv
    conv.register_structure_hook(
        cls,
        make_dict_structure_fn(
            cls, conv, _cattrs_forbid_extra_keys=True, _cattrs_prefer_attrib_converters=True
        ),
    )
    # a field's former names (spec_field(aliases=...)) still read it, for Python callers
    for alias, name in aliases_of(cls).items():
        setattr(cls, alias, property(operator.attrgetter(name),
                                     doc=f"Deprecated: the former name of {name}."))
    return cls


def to_int(
    kind: str, field: str, *, lo: int | None = None, hi: int | None = None, unit: str = "",
    optional: bool = False,
) -> Callable[[Any], int | None]:
    """An attrs converter: accept an int or a string of digits ("10"), reject floats with
    a fraction, booleans and anything else; enforce ``lo <= value <= hi``."""
    span = (
        f"{lo}..{hi}" if lo is not None and hi is not None
        else f">= {lo}" if lo is not None else f"<= {hi}" if hi is not None else "any"
    )
    fix = f"use a whole number in {span}{(' ' + unit) if unit else ''}"

    def convert(value: Any) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        elif isinstance(value, float) and value.is_integer() or isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            n = int(value)
        else:
            raise InputError(f"expected a whole number, got {value!r}", kind=kind, field=field,
                             fix=fix)
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            raise InputError(f"{n} is out of range {span}", kind=kind, field=field, fix=fix)
        return n

    return convert


_GIB = 1 << 30
#: Unit suffixes a size may carry -> bytes per unit (binary units; the DSP counts in GiB).
_SIZE_UNITS = {"": _GIB, "g": _GIB, "gi": _GIB, "gib": _GIB, "gb": _GIB,
               "t": _GIB << 10, "ti": _GIB << 10, "tib": _GIB << 10, "tb": _GIB << 10,
               "b": 1, "m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20, "mb": 1 << 20}


def to_gib(kind: str, field: str, *, lo: int, hi: int) -> Callable[[Any], int]:
    """An attrs converter for a size in whole GiB. Besides what :func:`to_int` takes, a
    string may carry a binary unit ("10GiB", "10 Gi", "1TiB", "10737418240B", "10240MiB"),
    so a size written in bytes and one written in GiB are the same spec (an empty plan
    whatever form the user wrote). Decimal-looking units (GB, TB, MB) are read as binary,
    as the DSP and Cinder do. A byte count that is not a whole number of GiB is refused
    rather than rounded: rounding is what gives other tools a perpetual diff."""
    plain = to_int(kind, field, lo=lo, hi=hi, unit="GiB")
    fix = f"use a whole number of GiB in {lo}..{hi}, e.g. 10 or '10GiB' or '10737418240B'"

    def convert(value: Any) -> int:
        if isinstance(value, str):
            m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", value)
            if m and m.group(2):
                per = _SIZE_UNITS.get(m.group(2).lower())
                if per is None:
                    raise InputError(f"unknown size unit {m.group(2)!r}", kind=kind,
                                     field=field, fix=fix)
                nbytes = int(m.group(1)) * per
                if nbytes % _GIB:
                    raise InputError(f"{value!r} is not a whole number of GiB", kind=kind,
                                     field=field, fix=fix)
                value = nbytes // _GIB
        n = plain(value)
        assert n is not None
        return n

    return convert


def volume_ref(kind: str, *, forbid: tuple[str, ...] = ()) -> Callable[[Any, attrs.Attribute, Any], None]:
    """An attrs validator for a reference to a Volume (its id output): a non-blank
    string, not ending in '/', holding none of ``forbid`` (characters a kind's own id
    encoding reserves). Which volume it names is checked when the kind uses it."""

    def validate(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
        ok = (isinstance(value, str) and bool(value.strip()) and not value.strip().endswith("/")
              and not any(f in value for f in forbid))
        if not ok:
            raise InputError(f"{value!r} is not a volume id", kind=kind, field=attr.name,
                             fix="use the id output of a Volume, e.g. ${my_volume.id} "
                                 "(/root/<app_instance id>)")

    return validate


def str_map(kind: str, field: str) -> Callable[[Any], dict[str, str]]:
    """An attrs converter for flat ``dict[str, str]`` fields: keys and values become
    strings (``True`` -> ``"True"``, as Cinder writes booleans); nested values are refused."""

    def convert(value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise InputError(f"expected a map of strings, got {type(value).__name__}",
                             kind=kind, field=field, fix="write key: value pairs")
        out: dict[str, str] = {}
        for k, v in value.items():
            if isinstance(v, (Mapping, list, tuple, set)) or v is None:
                raise InputError(f"value of {k!r} must be a string, number or boolean",
                                 kind=kind, field=f"{field}.{k}",
                                 fix="flatten the value into a string")
            out[str(k)] = str(v)
        return out

    return convert


def str_list(kind: str, field: str) -> Callable[[Any], list[str]]:
    """An attrs converter for ``list[str]`` fields (a single string is one item)."""

    def convert(value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, Iterable) or isinstance(value, Mapping):
            raise InputError(f"expected a list of strings, got {type(value).__name__}",
                             kind=kind, field=field, fix="write a list of strings")
        items = list(value)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise InputError(f"item {i} must be a string, got {item!r}", kind=kind,
                                 field=f"{field}[{i}]", fix="write each item as a string")
        return items

    return convert


class NamesResource:
    """Kind mixin: errors from ``Kind.validate`` (cross-field checks, which run after the
    structuring step that knows the resource) name the user's resource too."""

    def spec_from(self, data: Mapping[str, Any], *, resource: str | None = None) -> Any:
        try:
            return super().spec_from(data, resource=resource)  # type: ignore[misc]
        except InputError as e:
            if resource and e.resource is None:
                raise e.with_resource(resource) from None
            raise


# ---- ownership: a create proves what it made ---------------------------------------------
#
# A create never adopts an object it cannot prove it made. Volumes and snapshots carry the
# create's token in their uuid; tenants and app_templates (VolumeTypes) have no such field,
# so the token is written at the end of their ``descr`` ("<description> datera-iac-<hex>")
# and read back off it: a same-named object without this create's token is someone
# else's - a conflict to import, never "created".

OWNER_MARK_RE = re.compile(r"(?:^|\s)datera-iac-([0-9a-f]{32})$")
_DESCR_MAX = 128


def with_owner_mark(descr: str | None, token: str) -> str:
    """``descr`` with the create's token appended (the token alone without a description);
    a description too long to carry it is sent as it is (the object then cannot be proven
    ours after a lost response, so a retry meets a conflict instead of adopting)."""
    mark = f"datera-iac-{token}"
    if not descr:
        return mark
    out = f"{descr} {mark}"
    return out if len(out) <= _DESCR_MAX else descr


def split_owner_mark(descr: Any) -> tuple[str | None, str | None]:
    """(the user's description or None, the create token or None) of a ``descr``."""
    if not isinstance(descr, str) or not descr:
        return None, None
    m = OWNER_MARK_RE.search(descr)
    if m is None:
        return descr, None
    return (descr[:m.start()].rstrip() or None), m.group(1)


def uuid_finder(client: Any, url: str, tenant: str, token: str) -> Callable[[], Any]:
    """A create's ``find``: the item of the listing at ``url`` whose uuid is ``token``."""
    return lambda: next((s for s in client.list(url, tenant=tenant) if s.get("uuid") == token),
                        None)
