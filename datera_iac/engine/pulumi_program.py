"""Run a Pulumi Python program (``import pulumi``, the ``datera_iac.pulumi`` classes,
``pulumi.Config``, ``pulumi.export``) as an engine stack.

The program runs under Pulumi's own mocks (``pulumi.runtime.set_mocks``), so the Pulumi
SDK behaves as under ``pulumi up`` without a Pulumi CLI: each resource it registers becomes
a :class:`~datera_iac.engine.model.ResourceDecl`. Nothing is created while it runs; every
output a resource would have (``db.id``, ``gold.extra_specs``) is a placeholder that comes
back as a :class:`~datera_iac.engine.model.Ref`, so references order the graph exactly as
in an engine program. Resource options (``protect``, ``retain_on_delete``, ``depends_on``,
``import_``, ``delete_before_replace``, ``ignore_changes``) are kept. An explicit
``pulumi:providers:datera`` resource is not supported: the engine has one DSP connection
(its ``datera:`` config).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from datera_iac.engine.model import Concat, Location, Ref, ResourceDecl, ResourceOptions, StackError
from datera_iac.names import camel, resolve, snake

__all__ = ["uses_pulumi", "run_pulumi_program"]

_MARK = "\x00datera-ref\x00"
_PLACEHOLDER = re.compile(re.escape(_MARK) + r"([^\x00]+)\x00([^\x00]+)\x00")


def uses_pulumi(path: Path) -> bool:
    """Does the program use the Pulumi SDK (rather than ``datera_iac.engine``)?"""
    text = path.read_text(errors="replace")
    return bool(re.search(r"^\s*(import pulumi\b|from pulumi\b|from datera_iac\.pulumi\b|"
                          r"import datera_iac\.pulumi\b)", text, re.M))


def _placeholder(name: str, field: str) -> str:
    return f"{_MARK}{name}\x00{field}\x00"


def _refs(value: Any) -> Any:
    """Placeholders (from the mocks' outputs) back to Refs; containers walked."""
    from datera_iac.pulumi._codec import Secret

    if isinstance(value, Secret):
        return _refs(value.value)
    if isinstance(value, str) and _MARK in value:
        parts: list[Any] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(value):
            if m.start() > pos:
                parts.append(value[pos:m.start()])
            parts.append(Ref(m.group(1), (m.group(2),)))
            pos = m.end()
        if pos < len(value):
            parts.append(value[pos:])
        return parts[0] if len(parts) == 1 else Concat(tuple(parts))
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire has one number type: 2 comes back as 2.0
    if isinstance(value, Mapping):
        return {k: _refs(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_refs(v) for v in value]
    return value


def _options(opts: Any, kind: Any) -> ResourceOptions:
    if opts is None:
        return ResourceOptions()
    fields = {f.name for f in attrs.fields(kind.Spec)}
    deps = []
    for d in opts.depends_on or ():
        deps.append(getattr(d, "_name", None) or str(d))
    return ResourceOptions(
        depends_on=tuple(deps), protect=bool(opts.protect),
        retain_on_delete=bool(opts.retain_on_delete), import_id=opts.import_ or None,
        delete_before_replace=bool(opts.delete_before_replace),
        ignore_changes=tuple(resolve(x, fields) or x for x in opts.ignore_changes or ()),
    )


def run_pulumi_program(path: Path, *, project: str, stack: str, stack_config: Mapping[str, Any],
                       provider_config: Mapping[str, Any]) -> tuple[dict[str, ResourceDecl], dict[str, Any]]:
    """(resources, outputs) the program declares. ``stack_config``: the program's own
    config keys (``pulumi.Config().get(key)``); ``provider_config``: ``datera:`` options."""
    import pulumi
    from pulumi.runtime import Mocks

    from datera_iac.pulumi.testing import _from_mock, run_program
    from datera_iac.resources.base import KINDS

    decls: dict[str, ResourceDecl] = {}
    opts_of: dict[tuple[str, str], Any] = {}
    where = Location(str(path))

    class Recorder(Mocks):
        def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            raise StackError(f"the datera package has no functions ({args.token})", where=where)

        def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
            if args.typ.startswith("pulumi:providers:"):
                raise StackError(
                    f"explicit provider {args.name!r}: the engine has one DSP connection",
                    where=where, resource=args.name,
                    fix="set datera:<option> config (or --endpoint) instead of a Provider resource")
            kind = KINDS.get(args.typ)
            if kind is None:
                raise StackError(f"{args.typ} is not a datera kind", where=where, resource=args.name)
            fields = {f.name for f in attrs.fields(kind.Spec)}
            props: dict[str, Any] = {}
            for key, value in _from_mock(dict(args.inputs)).items():
                field = resolve(key, fields) or kind.field_for(snake(key))
                if field is None:
                    raise StackError(f"unknown property {key!r}", where=where, resource=args.name,
                                     kind=kind.name)
                if value is not None:
                    props[field] = _refs(value)
            decls[args.name] = ResourceDecl(
                name=args.name, type=kind.token, properties=props,
                options=_options(opts_of.get((args.typ, args.name)), kind), where=where)
            outs = {f.name for f in attrs.fields(kind.Spec)} | {f.name for f in attrs.fields(kind.Outputs)}
            return _placeholder(args.name, "id"), {camel(f): _placeholder(args.name, f) for f in outs}

    original = pulumi.CustomResource.__init__

    def init(self: Any, t: str, name: str, props: Any = None, opts: Any = None, *a: Any, **kw: Any) -> None:
        opts_of[(t, name)] = opts
        original(self, t, name, props, opts, *a, **kw)

    config = {f"{project}:{k}": str(v) for k, v in stack_config.items()}
    config.update({f"datera:{camel(k)}": str(v) for k, v in provider_config.items()})
    pulumi.CustomResource.__init__ = init  # type: ignore[method-assign]
    try:
        outputs = run_program(str(path), Recorder(), config=config, project=project, stack=stack)
    finally:
        pulumi.CustomResource.__init__ = original  # type: ignore[method-assign]
    return decls, {k: _refs(v) for k, v in outputs.items()}
