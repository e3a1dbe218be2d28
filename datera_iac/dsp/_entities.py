"""DSP API entities as attrs classes, and the one cattrs converter factory for the wire.

Why tolerant: newer DSPs add fields and some send ``null`` where older ones send ``[]`` or
``""``. Responses are structured with ``forbid_extra_keys=False``; every field has a default,
a ``null`` for a field that is not optional falls back to that default instead of failing,
and a bare path string where an object is expected (API v2's references) becomes
``{"path": ...}``. Nested references (``{"path": ...}``) are :class:`Ref`. CHAP secrets are
``repr=False`` (the DSP shows them as ``"(hidden)"`` anyway).

Use :func:`from_api` to structure a response ``data`` and :func:`to_api` to build a
request body (``None`` values dropped, so a partial entity makes a partial body).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn
from cattrs.preconf.json import make_converter as _json_converter

__all__ = [
    "ENTITIES",
    "Access",
    "AclPolicy",
    "AppInstance",
    "AppTemplate",
    "Auth",
    "Initiator",
    "PerformancePolicy",
    "Ref",
    "Snapshot",
    "StorageInstance",
    "StorageTemplate",
    "System",
    "Tenant",
    "Volume",
    "VolumeTemplate",
    "api_converter",
    "from_api",
    "make_converter",
    "to_api",
]

T = TypeVar("T")

_entity = attrs.define(kw_only=True, slots=True)


@_entity
class Ref:
    """A reference to another object: ``{"path": ..., "resolved_path": ..., ...}``."""

    path: str = ""
    resolved_path: str | None = None
    resolved_tenant: str | None = None


@_entity
class PerformancePolicy:
    """QoS of a volume. All limits are integers, 0 = unlimited; bandwidth in KiB/s."""

    path: str | None = None
    total_iops_max: int = 0
    read_iops_max: int = 0
    write_iops_max: int = 0
    total_bandwidth_max: int = 0
    read_bandwidth_max: int = 0
    write_bandwidth_max: int = 0


@_entity
class Snapshot:
    """A volume or app-instance snapshot; ``timestamp`` is its URL key ("secs.fraction")."""

    path: str = ""
    timestamp: str | None = None
    utc_ts: str | None = None
    uuid: str | None = None
    op_state: str | None = None
    tenant: str | None = None


@_entity
class Volume:
    """A volume (LUN) of a storage instance. ``size`` is in GiB."""

    path: str = ""
    name: str = ""
    uuid: str | None = None
    size: int | float = 0
    replica_count: int | None = None
    capacity_in_use: int | float | None = None
    placement_mode: str | None = None
    placement_policy: Ref | None = None
    performance_policy: PerformancePolicy | None = None
    op_state: str | None = None
    op_status: str | None = None
    health: str | None = None
    deployment_state: str | None = None
    restore_point: str | None = None
    snapshots: list[Snapshot] = attrs.field(factory=list)
    snapshot_policies: list[dict[str, Any]] = attrs.field(factory=list)
    active_storage_nodes: list[Ref] = attrs.field(factory=list)


@_entity
class Access:
    """Where a storage instance is exported: target IQN and portal IPs (port 3260)."""

    path: str | None = None
    iqn: str | None = None
    ips: list[str] = attrs.field(factory=list)


@_entity
class Auth:
    """iSCSI auth of a storage instance: ``type`` none, chap or mchap."""

    path: str | None = None
    type: str = "none"
    initiator_user_name: str | None = None
    initiator_pswd: str | None = attrs.field(default=None, repr=False)
    target_user_name: str | None = None
    target_pswd: str | None = attrs.field(default=None, repr=False)


@_entity
class AclPolicy:
    """The initiators and initiator groups allowed to log in to a storage instance."""

    path: str | None = None
    initiators: list[Ref] = attrs.field(factory=list)
    initiator_groups: list[Ref] = attrs.field(factory=list)


@_entity
class StorageInstance:
    """One iSCSI target of an app instance (Cinder's ``storage-1``)."""

    path: str = ""
    name: str = ""
    uuid: str | None = None
    admin_state: str | None = None
    op_state: str | None = None
    health: str | None = None
    deployment_state: str | None = None
    access_control_mode: str | None = None
    acl_policy: AclPolicy | None = None
    ip_pool: Ref | None = None
    access: Access | None = None
    auth: Auth | None = None
    volumes: list[Volume] = attrs.field(factory=list)
    active_initiators: list[Any] = attrs.field(factory=list)
    active_storage_nodes: list[Ref] = attrs.field(factory=list)


@_entity
class AppInstance:
    """An application instance: one Cinder volume (``OS-<id>``) is one app instance."""

    path: str = ""
    id: str = ""
    name: str = ""
    descr: str | None = None
    uuid: str | None = None
    tenant: str | None = None
    create_mode: str | None = None
    admin_state: str | None = None
    op_state: str | None = None
    health: str | None = None
    deployment_state: str | None = None
    access_control_mode: str | None = None
    app_template: Ref | None = None
    storage_instances: list[StorageInstance] = attrs.field(factory=list)
    snapshots: list[Snapshot] = attrs.field(factory=list)
    snapshot_policies: list[dict[str, Any]] = attrs.field(factory=list)


@_entity
class Tenant:
    """A tenant; ``path`` is ``/root`` or ``/root/<name>``."""

    path: str = ""
    name: str = ""
    descr: str | None = None
    parent_path: str | None = None
    subtenants: list[Any] = attrs.field(factory=list)


@_entity
class Initiator:
    """An iSCSI initiator (``id`` is the IQN), visible from the tenant it was made in."""

    path: str = ""
    id: str = ""
    name: str | None = None
    tenant: str | None = None


@_entity
class VolumeTemplate:
    path: str | None = None
    name: str = ""
    size: int | float | None = None
    replica_count: int | None = None
    placement_mode: str | None = None
    placement_policy: Ref | None = None
    performance_policy: PerformancePolicy | None = None


@_entity
class StorageTemplate:
    path: str | None = None
    name: str = ""
    volume_templates: list[VolumeTemplate] = attrs.field(factory=list)
    ip_pool: Any = None
    auth: Any = None


@_entity
class AppTemplate:
    """An app template: SI and volume layouts an app instance can be created from."""

    path: str = ""
    name: str = ""
    descr: str | None = None
    storage_templates: list[StorageTemplate] = attrs.field(factory=list)


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


ENTITIES: tuple[type, ...] = (
    Ref, PerformancePolicy, Snapshot, Volume, Access, Auth, AclPolicy, StorageInstance,
    AppInstance, Tenant, Initiator, VolumeTemplate, StorageTemplate, AppTemplate, System,
)


def _optional(tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def make_converter(*, forbid_extra_keys: bool = False) -> cattrs.Converter:
    """A JSON converter for DSP entities (cattrs' ``preconf.json`` shape).

    ``forbid_extra_keys=False`` (the default, for API responses): unknown keys are ignored,
    because newer DSPs add fields. A ``null`` for a non-optional field takes the field's
    default. Use ``True`` only where an unknown key is a user mistake.
    """
    conv = _json_converter(forbid_extra_keys=forbid_extra_keys)

    def factory(cls: type) -> Any:
        inner: Any = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=forbid_extra_keys)
        hints = typing.get_type_hints(cls)
        not_null = frozenset(a.name for a in attrs.fields(cls) if not _optional(hints[a.name]))
        fields = frozenset(a.name for a in attrs.fields(cls))

        def structure(data: Any, _: type) -> Any:
            if isinstance(data, str) and "path" in fields:
                # Legacy shapes give a reference as a bare path string ("/access_network_
                # ip_pools/default", "/storage_nodes/<uuid>"): read it as {"path": ...}.
                return cls(path=data)
            if isinstance(data, Mapping):
                data = {k: v for k, v in data.items() if not (v is None and k in not_null)}
            return inner(data, cls)

        return structure

    conv.register_structure_hook_factory(lambda t: t in ENTITIES, factory)
    # A DSP writes some strings as numbers (snapshot timestamps) and vice versa.
    conv.register_structure_hook(str, lambda v, _: v if isinstance(v, str) else str(v))
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


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _drop_none(v)
            for k, v in value.items()
            if v is not None and not (k == "path" and v == "")
        }
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def to_api(entity: Any) -> Any:
    """Plain JSON data for a request body; ``None`` fields and empty ``path`` are left out.

    The DSP rejects unknown and read-only keys in bodies (``additionalProperties: false``),
    so build bodies from entities made for the purpose, not from ones read back.
    """
    return _drop_none(api_converter().unstructure(entity))
