"""The Pulumi package schema of ``datera``, derived from the resource core.

``schema.json`` beside this module is this function's output, written by
``python -m datera_iac.pulumi.gen`` and checked against the core by the tests; the provider
answers GetSchema from the same function, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from datera_iac.pulumi._derive import Prop, config_props, kind_props, props_of
from datera_iac.resources.base import Kind

__all__ = ["PACKAGE", "build_schema", "property_spec"]

PACKAGE = "datera"


def property_spec(p: Prop, *, config: bool = False) -> dict[str, Any]:
    """The schema entry of one property."""
    spec: dict[str, Any] = dict(p.schema_type)
    spec["description"] = p.doc
    if p.secret:
        spec["secret"] = True
    if p.replace and not p.output:
        spec["willReplaceOnChanges"] = True
    if p.has_default and p.default not in (None, "") and not p.output and not p.secret and not isinstance(
        p.default, (list, dict)
    ):
        spec["default"] = p.default
    if config and p.env:
        spec["defaultInfo"] = {"environment": list(p.env)}
    if p.deprecated:
        spec["deprecationMessage"] = str(p.deprecated)
    return spec


def _resource(kind: Kind[Any, Any]) -> dict[str, Any]:
    kp = kind_props(kind)
    doc = (kind.__doc__ or kind.name).strip()
    if kind.import_id_doc:
        doc += (
            f"\n\n## Import\n\n```sh\npulumi import {kind.token} <resource name> "
            f"'{kind.import_id_doc}'\n```"
        )
    return {
        "description": doc,
        "properties": {p.name: property_spec(p) for p in kp.all},
        "required": sorted(p.name for p in kp.inputs if p.required),
        "inputProperties": {p.name: property_spec(p) for p in kp.inputs},
        "requiredInputs": sorted(p.name for p in kp.inputs if p.required and p.field != "name"),
    }


def build_schema(
    kinds: Mapping[str, Kind[Any, Any]],
    version: str = "0.1.0",
    *,
    config: Sequence[Prop] | type | None = None,
) -> dict[str, Any]:
    """The package schema for ``kinds`` (token -> kind) and the provider configuration
    (default: the fields of ``DateraConfig``). A ``name`` field is not a required input:
    the provider defaults it to the resource's logical name."""
    if config is None:
        cfg = config_props()
    elif isinstance(config, type):
        cfg = props_of(config)
    else:
        cfg = tuple(config)
    variables = {p.name: property_spec(p, config=True) for p in cfg}
    return {
        "name": PACKAGE,
        "displayName": "Datera",
        "version": version,
        "description": (
            "Manage Datera Data Services Platform block storage (tenants, volume types, "
            "volumes, snapshots, node attachments)."
        ),
        "keywords": ["pulumi", "datera", "storage", "iscsi", "category/infrastructure"],
        "license": "Apache-2.0",
        "meta": {"moduleFormat": "(.*)"},
        "config": {"variables": variables},
        "provider": {
            "description": "The provider type for the datera package: the DSP connection.",
            "inputProperties": variables,
            "properties": {
                k: v for k, v in variables.items() if not v.get("secret")
            },
        },
        "resources": {token: _resource(k) for token, k in sorted(kinds.items())},
        "language": {
            "python": {
                "packageName": "datera_iac.pulumi",
                "requires": {"pulumi": ">=3.200,<4"},
            }
        },
    }
