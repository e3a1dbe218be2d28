"""Cinder semantics of Datera volume types: the ``DF:`` extra specs, their resolution into a
volume policy, and emitters for Cinder (extra_specs map, ``openstack`` CLI, Terraform HCL for
terraform-provider-openstack, cinder.conf).

Why this module exists: a volume created by datera-iac must look exactly like one the Cinder
Datera driver (cinder 29, driver 2019.12.10.0) would create from the same volume type, so
Cinder can manage what we made and we can adopt what Cinder made. Everything here mirrors
``cinder/volume/drivers/datera``:

* :data:`PROPERTIES` is ``DateraDriver._init_vendor_properties`` (datera_iscsi.py 637-830):
  every ``DF:`` key with its type, default, help and minimum. Maximums come from the DSP
  schema (replica_count 1..5, QoS limits), so a value the DSP would reject fails at plan time.
* :func:`resolve_policy` is ``_get_policies_for_volume_type`` (datera_common.py 168-210):
  driver defaults, then ``datera_volume_type_defaults``, then the type's specs.
* :meth:`VolumePolicy.performance_policy` is ``_update_qos_2_2`` (datera_api22.py 1059-1100).

Driver quirks we deliberately do not copy are listed in ``docs/volume-types.md``.

Stable API used by other kinds (the Volume kind): :func:`normalize_extra_specs`,
:func:`resolve_policy`, :class:`VolumePolicy`, :func:`policy_changes`. Importing an
existing Cinder type: :func:`fold_qos_specs` (the driver's reading of extra + QoS specs).
"""

from __future__ import annotations

import difflib
import functools
import re
import shlex
import zlib
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from datera_iac.errors import ConfigError, InputError
from datera_iac.secrets import CONF_MASK
from datera_iac.validators import NAME_RE  # re-exported: templates, pools, policies

__all__ = [
    "PREFIX",
    "BACKEND_KEY",
    "DEFAULT_BACKEND",
    "render_conf",
    "DRIVER",
    "DfProperty",
    "PROPERTIES",
    "QOS_MAX_KEYS",
    "NAME_RE",
    "normalize_extra_specs",
    "normalize_value",
    "parse_type_defaults",
    "typed_value",
    "format_type_defaults",
    "VolumePolicy",
    "resolve_policy",
    "driver_defaults",
    "uses_placement_policy",
    "PolicyChange",
    "policy_changes",
    "fold_qos_specs",
    "parse_osc_properties",
    "extra_specs_map",
    "openstack_command",
    "terraform_hcl",
    "hcl_label",
    "cinder_conf",
    "property_rows",
]

#: The vendor prefix of the driver's extra specs ("Datera Fabric").
PREFIX = "DF:"
#: The one non-DF extra spec a Datera volume type carries: Cinder's scheduler matches it
#: against the backend's ``volume_backend_name``.
BACKEND_KEY = "volume_backend_name"
DEFAULT_BACKEND = "datera"
DRIVER = "cinder.volume.drivers.datera.datera_iscsi.DateraDriver"

_INT_RE = re.compile(r"^\s*[+-]?[0-9]+\s*$", re.ASCII)

#: DSP schema limits (dsp-v2.1-api-schema.json, volume / performance_policy).
MAX_REPLICAS = 5
MAX_IOPS = 10_000_000
MAX_BANDWIDTH = 10_240_000  # KiB/s
PLACEMENT_MODES = ("hybrid", "single_flash", "all_flash")


@attrs.frozen
class DfProperty:
    """One ``DF:`` extra spec as the driver defines it.

    ``default`` is the driver default before ``datera_volume_type_defaults``; ``target`` says
    where on the DSP the value lands (for docs and retype planning).
    """

    name: str
    type: type
    default: int | str | bool
    title: str
    help: str
    target: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    qos: bool = False

    @property
    def key(self) -> str:
        """The prefixed key, e.g. ``DF:replica_count``."""
        return PREFIX + self.name

    @property
    def type_name(self) -> str:
        return {int: "integer", bool: "boolean", str: "string"}[self.type]


def _p(name: str, typ: type, default: Any, title: str, help: str, target: str, **kw: Any) -> DfProperty:
    return DfProperty(name=name, type=typ, default=default, title=title, help=help, target=target, **kw)


_QOS_HELP = "use 0 for unlimited"
#: Every DF: property of the C29 driver, in the (stable) order emitters use.
PROPERTIES: Mapping[str, DfProperty] = {
    p.name: p
    for p in (
        _p("replica_count", int, 3, "Datera Volume Replica Count",
           "Number of replicas for each volume. Can only be increased once the volume exists. "
           "The default is 1 when datera_debug_replica_count_override is set.",
           "volume.replica_count", minimum=1, maximum=MAX_REPLICAS),
        _p("placement_mode", str, "hybrid", "Datera Volume Placement Mode (deprecated)",
           "Deprecated on DSP 3.3+ (use placement_policy): 'single_flash', 'all_flash' or "
           "'hybrid'. Sent instead of placement_policy to DSPs older than 3.3.",
           "volume.placement_mode", choices=PLACEMENT_MODES),
        _p("placement_policy", str, "default", "Datera Volume Placement Policy",
           "Name of a media placement policy (DSP 3.3+), sent as "
           "/placement_policies/<name>.", "volume.placement_policy.path"),
        _p("ip_pool", str, "default", "Datera IP Pool",
           "Access-network IP pool of the volume's target. A comma-separated list means one "
           "of them per volume.", "storage_instance.ip_pool.path"),
        _p("template", str, "", "Datera Template",
           "App template to provision volumes from ('' = none).", "app_instance.app_template.path"),
        _p("round_robin", bool, False, "Datera Round Robin Portals",
           "True to pick a random one of the target's portals at attach time.", "attach (client side)"),
        _p("read_iops_max", int, 0, "Datera QoS Max iops Read",
           f"Max read IOPS, {_QOS_HELP}.", "performance_policy.read_iops_max",
           minimum=0, maximum=MAX_IOPS, qos=True),
        _p("write_iops_max", int, 0, "Datera QoS Max IOPS Write",
           f"Max write IOPS, {_QOS_HELP}.", "performance_policy.write_iops_max",
           minimum=0, maximum=MAX_IOPS, qos=True),
        _p("total_iops_max", int, 0, "Datera QoS Max IOPS Total",
           f"Max total IOPS, {_QOS_HELP}.", "performance_policy.total_iops_max",
           minimum=0, maximum=MAX_IOPS, qos=True),
        _p("read_bandwidth_max", int, 0, "Datera QoS Max Bandwidth Read",
           f"Max read bandwidth in KiB/s, {_QOS_HELP}.", "performance_policy.read_bandwidth_max",
           minimum=0, maximum=MAX_BANDWIDTH, qos=True),
        _p("write_bandwidth_max", int, 0, "Datera QoS Max Bandwidth Write",
           f"Max write bandwidth in KiB/s, {_QOS_HELP}.", "performance_policy.write_bandwidth_max",
           minimum=0, maximum=MAX_BANDWIDTH, qos=True),
        _p("total_bandwidth_max", int, 0, "Datera QoS Max Bandwidth Total",
           f"Max total bandwidth in KiB/s, {_QOS_HELP}.", "performance_policy.total_bandwidth_max",
           minimum=0, maximum=MAX_BANDWIDTH, qos=True),
        _p("iops_per_gb", int, 0, "Datera IOPS Per GB Setting",
           "total_iops_max = iops_per_gb x size in GiB, capped by total_iops_max when that is "
           "set. 0 = unlimited.", "performance_policy.total_iops_max",
           minimum=0, maximum=MAX_IOPS, qos=True),
        _p("bandwidth_per_gb", int, 0, "Datera Bandwidth Per GB Setting",
           "total_bandwidth_max = bandwidth_per_gb x size in GiB (KiB/s), capped by "
           "total_bandwidth_max when that is set. 0 = unlimited.",
           "performance_policy.total_bandwidth_max", minimum=0, maximum=MAX_BANDWIDTH, qos=True),
    )
}

#: The keys the driver sends in a performance_policy (it takes every key ending in "max").
QOS_MAX_KEYS: tuple[str, ...] = tuple(n for n in PROPERTIES if n.endswith("max"))

_KNOWN = ", ".join(p.key for p in PROPERTIES.values())


# ---- values ------------------------------------------------------------------------------


def _bad(kind: str, field: str, resource: str | None, reason: str, fix: str) -> InputError:
    return InputError(reason, kind=kind, field=field, resource=resource, fix=fix)


def _allowed(prop: DfProperty) -> str:
    if prop.type is bool:
        return "True or False"
    if prop.type is int:
        hi = f"..{prop.maximum}" if prop.maximum is not None else " or more"
        return f"an integer {prop.minimum}{hi}"
    if prop.choices:
        return "one of " + ", ".join(prop.choices)
    if prop.name == "ip_pool":
        return "an IP pool name, or several separated by commas"
    if prop.name == "template":
        return "an app template name, or '' for none"
    return "a DSP name (letters, digits, _ - .; 3-64 characters, not starting with a digit)"


def normalize_value(
    name: str, value: Any, *, kind: str = "VolumeType", field: str | None = None,
    resource: str | None = None,
) -> str:
    """The canonical string form of one DF: value, as the driver parses it.

    Integers become ``str(int)``; booleans ``"True"``/``"False"`` (the only spellings the
    driver turns into booleans: it keeps ``"true"`` as a truthy string); a placement policy
    written as a path ``/placement_policies/x`` becomes ``x`` (the driver prepends the path).

    Raises :class:`InputError` naming ``kind``, ``field`` and the allowed values.
    """
    prop = PROPERTIES.get(name)
    field = field or f"extra_specs.{PREFIX}{name}"
    if prop is None:
        raise _bad(kind, field, resource, f"unknown Datera extra spec {name!r}",
                   f"known keys: {_KNOWN}")
    fix = f"{prop.key} must be {_allowed(prop)}"

    def fail(reason: str) -> InputError:
        return _bad(kind, field, resource, reason, fix)

    if prop.type is bool:
        if isinstance(value, bool):
            return "True" if value else "False"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return "True" if value.strip().lower() == "true" else "False"
        raise fail(f"not a boolean: {value!r}")
    if prop.type is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise fail(f"not an integer: {value!r}")
        if isinstance(value, str) and not _INT_RE.match(value):
            raise fail(f"not an integer: {value!r}")
        num = int(value)
        if prop.minimum is not None and num < prop.minimum:
            raise fail(f"{num} is below the minimum {prop.minimum}")
        if prop.maximum is not None and num > prop.maximum:
            raise fail(f"{num} is above the DSP's maximum {prop.maximum}")
        return str(num)
    # strings
    if not isinstance(value, str):
        raise fail(f"not a string: {value!r}")
    text = value.strip()
    if prop.choices:
        if text not in prop.choices:
            raise fail(f"{value!r} is not a placement mode")
        return text
    if prop.name == "template":
        if text and not NAME_RE.match(text):
            raise fail(f"{value!r} is not a valid app template name")
        return text
    if prop.name == "ip_pool":
        pools = [p.strip() for p in text.split(",")]
        if not all(NAME_RE.match(p) for p in pools):
            raise fail(f"{value!r} is not an IP pool name or comma-separated list of names")
        return ",".join(pools)
    if prop.name == "placement_policy" and text.startswith("/placement_policies/"):
        text = text[len("/placement_policies/"):]
    if not NAME_RE.match(text):
        raise fail(f"{value!r} is not a valid {prop.name.replace('_', ' ')} name")
    return text


def _split_key(
    key: Any, *, kind: str, resource: str | None
) -> str:
    """``DF:x`` or ``x`` -> ``x``; ``volume_backend_name`` -> itself; anything else fails."""
    if not isinstance(key, str):
        raise _bad(kind, f"extra_specs.{key!r}", resource, f"extra spec key {key!r} is not a string",
                   "write keys as strings such as 'DF:replica_count'")
    if key == BACKEND_KEY:
        return key
    bare = key[len(PREFIX):] if key.startswith(PREFIX) else key
    if bare in PROPERTIES:
        return bare
    if ":" in key and not key.startswith(PREFIX):
        scope, _, rest = key.partition(":")
        hint = f"write {PREFIX}{rest}" if rest in PROPERTIES else f"known keys: {_KNOWN}"
        raise _bad(kind, f"extra_specs.{key}", resource,
                   f"extra spec scope {scope!r} is not managed here (only {PREFIX} keys and "
                   f"{BACKEND_KEY})", hint)
    raise _bad(kind, f"extra_specs.{key}", resource, f"unknown Datera extra spec {key!r}",
               _suggest(bare))


def _suggest(bare: str) -> str:
    close = difflib.get_close_matches(bare, list(PROPERTIES), n=1, cutoff=0.6)
    head = f"did you mean {PREFIX}{close[0]}? " if close else ""
    return f"{head}known keys: {_KNOWN}"


def normalize_extra_specs(
    mapping: Mapping[Any, Any] | None, *, kind: str = "VolumeType", resource: str | None = None
) -> dict[str, str]:
    """Canonical Datera extra specs: ``{"DF:key": "str"}`` (plus ``volume_backend_name`` when
    given), in :data:`PROPERTIES` order.

    Keys may be written with or without the ``DF:`` prefix; values as int, bool or str. The
    result is idempotent (normalizing it again gives the same dict) and is what the driver
    would read from a Cinder volume type.

    Raises :class:`InputError` (``kind``, ``field="extra_specs.<key>"``, ``fix``) for an
    unknown key, a key of another scope (``qos:``, ``capabilities:``), a value of the wrong
    type or out of range, or one key given twice with different values.
    """
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise _bad(kind, "extra_specs", resource, f"not a mapping: {type(mapping).__name__}",
                   "give extra specs as a map such as {'DF:replica_count': '2'}")
    # A create or diff normalizes the same few specs several times (the declaration, the
    # spec's converter, the policy, the live volume): remember successful results. Types
    # are part of the key (True == 1 and 1.0 == 1 as dict keys, but not as DF: values);
    # failures are not cached, so every bad input raises with its own kind and resource.
    try:
        key: tuple[Any, ...] | None = tuple((k, type(k), v, type(v)) for k, v in mapping.items())
        hit = _NORMALIZED.get(key)
    except TypeError:  # an unhashable value: the slow path reports it
        key, hit = None, None
    if hit is not None:
        return dict(hit)
    out = _normalize_extra_specs(mapping, kind=kind, resource=resource)
    if key is not None:
        if len(_NORMALIZED) >= _NORMALIZED_MAX:
            _NORMALIZED.clear()
        _NORMALIZED[key] = dict(out)
    return out


_NORMALIZED: dict[tuple[Any, ...], dict[str, str]] = {}
_NORMALIZED_MAX = 4096


def _normalize_extra_specs(
    mapping: Mapping[Any, Any], *, kind: str, resource: str | None
) -> dict[str, str]:
    seen: dict[str, tuple[str, str]] = {}
    for key, value in mapping.items():
        bare = _split_key(key, kind=kind, resource=resource)
        if bare == BACKEND_KEY:
            if not isinstance(value, str) or not value.strip():
                raise _bad(kind, f"extra_specs.{BACKEND_KEY}", resource,
                           f"not a backend name: {value!r}",
                           "set it to the cinder.conf volume_backend_name, e.g. 'datera'")
            norm = value.strip()
        else:
            norm = normalize_value(bare, value, kind=kind, field=f"extra_specs.{key}",
                                   resource=resource)
        if bare in seen and seen[bare][1] != norm:
            raise _bad(kind, f"extra_specs.{key}", resource,
                       f"given twice ({seen[bare][0]!r} and {key!r}) with different values",
                       f"keep only {PREFIX}{bare}")
        seen[bare] = (str(key), norm)
    out: dict[str, str] = {}
    if BACKEND_KEY in seen:
        out[BACKEND_KEY] = seen[BACKEND_KEY][1]
    for name in PROPERTIES:
        if name in seen:
            out[PREFIX + name] = seen[name][1]
    return out


_DEFAULTS_OPT = "datera_volume_type_defaults"


def _defaults_error(reason: str) -> ConfigError:
    return ConfigError(f"{_DEFAULTS_OPT}: {reason}")


def _defaults_items(value: str) -> list[tuple[str, str]]:
    """oslo.config ``DictOpt`` syntax, as the driver reads the option: items separated by
    ``,``, each split at its *first* ``:``, key and value stripped. What oslo refuses (an
    empty item such as a trailing comma, an item without ``:``, an empty key) stops
    cinder-volume at start-up, so it is an error here too."""
    if not value.strip():
        return []
    items: list[tuple[str, str]] = []
    for part in value.split(","):
        text = part.strip()
        if not text:
            raise _defaults_error(
                f"{value.strip()!r} has an empty item (oslo.config refuses a stray comma; "
                "write e.g. iops_per_gb:100,bandwidth_per_gb:200)")
        key, sep, val = text.partition(":")
        if not sep:
            after_pool = bool(items) and items[-1][0] == "ip_pool"
            hint = ("; a comma separates items, so this option cannot hold a list of IP "
                    "pools" if after_pool else "")
            raise _defaults_error(
                f"{text!r} is not key:value (write e.g. "
                f"iops_per_gb:100,bandwidth_per_gb:200{hint})")
        if key.strip().upper() == "DF" and ":" in val:
            # oslo reads "DF:x:v" as key "DF"; report it under the name the user wrote
            name, _, val = val.partition(":")
            key = f"{PREFIX}{name.strip()}"
        items.append((key.strip(), val.strip()))
    return items


def _defaults_typed(name: str, value: Any) -> str:
    """One value of ``datera_volume_type_defaults`` as the driver reads it, canonical."""
    prop = PROPERTIES[name]
    if prop.type is bool and isinstance(value, str) and value.strip() not in ("True", "False"):
        # the driver's test is `"True" == defaults.get('round_robin', "False")`
        raise _defaults_error(
            f"key {name!r}: {value!r} is not True or False (the driver compares with the "
            f"exact string 'True', so {value!r} would mean False); write True or False")
    try:
        return normalize_value(name, value, kind="DateraConfig",
                               field=f"{_DEFAULTS_OPT}.{name}")
    except InputError as e:
        raise _defaults_error(f"key {name!r}: {e.reason}; {name} must be {_allowed(prop)}"
                              ) from None


def parse_type_defaults(value: str | Mapping[str, Any] | None) -> dict[str, str]:
    """Parse cinder.conf ``datera_volume_type_defaults`` into canonical strings, by the
    driver's rules: the one parser of this option (``DateraConfig`` validates through it).

    The string form is oslo.config's ``DictOpt`` (``"key:value,key:value"``, see
    :func:`_defaults_items`); a mapping (YAML, HCL) holds the same keys with values as
    strings or typed. Keys are the ``DF:`` extra specs *without* the prefix: the driver
    reads ``defaults.get('iops_per_gb')``, so ``DF:iops_per_gb:100`` would be silently
    ignored by it, and is refused here. Values follow :data:`PROPERTIES` (the DSP's limits
    included, so a default the DSP would reject fails at plan time, not at create).

    Raises :class:`ConfigError` starting ``datera_volume_type_defaults:`` and naming the key
    and the fix, for: a syntax oslo refuses, a ``DF:`` prefix, an unknown or duplicate key,
    a bad value (the driver would crash at start-up on ``int()`` of a bad number).
    """
    if value is None:
        return {}
    items: list[tuple[Any, Any]]
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, str):
        items = _defaults_items(value)
    else:
        raise _defaults_error(
            f"expected a 'key:value,...' string or a map, not {type(value).__name__}")
    out: dict[str, str] = {}
    for key, val in items:
        name = str(key).strip()
        if name.upper().startswith(PREFIX.upper()):
            raise _defaults_error(
                f"key {name!r} has a DF: prefix (write {name[len(PREFIX):]!r}; the driver "
                "reads this option's keys without DF: and would ignore this one)")
        if name not in PROPERTIES:
            close = difflib.get_close_matches(name, list(PROPERTIES), n=1, cutoff=0.6)
            known = (f"did you mean {close[0]!r}?" if close
                     else f"known: {', '.join(PROPERTIES)}")
            raise _defaults_error(f"unknown key {name!r} ({known})")
        if name in out:
            raise _defaults_error(f"key {name!r} is given twice (oslo.config refuses a "
                                  "duplicate key); keep one")
        out[name] = _defaults_typed(name, val)
    return {n: out[n] for n in PROPERTIES if n in out}


def format_type_defaults(defaults: Mapping[str, Any]) -> str:
    """The cinder.conf form of ``datera_volume_type_defaults`` (no prefix, stable order)."""
    parsed = parse_type_defaults(defaults)
    return ",".join(f"{k}:{v}" for k, v in parsed.items())


def typed_value(name: str, text: str) -> int | str | bool:
    """A canonical string (:func:`normalize_value`) back to the property's Python type."""
    prop = PROPERTIES[name]
    if prop.type is bool:
        return text == "True"
    if prop.type is int:
        return int(text)
    return text


# ---- resolution ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)  # a handful of versions, parsed on every volume create
def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in str(version).split(".")[:4]:
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts + [0] * (4 - len(parts)))


def uses_placement_policy(sw_version: str | None) -> bool:
    """Whether a DSP of this product version places volumes by placement_policy (3.3.0.0+,
    the driver's ``dat_version_gte(version, '3.3.0.0')``). Unknown counts as current."""
    return sw_version is None or _version_tuple(sw_version) >= (3, 3, 0, 0)


@attrs.frozen(kw_only=True)
class VolumePolicy:
    """What a volume type means for one volume on the DSP, after resolution.

    ``typed`` is False for a volume without a volume type: like the driver, such a volume
    gets defaults for replicas/placement/pool but no performance_policy at all.
    """

    replica_count: int
    placement_mode: str
    placement_policy: str
    ip_pool: str
    template: str
    round_robin: bool
    read_iops_max: int
    write_iops_max: int
    total_iops_max: int
    read_bandwidth_max: int
    write_bandwidth_max: int
    total_bandwidth_max: int
    iops_per_gb: int
    bandwidth_per_gb: int
    typed: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The driver's ``policies`` dict (bare keys, typed values)."""
        return {name: getattr(self, name) for name in PROPERTIES}

    def performance_policy(self, size_gib: int, *, driver_quirks: bool = False) -> dict[str, int]:
        """The performance_policy body for a volume of ``size_gib`` GiB; ``{}`` = none.

        Mirrors ``_update_qos_2_2``: every ``*_max`` value > 0, then ``iops_per_gb`` x size
        as ``total_iops_max`` capped by an explicit ``total_iops_max`` (same for bandwidth).
        The driver caps at 1 when no total is set (its ``fpolicies.get('total_iops_max', 1)``);
        we use the uncapped product unless ``driver_quirks=True``, and clamp it to the DSP
        maximum so a large volume never gets a policy the DSP rejects.
        """
        if not self.typed:
            return {}
        fp = {k: getattr(self, k) for k in QOS_MAX_KEYS if getattr(self, k) > 0}
        for per_gb, total, dsp_max in (
            ("iops_per_gb", "total_iops_max", MAX_IOPS),
            ("bandwidth_per_gb", "total_bandwidth_max", MAX_BANDWIDTH),
        ):
            rate = getattr(self, per_gb)
            if not rate:
                continue
            product = rate * size_gib
            if driver_quirks:
                fp[total] = min(product, fp.get(total, 1))
            else:
                cap = fp.get(total)
                fp[total] = min(product, cap if cap is not None else dsp_max)
        return fp

    def template_performance_policy(self) -> dict[str, int]:
        """The size-independent part (what an app template can hold): ``*_max`` > 0."""
        return {k: getattr(self, k) for k in QOS_MAX_KEYS if getattr(self, k) > 0}

    @property
    def ip_pools(self) -> tuple[str, ...]:
        return tuple(p for p in self.ip_pool.split(",") if p)

    def ip_pool_for(self, key: str) -> str:
        """The pool of one volume. The driver picks ``random.choice`` on every create and
        attach; we pick by a stable hash of ``key`` (the volume name) so plans don't drift."""
        pools = self.ip_pools
        if len(pools) == 1:
            return pools[0]
        return pools[zlib.crc32(key.encode()) % len(pools)]

    def ip_pool_path(self, key: str) -> str:
        return f"/access_network_ip_pools/{self.ip_pool_for(key)}"

    @property
    def template_path(self) -> str | None:
        return f"/app_templates/{self.template}" if self.template else None

    @property
    def placement_policy_path(self) -> str:
        return f"/placement_policies/{self.placement_policy}"

    def placement_fields(self, sw_version: str | None) -> dict[str, Any]:
        """The volume's placement, as the driver sends it on create: ``placement_policy``
        on DSP 3.3.0.0+ (``dat_version_gte``), ``placement_mode`` before. An unknown
        version counts as current."""
        if uses_placement_policy(sw_version):
            return {"placement_policy": {"path": self.placement_policy_path}}
        return {"placement_mode": self.placement_mode}


@functools.cache
def _property_defaults() -> tuple[tuple[str, str], ...]:
    """The normalized vendor-property defaults (constant; normalized once, not per volume)."""
    return tuple((n, normalize_value(n, p.default)) for n, p in PROPERTIES.items())


def driver_defaults(config: Any = None) -> dict[str, str]:
    """Step 1+2 of the driver's resolution: the vendor-property defaults, where
    ``datera_volume_type_defaults`` replaces a default and ``datera_debug_replica_count_override``
    makes the replica default 1 (a type-defaults value still wins, as in the driver)."""
    out = dict(_property_defaults())
    if config is not None and getattr(config, "datera_debug_replica_count_override", False):
        out["replica_count"] = "1"
    out.update(parse_type_defaults(getattr(config, "datera_volume_type_defaults", None)))
    return out


def resolve_policy(
    extra_specs: Mapping[Any, Any] | None,
    *,
    config: Any = None,
    typed: bool = True,
    kind: str = "Volume",
    resource: str | None = None,
) -> VolumePolicy:
    """Resolve a volume type's extra specs into a :class:`VolumePolicy`, in the driver's order
    (``_get_policies_for_volume_type``): driver defaults, then the config's
    ``datera_volume_type_defaults``, then the type's ``DF:`` specs (QoS values are ``DF:``
    keys of the type in our model, so the driver's "QoS specs override" step is the same map).

    ``extra_specs`` may be raw (it is normalized here, errors name ``kind``/``resource``);
    ``volume_backend_name`` is ignored as by the driver. ``typed=False`` models a volume with
    no volume type (no performance_policy is applied).
    """
    specs = normalize_extra_specs(extra_specs, kind=kind, resource=resource)
    # Every create resolves its volume's policy, and a stack has a few distinct types:
    # the result (frozen) is a function of the normalised specs, ``typed`` and the two
    # config options driver_defaults reads, so it is remembered under exactly those.
    override = bool(config is not None
                    and getattr(config, "datera_debug_replica_count_override", False))
    type_defaults = (getattr(config, "datera_volume_type_defaults", None)
                     if config is not None else None)
    try:
        cache_key: tuple[Any, ...] | None = (
            tuple(specs.items()), typed, override, type(type_defaults),
            tuple((k, type(v), v) for k, v in type_defaults.items())  # True == 1: types too
            if isinstance(type_defaults, Mapping) else type_defaults)
        hit = _POLICIES.get(cache_key)  # type: ignore[arg-type]
    except TypeError:  # an unhashable option value: resolve without the cache
        cache_key, hit = None, None
    if hit is not None:
        return hit
    values = driver_defaults(config)
    for key, text in specs.items():
        if key.startswith(PREFIX):
            values[key[len(PREFIX):]] = text
    typed_values: dict[str, Any] = {n: typed_value(n, t) for n, t in values.items()}
    policy = VolumePolicy(typed=typed, **typed_values)
    if cache_key is not None:
        if len(_POLICIES) >= _NORMALIZED_MAX:
            _POLICIES.clear()
        _POLICIES[cache_key] = policy
    return policy


_POLICIES: dict[tuple[Any, ...], VolumePolicy] = {}


# ---- import from Cinder ---------------------------------------------------------------------


def fold_qos_specs(
    extra_specs: Mapping[str, Any] | None, qos_specs: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The ``DF:`` specs the driver reads from an existing Cinder type, for import.

    Mirrors ``_get_policies_for_volume_type``: the type's QoS specs override its extra
    specs, and every key *containing a colon* counts under the part after the first colon
    (``qos:total_iops_max`` and ``DF:total_iops_max`` are the same setting). Keys the driver
    ignores (no colon, e.g. Cinder's own ``total_iops_sec``; or an unknown name) are returned
    as the second item so an import can say what it dropped. ``volume_backend_name`` is
    kept. Values are not validated here; :func:`normalize_extra_specs` does that.
    """
    merged: dict[str, Any] = dict(extra_specs or {})
    merged.update(qos_specs or {})
    out: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in merged.items():
        if key == BACKEND_KEY:
            out[key] = value
            continue
        name = str(key).split(":")[1] if ":" in str(key) else None
        if name is not None and name in PROPERTIES:
            out[PREFIX + name] = value
        else:
            ignored.append(str(key))
    return out, tuple(sorted(ignored))


_OSC_PROP = re.compile(r"""\s*([^=,'\s][^=']*?)\s*=\s*'((?:[^'\\]|\\.)*)'\s*(?:,|$)""")


def parse_osc_properties(value: Any) -> dict[str, str]:
    """``properties`` of ``openstack volume type show -f json``: a map in current clients,
    a string ``"DF:replica_count='2', volume_backend_name='datera'"`` in older ones."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str):
        out: dict[str, str] = {}
        pos = 0
        while pos < len(value):
            m = _OSC_PROP.match(value, pos)
            if m is None or m.end() == pos:
                break
            out[m.group(1)] = m.group(2).replace("\\'", "'")
            pos = m.end()
        if out and pos == len(value):
            return out
    raise InputError(f"cannot read properties {value!r}", kind="VolumeType", field="properties",
                     fix="give the JSON of `openstack volume type show -f json <type>`")


@attrs.frozen
class PolicyChange:
    """One policy field that differs between two volume types, and how the DSP can apply it.

    ``target``: the DSP object that changes (``volume``, ``storage_instance``,
    ``performance_policy``, ``app_instance``, or ``attach`` for client-side settings).
    ``in_place``: the DSP can change it on the existing volume; otherwise the volume must be
    re-created (or the change refused). ``offline``: the driver takes the app_instance offline
    around it (its retype offlines for replica_count and ip_pool changes).
    """

    field: str
    old: Any
    new: Any
    target: str
    in_place: bool
    offline: bool = False
    reason: str = ""


def policy_changes(old: VolumePolicy, new: VolumePolicy) -> tuple[PolicyChange, ...]:
    """What a retype from ``old`` to ``new`` changes on the DSP (pure; driver ``_retype_2_2``).

    replica_count can only increase in place; placement, QoS and ip_pool change in place;
    a template change cannot (a volume cannot be re-bound to another template).
    """
    out: list[PolicyChange] = []
    for name, prop in PROPERTIES.items():
        a, b = getattr(old, name), getattr(new, name)
        if a == b:
            continue
        if name == "replica_count":
            grow = b > a
            out.append(PolicyChange(
                name, a, b, "volume", in_place=grow, offline=True,
                reason="replica_count increases in place" if grow else
                "the DSP can only increase replica_count; a decrease needs a new volume"))
        elif name in ("placement_mode", "placement_policy"):
            out.append(PolicyChange(name, a, b, "volume", in_place=True,
                                    reason="placement changes in place"))
        elif name == "ip_pool":
            out.append(PolicyChange(name, a, b, "storage_instance", in_place=True, offline=True,
                                    reason="the storage instance's ip_pool changes while offline"))
        elif name == "template":
            out.append(PolicyChange(name, a, b, "app_instance", in_place=False,
                                    reason="an app_instance cannot be re-bound to another "
                                           "template; a new volume is needed"))
        elif name == "round_robin":
            out.append(PolicyChange(name, a, b, "attach", in_place=True,
                                    reason="portal choice at attach time; no DSP call"))
        else:
            assert prop.qos
            out.append(PolicyChange(name, a, b, "performance_policy", in_place=True,
                                    reason="the performance_policy is replaced in place"))
    if old.typed != new.typed:
        out.append(PolicyChange("typed", old.typed, new.typed, "performance_policy",
                                in_place=True, reason="QoS applies only to typed volumes"))
    return tuple(out)


# ---- emitters -----------------------------------------------------------------------------


def extra_specs_map(
    specs: Mapping[Any, Any] | None, *, backend_name: str | None = DEFAULT_BACKEND,
    kind: str = "VolumeType", resource: str | None = None,
) -> dict[str, str]:
    """The Cinder ``extra_specs`` of a Datera volume type: ``volume_backend_name`` first,
    then the given ``DF:`` keys in :data:`PROPERTIES` order. Only what was declared is
    included (an omitted key means the driver / cinder.conf default)."""
    norm = normalize_extra_specs(specs, kind=kind, resource=resource)
    out: dict[str, str] = {}
    backend = backend_name or norm.get(BACKEND_KEY)
    if backend:
        out[BACKEND_KEY] = backend
    out.update({k: v for k, v in norm.items() if k != BACKEND_KEY})
    return out


def openstack_command(
    name: str, specs: Mapping[Any, Any] | None, *, backend_name: str | None = DEFAULT_BACKEND,
    description: str | None = None, is_public: bool = True,
) -> str:
    """The ``openstack volume type create`` command line that makes this type, e.g.
    ``openstack volume type create datera_2way --property volume_backend_name=datera
    --property DF:replica_count=2``. Arguments are shell-quoted only when needed."""
    argv = ["openstack", "volume", "type", "create", name]
    if description:
        argv += ["--description", description]
    if not is_public:
        argv.append("--private")
    for key, value in extra_specs_map(specs, backend_name=backend_name, resource=name).items():
        argv += ["--property", f"{key}={value}"]
    return shlex.join(argv)


def _hcl_string(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        .replace("\r", "\\r").replace("\t", "\\t").replace("${", "$${").replace("%{", "%%{")
    )
    return f'"{escaped}"'


_HCL_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def hcl_label(name: str) -> str:
    """A Terraform resource label for a type name (invalid characters become ``_``)."""
    label = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if not label or not re.match(r"[A-Za-z_]", label):
        label = "_" + label
    return label


def _hcl_key(key: str) -> str:
    return key if _HCL_IDENT.match(key) else _hcl_string(key)


def _aligned(pairs: list[tuple[str, str]], indent: str) -> list[str]:
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"{indent}{k.ljust(width)} = {v}" for k, v in pairs]


def terraform_hcl(
    name: str, specs: Mapping[Any, Any] | None, *, backend_name: str | None = DEFAULT_BACKEND,
    description: str | None = None, is_public: bool = True, label: str | None = None,
) -> str:
    """The terraform-provider-openstack ``openstack_blockstorage_volume_type_v3`` block for
    this type, formatted exactly as ``terraform fmt`` would (checked by a test with a real
    Terraform). ``is_public`` is written only when false (the provider's default is public)."""
    extra = extra_specs_map(specs, backend_name=backend_name, resource=name)
    pairs = [("name", _hcl_string(name))]
    if description:
        pairs.append(("description", _hcl_string(description)))
    if not is_public:
        pairs.append(("is_public", "false"))
    lines = [f'resource "openstack_blockstorage_volume_type_v3" {_hcl_string(label or hcl_label(name))} {{']
    lines += _aligned(pairs, "  ")
    # terraform fmt aligns runs of single-line attributes; a multi-line value is not in them
    lines.append("  extra_specs = {")
    lines += _aligned([(_hcl_key(k), _hcl_string(v)) for k, v in extra.items()], "    ")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


#: cinder.conf options of the driver after the fixed head, in emission order, with their
#: driver defaults (emitted only when the config differs). Our own connection fields
#: (endpoint, tls_verify, ...) have no cinder.conf counterpart and are not emitted.
_CONF_OPTIONAL: tuple[tuple[str, Any], ...] = (
    ("datera_ldap_server", None),
    ("datera_503_timeout", 120),
    ("datera_503_interval", 5),
    ("datera_debug", False),
    ("datera_debug_replica_count_override", False),
    ("datera_enable_image_cache", False),
    ("datera_image_cache_volume_type_id", None),
    ("datera_disable_profiler", False),
    ("datera_disable_extended_metadata", False),
    ("datera_disable_template_override", False),
    ("datera_volume_type_defaults", None),
    ("use_chap_auth", False),
    ("chap_username", None),
    ("chap_password", None),
)
#: Our config may name an option differently from cinder.conf (older drafts said
#: "profiling"); the emitter writes the cinder name.
_CONF_ALIASES = {"datera_disable_profiler": ("datera_disable_profiler", "datera_disable_profiling")}


def _conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, Mapping):
        return format_type_defaults(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # oslo IntOpt options (datera_503_*) do not parse "7.0"
    return str(value)


def _get(config: Any, name: str) -> Any:
    for attr in _CONF_ALIASES.get(name, (name,)):
        if hasattr(config, attr):
            return getattr(config, attr)
    return None


def render_conf(config: Any, *, backend_name: str | None = None, show_password: bool = False) -> str:
    """The cinder.conf fragment for a :class:`~datera_iac.config.DateraConfig`; the backend
    name defaults to the config's ``volume_backend_name``, else ``datera``."""
    name = backend_name or getattr(config, "volume_backend_name", None) or DEFAULT_BACKEND
    return cinder_conf(config, backend_name=name, show_password=show_password)


def cinder_conf(
    config: Any, *, backend_name: str = DEFAULT_BACKEND, show_password: bool = False,
) -> str:
    """The cinder.conf fragment enabling a Datera backend for ``config`` (a
    :class:`~datera_iac.config.DateraConfig`)::

        [DEFAULT]
        enabled_backends = datera

        [datera]
        volume_driver = cinder.volume.drivers.datera.datera_iscsi.DateraDriver
        san_ip = ...

    ``san_password`` (and ``chap_password``) are masked unless ``show_password``; options at
    their driver default are left out; deprecated ``datera_api_port``/``datera_api_version``
    are never written (the driver ignores them).
    """
    san_ip = _get(config, "san_ip")
    if not san_ip and _get(config, "endpoint"):
        san_ip = urlsplit(str(_get(config, "endpoint"))).hostname
    if not san_ip:
        raise ConfigError("san_ip is not set (set san_ip or DATERA_SAN_IP to the DSP's management address)")
    if not re.match(r"^[A-Za-z0-9_.-]+$", backend_name):
        raise ConfigError(f"backend name {backend_name!r} is not a valid cinder.conf section name")

    def secret(value: Any) -> str:
        if value is None:
            return ""
        return str(value) if show_password else CONF_MASK

    lines = [
        "[DEFAULT]",
        f"enabled_backends = {backend_name}",
        "",
        f"[{backend_name}]",
        f"volume_driver = {DRIVER}",
        f"san_ip = {san_ip}",
        f"san_login = {_get(config, 'san_login') or ''}",
        f"san_password = {secret(_get(config, 'san_password'))}",
        f"volume_backend_name = {backend_name}",
    ]
    tenant = _get(config, "datera_tenant_id")
    if tenant:
        lines.append(f"datera_tenant_id = {tenant}")
    for name, default in _CONF_OPTIONAL:
        value = _get(config, name)
        if name == "datera_volume_type_defaults":
            value = format_type_defaults(parse_type_defaults(value)) if value else None
        if value is None or value == default or value == "":
            continue
        text = secret(value) if name == "chap_password" else _conf_value(value)
        lines.append(f"{name} = {text}")
    return "\n".join(lines) + "\n"


def property_rows() -> Iterable[tuple[str, str, str, str]]:
    """(key, type, default, help) for docs and ``--help`` output."""
    for p in PROPERTIES.values():
        yield (p.key, p.type_name, normalize_value(p.name, p.default), p.help)
