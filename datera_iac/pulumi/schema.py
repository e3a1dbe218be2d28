"""The Pulumi package schema of ``datera``, derived from the resource core.

``schema.json`` beside this module is this function's output, written by
``python -m datera_iac.pulumi.gen`` and checked against the core by the tests; the provider
answers GetSchema from the same function, so the two never disagree.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from datera_iac.pulumi.examples import examples_markdown
from datera_iac.pulumi._derive import Prop, config_props, kind_props, props_of
from datera_iac.resources.base import Kind

__all__ = ["GO_MODULE", "NODE_PACKAGE", "PACKAGE", "build_schema", "package_schema", "property_spec", "prose"]

PACKAGE = "datera"
#: The npm package and Go module of the generated SDKs (sdk/nodejs, sdk/go).
NODE_PACKAGE = "@datera-iac/datera"
GO_MODULE = "github.com/datera/datera-iac/sdk/go"


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
    # the SDKs read a scalar's environment variable themselves; for a map or list the
    # generated Go cannot convert the string (the provider still reads the variable)
    if config and p.env and spec.get("type") in ("string", "integer", "number", "boolean"):
        spec["defaultInfo"] = {"environment": list(p.env)}
    if p.deprecated:
        spec["deprecationMessage"] = str(p.deprecated)
    return spec


def prose(text: str) -> str:
    """A docstring as schema prose: common indentation removed (indented lines would
    render as code blocks in every SDK's docs)."""
    return inspect.cleandoc(text)


def _object(props: Sequence[Prop]) -> dict[str, Any]:
    return {
        "properties": {p.name: property_spec(p) for p in props},
        "required": sorted(p.name for p in props if p.required),
    }


def _function(fn: Any) -> dict[str, Any]:
    return {"description": prose(fn.doc), "inputs": _object(fn.inputs),
            "outputs": _object(fn.outputs)}


def _resource(kind: Kind[Any, Any]) -> dict[str, Any]:
    kp = kind_props(kind)
    doc = prose(kind.__doc__ or kind.name) + examples_markdown(kind.token)
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
    functions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The package schema for ``kinds`` (token -> kind) and the provider configuration
    (default: the fields of ``DateraConfig``). A ``name`` field is not a required input:
    the provider defaults it to the resource's logical name. ``functions``: token ->
    :class:`~datera_iac.pulumi.functions.Function` (default: none)."""
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
        # supportPack: the SDKs carry the schema's version (package.json, go.mod,
        # pulumi-plugin.json), so the generated sdk/ directories are publishable as they are
        "meta": {"moduleFormat": "(.*)", "supportPack": True},
        "config": {"variables": variables},
        "provider": {
            "description": "The provider type for the datera package: the DSP connection.",
            "inputProperties": variables,
            "properties": {
                k: v for k, v in variables.items() if not v.get("secret")
            },
        },
        "resources": {token: _resource(k) for token, k in sorted(kinds.items())},
        "functions": {t: _function(f) for t, f in sorted((functions or {}).items())},
        "types": {
            t: {"type": "object", "description": f"A row of {f.token.rsplit(':', 1)[-1]}.",
                **_object(props)}
            for f in (functions or {}).values() for t, props in sorted(f.types.items())
        },
        "language": {
            "python": {
                "packageName": "datera_iac.pulumi",
                "requires": {"pulumi": ">=3.200,<4"},
            },
            "nodejs": {
                "packageName": NODE_PACKAGE,
                "packageDescription": "Pulumi SDK of the Datera DSP provider (datera-iac).",
                "typescriptVersion": "^5.4.0",
                "devDependencies": {"@types/node": "^20"},
                "respectSchemaVersion": True,
            },
            "go": {
                "importBasePath": f"{GO_MODULE}/datera",
                "generateResourceContainerTypes": True,
                "respectSchemaVersion": True,
            },
        },
    }


def package_schema() -> dict[str, Any]:
    """The schema of the package as shipped: every registered kind and every function."""
    from datera_iac.pulumi.functions import functions
    from datera_iac.pulumi.provider import plugin_version, registered_kinds

    return build_schema(registered_kinds(), plugin_version(), functions=functions())
