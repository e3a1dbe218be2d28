"""One example program per resource, written once and rendered in TypeScript, Python, Go
and YAML into the resource's schema description (Pulumi's ``{{% example %}}`` blocks: each
SDK's code generator keeps its own language's block for its docs).

tests/pulumi/test_sdks.py compiles the TypeScript and Go renderings against the generated
SDKs, runs the Python ones under Pulumi mocks and checks the YAML ones' types and
properties against the schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from datera_iac.names import snake

__all__ = ["EXAMPLES", "LANGUAGES", "Ref", "examples_markdown", "render"]


@dataclass(frozen=True)
class Ref:
    """An output of an earlier resource of the same example (``id`` or a property)."""

    resource: str
    prop: str = "id"


# (logical name, resource type name, inputs (camelCase)); the last one is the example's subject
Step = tuple[str, str, dict[str, Any]]

_GOLD: Step = ("gold", "VolumeType", {"name": "gold", "replicaCount": 3, "totalIopsMax": 10000})
_DB: Step = ("db", "Volume", {"name": "db", "size": 20})
_APP: Step = ("app", "ConsistencyGroup", {"name": "app", "volumes": {"data": 100, "log": 10}})

#: token -> (title, steps)
EXAMPLES: dict[str, tuple[str, list[Step]]] = {
    "datera:index:Tenant": ("A tenant", [
        ("team", "Tenant", {"name": "team-a", "description": "Volumes of team A"}),
    ]),
    "datera:index:VolumeType": ("A volume type with three replicas and an IOPS cap", [_GOLD]),
    "datera:index:Volume": ("A volume of a volume type", [
        _GOLD,
        ("db", "Volume", {"name": "db", "size": 50, "volumeType": Ref("gold", "name"),
                          "extraSpecs": Ref("gold", "extraSpecs")}),
    ]),
    "datera:index:Snapshot": ("A snapshot of a volume", [
        _DB, ("dbSnap", "Snapshot", {"volumeId": Ref("db")}),
    ]),
    "datera:index:NodeAttachment": ("A volume attached, formatted and mounted on a node", [
        _DB, ("dbOnNode", "NodeAttachment", {"volumeId": Ref("db"), "node": "ssh://root@node1",
                                             "filesystem": "ext4", "mountPoint": "/srv/db"}),
    ]),
    "datera:index:VolumeImage": ("A qcow2 image of a volume", [
        _DB, ("dbImage", "VolumeImage", {"volumeId": Ref("db"), "path": "/srv/images/db.qcow2",
                                         "format": "qcow2"}),
    ]),
    "datera:index:ConsistencyGroup": ("Two volumes snapshotted together", [_APP]),
    "datera:index:ConsistencyGroupSnapshot": ("A snapshot of every member at one instant", [
        _APP, ("appSnap", "ConsistencyGroupSnapshot", {"groupId": Ref("app")}),
    ]),
}

LANGUAGES = ("typescript", "python", "go", "yaml")


def _used(steps: list[Step]) -> set[str]:
    return {v.resource for _, _, props in steps for v in props.values() if isinstance(v, Ref)}


def _ts_value(v: Any) -> str:
    if isinstance(v, Ref):
        return f"{v.resource}.{v.prop}"
    return json.dumps(v)


def _typescript(steps: list[Step]) -> str:
    lines = ['import * as datera from "@datera-iac/datera";', ""]
    for name, typ, props in steps:
        args = ", ".join(f"{k}: {_ts_value(v)}" for k, v in props.items())
        lines.append(f'const {name} = new datera.{typ}("{name}", {{ {args} }});')
    lines.append(f"export const id = {steps[-1][0]}.id;")
    return "\n".join(lines)


def _py_value(v: Any) -> str:
    if isinstance(v, Ref):
        return f"{snake(v.resource)}.{snake(v.prop)}"
    return json.dumps(v) if not isinstance(v, bool) else str(v)


def _python(steps: list[Step]) -> str:
    types = sorted({typ for _, typ, _ in steps})
    lines = ["import pulumi", f"from datera_iac.pulumi import {', '.join(types)}", ""]
    for name, typ, props in steps:
        args = ", ".join(f"{snake(k)}={_py_value(v)}" for k, v in props.items())
        lines.append(f'{snake(name)} = {typ}("{name}", {args})')
    lines.append(f'pulumi.export("id", {snake(steps[-1][0])}.id)')
    return "\n".join(lines)


def _go_name(prop: str) -> str:
    return prop[:1].upper() + prop[1:]


def _go_value(v: Any) -> str:
    if isinstance(v, Ref):
        if v.prop == "id":
            return f"{v.resource}.ID().ToStringOutput()"
        return f"{v.resource}.{_go_name(v.prop)}"
    if isinstance(v, bool):
        return f"pulumi.Bool({str(v).lower()})"
    if isinstance(v, int):
        return f"pulumi.Int({v})"
    if isinstance(v, dict):
        kind = "Int" if all(isinstance(x, int) for x in v.values()) else "String"
        items = ", ".join(f"{json.dumps(k)}: {_go_value(x)}" for k, x in v.items())
        return f"pulumi.{kind}Map{{{items}}}"
    return f"pulumi.String({json.dumps(v)})"


def _go(steps: list[Step]) -> str:
    used = _used(steps)
    lines = ["package main", "", "import (", '\t"github.com/datera/datera-iac/sdk/go/datera"',
             '\t"github.com/pulumi/pulumi/sdk/v3/go/pulumi"', ")", "", "func main() {",
             "\tpulumi.Run(func(ctx *pulumi.Context) error {"]
    last = steps[-1][0]
    for i, (name, typ, props) in enumerate(steps):
        var = name if name in used or name == last else "_"
        assign = ":=" if i == 0 or var != "_" else "="
        lines.append(f'\t\t{var}, err {assign} datera.New{typ}(ctx, "{name}", &datera.{typ}Args{{')
        width = max(len(k) for k in props) + 2  # gofmt's alignment
        lines += [f"\t\t\t{_go_name(k) + ':':<{width}}{_go_value(v)}," for k, v in props.items()]
        lines += ["\t\t})", "\t\tif err != nil {", "\t\t\treturn err", "\t\t}"]
    lines += [f'\t\tctx.Export("id", {last}.ID())', "\t\treturn nil", "\t})", "}"]
    return "\n".join(lines)


def _yaml_value(v: Any) -> str:
    if isinstance(v, Ref):
        return f"${{{v.resource}.{v.prop}}}"
    return json.dumps(v)


def _yaml(steps: list[Step]) -> str:
    lines = ["resources:"]
    for name, typ, props in steps:
        lines += [f"  {name}:", f"    type: datera:index:{typ}", "    properties:"]
        lines += [f"      {k}: {_yaml_value(v)}" for k, v in props.items()]
    lines += ["outputs:", f"  id: ${{{steps[-1][0]}.id}}"]
    return "\n".join(lines)


_RENDER = {"typescript": _typescript, "python": _python, "go": _go, "yaml": _yaml}


def render(token: str, language: str) -> str:
    """The example program of ``token`` in ``language`` (one of :data:`LANGUAGES`)."""
    return _RENDER[language](EXAMPLES[token][1])


def examples_markdown(token: str) -> str:
    """The ``{{% examples %}}`` section appended to the resource's description."""
    if token not in EXAMPLES:
        return ""
    title = EXAMPLES[token][0]
    blocks = "\n".join(f"```{lang}\n{render(token, lang)}\n```" for lang in LANGUAGES)
    return (f"\n\n{{{{% examples %}}}}\n## Example Usage\n\n{{{{% example %}}}}\n### {title}\n\n"
            f"{blocks}\n{{{{% /example %}}}}\n{{{{% /examples %}}}}")

