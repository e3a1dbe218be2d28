"""The ``/api`` self-description the simulator serves and validates bodies against.

v2.1 is the real dump of ``GET /v2.1/api`` from a DSP (package data,
``data/dsp-v2.1-api-schema.json``). No v2.2 dump is public, so v2.2 is the v2.1 dump plus
the additions the reference lists (``template_override``, ``storage_pool``,
``repair_priority`` in app_instance create, ``placement_policy`` on volumes, ``force`` on
initiator create, placement policies, ``int_ecosystem_data``). Both are loaded once and
shared; callers must treat them as read-only.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

VERSIONS = ("v2.1", "v2.2")

_PATH_REF = {
    "type": "object",
    "properties": {"path": {"type": "string", "pattern": r"(^(\/)$)|(^(\/[^\/]+)+$)"}},
    "additionalProperties": False,
    "required": ["path"],
}
_NAME = {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_\-\.]{2,63}$"}
_DESCR = {"type": ["string", "null"], "pattern": r"^[a-zA-Z_][a-zA-Z0-9_\-\s\.]{2,127}$"}
_STORAGE_POOL = {"type": "array", "items": _PATH_REF}
_TEMPLATE_OVERRIDE = {
    "type": "object",
    "descr": "Overrides of template values, keyed by storage instance and volume name",
    "properties": {
        "storage_instances": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "volumes": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "size": {"type": ["string", "integer", "number"]},
                                "replica_count": {"type": ["string", "integer"]},
                            },
                            "additionalProperties": False,
                        },
                    }
                },
                "additionalProperties": False,
            },
        }
    },
    "additionalProperties": False,
}
_REPAIR_PRIORITY = {"type": "string", "enum": ["low", "medium", "high"]}
_PLACEMENT_POLICY_CREATE = {
    "type": "object",
    "properties": {
        "name": _NAME,
        "descr": _DESCR,
        "max": {"type": "array", "items": {"type": "string"}},
        "min": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name"],
    "additionalProperties": False,
}
_PLACEMENT_POLICY_UPDATE = {
    "type": "object",
    "properties": {
        "descr": _DESCR,
        "max": {"type": "array", "items": {"type": "string"}},
        "min": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}
_METADATA_BODY = {"type": "object", "additionalProperties": True}

TENANT_KEY = "/tenants/:tenant_path(((?:[A-Za-z0-9_-])+(?:/[.A-Za-z0-9_-]+){0,}$))"


@functools.cache
def load_v21() -> dict[str, Any]:
    """The real v2.1 dump (parsed once)."""
    text = resources.files("datera_iac.sim").joinpath("data/dsp-v2.1-api-schema.json").read_text()
    return json.loads(text)


def _body(schema: dict[str, Any], key: str, op: str) -> dict[str, Any] | None:
    ep = schema.get(key)
    if not isinstance(ep, dict):
        return None
    o = ep.get(op)
    if not isinstance(o, dict):
        return None
    b = o.get("bodyParamSchema")
    return b if isinstance(b, dict) else None


def _endpoint(path: str, ops: dict[str, dict[str, Any]], entity: str) -> dict[str, Any]:
    return {
        op: {
            "op": op,
            "path": path,
            "entity": entity,
            "minVersion": "3.3.0.0",
            "group": "app_storage_provisioning",
            "bodyParamSchema": body,
            "returnParamSchema": {"type": "object", "additionalProperties": True},
        }
        for op, body in ops.items()
    }


def _volume_v22_props(props: dict[str, Any]) -> None:
    props["placement_policy"] = copy.deepcopy(_PATH_REF)
    props["storage_pool"] = copy.deepcopy(_STORAGE_POOL)


@functools.cache
def load_v22() -> dict[str, Any]:
    """v2.1 plus the documented v2.2 / product 3.3 additions."""
    s = copy.deepcopy(load_v21())
    s["version"] = "v2.2"
    ai_create = _body(s, "/app_instances", "create")
    assert ai_create is not None
    props = ai_create["properties"]
    props["template_override"] = copy.deepcopy(_TEMPLATE_OVERRIDE)
    props["storage_pool"] = copy.deepcopy(_STORAGE_POOL)
    props["repair_priority"] = dict(_REPAIR_PRIORITY)
    for si in (props["storage_instances"]["items"],):
        for vol in (si["properties"]["volumes"]["items"],):
            _volume_v22_props(vol["properties"])
    ai_update = _body(s, "/app_instances/:id", "update")
    assert ai_update is not None
    ai_update["properties"]["repair_priority"] = dict(_REPAIR_PRIORITY)
    ai_update["properties"]["storage_pool"] = copy.deepcopy(_STORAGE_POOL)
    vols = "/app_instances/:id/storage_instances/:storage_instance_name/volumes"
    for key, op in ((vols, "create"), (vols + "/:volume_name", "update")):
        b = _body(s, key, op)
        assert b is not None
        _volume_v22_props(b["properties"])
    vc = _body(s, vols, "create")
    nested_vol = props["storage_instances"]["items"]["properties"]["volumes"]["items"]
    assert vc is not None
    vc["properties"]["performance_policy"] = copy.deepcopy(
        nested_vol["properties"]["performance_policy"]
    )
    vc["properties"]["snapshot_policies"] = copy.deepcopy(
        nested_vol["properties"]["snapshot_policies"]
    )
    vc["properties"]["force"] = {"type": "boolean"}
    for key in ("/initiators", "/initiator_groups"):
        b = _body(s, key, "create")
        assert b is not None
        b["properties"]["force"] = {"type": "boolean"}
    for key in (vols + "/:volume_name/snapshots", "/app_instances/:id/snapshots"):
        b = _body(s, key, "create")
        assert b is not None
        b["properties"]["remote_provider_uuid"] = {"type": "string"}
        b["properties"]["type"] = {"type": "string", "enum": ["local", "remote", "local_and_remote"]}
    s["/placement_policies"] = _endpoint(
        "/placement_policies", {"create": _PLACEMENT_POLICY_CREATE, "read": {}}, "placement_policy"
    )
    s["/placement_policies/:name"] = _endpoint(
        "/placement_policies/:name",
        {"read": {}, "update": _PLACEMENT_POLICY_UPDATE, "delete": {}},
        "placement_policy",
    )
    s["/app_instances/:id/int_ecosystem_data"] = _endpoint(
        "/app_instances/:id/int_ecosystem_data",
        {"read": {}, "update": {"type": "object", "properties": {"data": _METADATA_BODY},
                                "required": ["data"], "additionalProperties": False}},
        "int_ecosystem_data",
    )
    return s


def schema_for(version: str) -> dict[str, Any]:
    """The ``/api`` document of one API version ("v2.1" or "v2.2")."""
    return load_v22() if version == "v2.2" else load_v21()


def body_schema(version: str, template: str, op: str) -> dict[str, Any] | None:
    """The request body schema of ``op`` (create/read/update/delete) on ``template``.

    ``template`` uses the dump's ``:param`` style; ``/tenants/:tenant_path`` is mapped to
    the dump's regex-carrying key.
    """
    key = TENANT_KEY if template == "/tenants/:tenant_path" else template
    return _body(schema_for(version), key, op)
