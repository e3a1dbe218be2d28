"""Stacks written as Python programs.

A program declares resources by constructing them; nothing talks to the DSP while it runs
(like Pulumi, the program only builds the desired graph, and ``preview``/``up`` act on it)::

    from datera_iac import engine

    gold = engine.VolumeType("gold", name="gold", replica_count=3)
    vol = engine.Volume("db", name="db-1", size=10, volume_type=gold.name,
                        extra_specs=gold.extra_specs)
    snap = engine.Snapshot("db-snap", volume_id=vol.id)
    engine.export("volume_id", vol.id)

Attribute access on a resource (``vol.id``, ``gold.extra_specs``) gives a :class:`Ref`,
resolved when the referenced resource is known, and it orders the graph.
"""

from __future__ import annotations

import contextvars
import os
import runpy
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from datera_iac.engine.model import (
    Location,
    Ref,
    ResourceDecl,
    ResourceOptions,
    StackDef,
    StackError,
)
from datera_iac.engine.graph import check_secret_flow, mark_sensitive_outputs
from datera_iac.engine.pulumi_program import run_pulumi_program, uses_pulumi
from datera_iac.engine.yamlstack import split_config, validate_known
from datera_iac.errors import InputError
from datera_iac.resources.base import kind_for
from datera_iac.validators import parse_bool

__all__ = ["Config", "Resource", "Stack", "current_stack", "export", "load_program", "resource_class"]

_current: contextvars.ContextVar[Stack | None] = contextvars.ContextVar("datera_iac_stack", default=None)


class Config:
    """Stack configuration for a program (``--config key=value``, ``Pulumi.<stack>.yaml``)."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values = dict(values or {})
        self._read: set[str] = set()

    def unread(self) -> list[str]:
        """Keys set for the stack that the program never asked for (typos, after a run)."""
        return sorted(set(self._values) - self._read)

    def get(self, key: str, default: Any = None) -> Any:
        self._read.add(key)
        return self._values.get(key, default)

    def require(self, key: str) -> Any:
        """The value of ``key``; a missing key is an InputError saying how to set it."""
        self._read.add(key)
        if key not in self._values:
            raise InputError(f"config {key!r} is required", fix=f"pass --config {key}=<value>")
        return self._values[key]

    def get_int(self, key: str, default: int | None = None) -> int | None:
        v = self.get(key, default)
        return None if v is None else int(v)

    def get_bool(self, key: str, default: bool | None = None) -> bool | None:
        v = self.get(key, default)
        return None if v is None else parse_bool(v)


class Stack:
    """Collects the resources a program declares.

    Use it as a context manager (``with Stack("demo") as s: ...``) or let
    :func:`load_program` create one around a program file. ``stack.definition()`` is the
    :class:`StackDef` the engine plans from.
    """

    def __init__(
        self, project: str = "datera", *, stack: str = "dev",
        config: Mapping[str, Any] | None = None, source: str = "<program>",
    ) -> None:
        self.project = project
        self.stack = stack
        stack_cfg, provider = split_config(config or {}, project)
        self.config = Config(stack_cfg)
        self.provider_config = provider
        self.source = source
        self.resources: dict[str, ResourceDecl] = {}
        self.outputs: dict[str, Any] = {}
        self._token: contextvars.Token[Stack | None] | None = None

    def __enter__(self) -> Stack:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    def add(self, decl: ResourceDecl) -> None:
        if decl.name in self.resources:
            raise StackError(
                f"resource name {decl.name!r} is declared twice", where=decl.where,
                resource=decl.name, fix="give every resource a unique logical name",
            )
        self.resources[decl.name] = decl

    def export(self, name: str, value: Any) -> None:
        self.outputs[name] = _unwrap(value)

    def definition(self) -> StackDef:
        def kind_of(name: str) -> Any:
            decl = self.resources.get(name)
            return kind_for(decl.type) if decl is not None else None

        for decl in self.resources.values():
            for dep in decl.dependencies():
                if dep not in self.resources:
                    raise StackError(
                        f"refers to resource {dep!r}, which this stack does not declare",
                        where=decl.where, resource=decl.name,
                    )
            check_secret_flow(kind_for(decl.type), decl, kind_of)
        stack = StackDef(
            project=self.project, resources=dict(self.resources), outputs=dict(self.outputs),
            provider_config=dict(self.provider_config), source=self.source,
        )
        mark_sensitive_outputs(stack, kind_of)
        return stack


def current_stack() -> Stack:
    st = _current.get()
    if st is None:
        raise InputError(
            "no stack is being built",
            fix="declare resources in a program run by `datera-iac up -f prog.py`, "
                "or inside `with engine.Stack(...):`",
        )
    return st


def export(name: str, value: Any) -> None:
    """Export a stack output (shown after ``up``, kept in state)."""
    current_stack().export(name, value)


def _caller() -> Location | None:
    """The first stack frame outside this package: where the user declared the resource."""
    here = os.path.dirname(__file__)
    f = sys._getframe(1)
    while f is not None and os.path.dirname(f.f_code.co_filename) == here:
        f = f.f_back
    return Location(f.f_code.co_filename, f.f_lineno) if f is not None else None


def _unwrap(value: Any) -> Any:
    """Resources used as values stand for their id; Refs stay deferred."""
    if isinstance(value, Resource):
        return Ref(value._name, ("id",))
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unwrap(v) for v in value]
    return value


class Resource:
    """A declared resource of kind ``kind_name``; subclasses fix the kind (``engine.Volume``).

    The first (positional) argument is the logical name in the stack; keyword arguments
    are the kind's spec fields (snake_case, so a spec field called ``name`` is fine).
    ``opts`` takes a :class:`ResourceOptions` or a dict of its fields (``protect``,
    ``retain_on_delete``, ``depends_on``, ``import_id``).
    """

    kind_name: str = ""

    def __init__(self, resource_name: str, /, *,
                 opts: ResourceOptions | Mapping[str, Any] | None = None, **properties: Any) -> None:
        name = resource_name
        where = _caller()
        if not self.kind_name:
            raise TypeError("use a kind class (engine.Volume, ...) or engine.resource_class(kind)")
        k = kind_for(self.kind_name)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_kind", k)
        known = {f.name for f in attrs.fields(k.Spec)}
        for key in list(properties):
            field = k.field_for(key)
            if field is not None and field != key:  # a former name: read as the field
                if properties.get(field) is not None:
                    raise StackError(
                        f"{key!r} and {field!r} are both set", where=where, resource=name,
                        kind=k.name, field=key, fix=f"keep only {field}")
                properties[field] = properties.pop(key)
            elif key not in known:
                raise StackError(
                    f"unknown property {key!r}", where=where, resource=name, kind=k.name,
                    field=key, fix=f"{k.name} properties: {', '.join(sorted(known))}",
                )
        if opts is None:
            options = ResourceOptions()
        elif isinstance(opts, ResourceOptions):
            options = opts
        else:
            options = ResourceOptions(**dict(opts))
        options = attrs.evolve(options, depends_on=tuple(
            d._name if isinstance(d, Resource) else str(d) for d in options.depends_on))
        props = {k2: _unwrap(v) for k2, v in properties.items()}
        decl = ResourceDecl(name=name, type=k.token, properties=props, options=options, where=where)
        validate_known(k, decl)
        current_stack().add(decl)

    def __getattr__(self, attr: str) -> Ref:
        if attr.startswith("_"):
            raise AttributeError(attr)
        k = self._kind
        names = {"id"} | {f.name for f in attrs.fields(k.Spec)} | {f.name for f in attrs.fields(k.Outputs)}
        if attr not in names:
            raise AttributeError(f"{k.name} {self._name!r} has no attribute {attr!r}; known: {', '.join(sorted(names))}")
        return Ref(self._name, (attr,))

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError("resources are immutable once declared")

    def __repr__(self) -> str:
        return f"<{self._kind.name} {self._name}>"


_classes: dict[str, type[Resource]] = {}


def resource_class(kind_name: str) -> type[Resource]:
    """The Resource subclass for a kind (``engine.Volume``), built on first use."""
    k = kind_for(kind_name)
    cls = _classes.get(k.name)
    if cls is None:
        cls = type(k.name, (Resource,), {
            "kind_name": k.name,
            "__doc__": f"A {k.name} ({k.token}) declared in a program.",
            "__module__": "datera_iac.engine",
        })
        _classes[k.name] = cls
    return cls


def load_program(path: str | Path, *, stack: str = "dev", config: Mapping[str, Any] | None = None,
                 project: str | None = None) -> StackDef:
    """Run a Python program and return the stack it declares.

    Errors the program raises are reported with the program's file and line, never as a
    traceback into the engine.
    """
    p = Path(path).resolve()
    st = Stack(project or p.parent.name or "datera", stack=stack, config=config, source=str(p))
    sys.path.insert(0, str(p.parent))
    try:
        if uses_pulumi(p):  # a Pulumi program: run under Pulumi's mocks, see pulumi_program
            decls, outputs = run_pulumi_program(
                p, project=st.project, stack=stack, stack_config=st.config._values,
                provider_config=st.provider_config)
            for decl in decls.values():
                st.add(decl)
            st.outputs.update(outputs)
            st.config._read.update(st.config._values)  # pulumi.Config reads are not seen
        else:
            with st:
                runpy.run_path(str(p), run_name="__main__")
    except StackError:
        raise
    except InputError as e:
        raise StackError.wrap(e, _program_line(e, p), e.resource) from None
    except SystemExit as e:
        if e.code not in (0, None):
            raise StackError(f"program exited with {e.code}", where=Location(str(p))) from None
    except Exception as e:  # noqa: BLE001 - a user's program may raise anything
        raise StackError(f"program failed: {type(e).__name__}: {e}", where=_program_line(e, p)) from None
    finally:
        try:
            sys.path.remove(str(p.parent))
        except ValueError:
            pass
    unread = st.config.unread()
    if unread:
        more = f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""
        raise StackError(f"config key {unread[0]!r}{more} is set but the program never reads it",
                         where=Location(str(p)),
                         fix="fix the --config / Pulumi.<stack>.yaml key (the program reads "
                             "config.get(...)); DSP options are datera:<option>")
    return st.definition()


def _program_line(e: BaseException, p: Path) -> Location:
    line = 0
    for fr in traceback.extract_tb(e.__traceback__):
        if Path(fr.filename).resolve() == p:
            line = fr.lineno or 0
    return Location(str(p), line)
