"""Dependency ordering of a stack's resources.

Edges come from references (``${vol.id}``), ``dependsOn``, and fields a kind marks as
``reference`` whose literal value names another resource of the stack (``volume_type:
gold`` when ``gold`` is a VolumeType declared alongside): users write names, and the
engine must still create the type before the volume.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from datera_iac.engine.model import Ref, ResourceDecl, StackDef, StackError, refs_in, reveal, secrets_in
from datera_iac.resources.base import REFERENCE, Kind, kind_for
from datera_iac.resources.plan import is_sensitive, secret_refusal

__all__ = ["check_acyclic", "check_secret_flow", "dependencies", "mark_sensitive_outputs",
           "secret_sources", "topo_order"]


def secret_sources(value: Any, kind_of: Callable[[str], Kind[Any, Any] | None]) -> list[str]:
    """What makes ``value`` secret: ``secret: true`` config keys and references to
    sensitive fields of other resources (``${v.chapSecret}``), described for an error."""
    out = [s.source for s in secrets_in(value)]
    for r in refs_in(value):
        if r.path and is_sensitive(kind_of(r.resource), r.path[0]):
            out.append(f"{Ref(r.resource, r.path[:1])}, a sensitive field")
    return out


def check_secret_flow(kind: Kind[Any, Any], decl: ResourceDecl,
                      kind_of: Callable[[str], Kind[Any, Any] | None]) -> None:
    """A secret may flow into a sensitive field only (the core's :func:`secret_refusal`,
    located at the field); sensitive fields get their secrets' plain values (masked from
    there on)."""
    for field, value in list(decl.properties.items()):
        sources = secret_sources(value, kind_of)
        if sources:
            refused = secret_refusal(kind, field, sources[0], resource=decl.name)
            if refused is not None:
                raise StackError.wrap(refused, decl.where_of(field), decl.name)
            decl.properties[field] = reveal(value)


def mark_sensitive_outputs(stack: StackDef, kind_of: Callable[[str], Kind[Any, Any] | None]) -> None:
    """Outputs built from a secret are recorded in ``stack.sensitive_outputs`` (shown
    ``(sensitive)``, stored as digests) and hold the plain value from here on."""
    for name, value in list(stack.outputs.items()):
        if secret_sources(value, kind_of):
            stack.sensitive_outputs.add(name)
            stack.outputs[name] = reveal(value)


def _implicit(stack: StackDef) -> dict[str, set[str]]:
    """Dependencies through literal values of ``reference`` fields."""
    by_kind_name: dict[tuple[str, str], str] = {}
    for decl in stack.resources.values():
        k = kind_for(decl.type)
        for key in ("name", "path"):
            v = decl.properties.get(key)
            if isinstance(v, str):
                by_kind_name[(k.name, v)] = decl.name
    out: dict[str, set[str]] = {}
    if not by_kind_name:
        return out
    for decl in stack.resources.values():
        for fname, target in _reference_fields(kind_for(decl.type).Spec):
            v = decl.properties.get(fname)
            if isinstance(v, str) and (target, v) in by_kind_name:
                dep = by_kind_name[(target, v)]
                if dep != decl.name:
                    out.setdefault(decl.name, set()).add(dep)
    return out


@functools.cache
def _reference_fields(spec: type) -> tuple[tuple[str, str], ...]:
    """(field name, kind it names) of a Spec's ``reference`` fields: looked up once per
    kind instead of scanning every field of every declaration (a Volume has ~40)."""
    return tuple((f.name, f.metadata[REFERENCE]) for f in attrs.fields(spec)
                 if f.metadata.get(REFERENCE))


def dependencies(stack: StackDef) -> dict[str, set[str]]:
    """name -> the names it must follow. Raises StackError for a dangling reference."""
    implicit = _implicit(stack)
    deps: dict[str, set[str]] = {}
    for name, decl in stack.resources.items():
        d = decl.dependencies() | implicit.get(name, set())
        for dep in d:
            if dep not in stack.resources:
                raise StackError(
                    f"refers to resource {dep!r}, which this stack does not declare",
                    where=decl.where, resource=name,
                )
        deps[name] = d
    check_acyclic(deps, stack)
    return deps


def check_acyclic(deps: Mapping[str, Iterable[str]], stack: StackDef | None = None) -> None:
    """Raise StackError naming the resources of a cycle (and where the first is declared).

    A depth-first walk with its own stack: a recursive closure would hold itself (and
    ``stack``) in a reference cycle after every call - the whole stack definition left to
    the cyclic collector, which the engine pauses during a run - and a chain of ~1,000
    dependencies would end in RecursionError."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n: WHITE for n in deps}
    for root in deps:
        if color[root] != WHITE:
            continue
        color[root] = GREY
        path = [root]
        todo = [iter(sorted(deps.get(root, ())))]
        while todo:
            for m in todo[-1]:
                if color.get(m, BLACK) == GREY:
                    cycle = path[path.index(m):] + [m]
                    decl = stack.resources.get(m) if stack else None
                    raise StackError(
                        f"dependency cycle: {' -> '.join(cycle)}",
                        where=decl.where if decl else None, resource=m,
                        fix="remove one of the references or dependsOn entries",
                    )
                if color.get(m) == WHITE:
                    color[m] = GREY
                    path.append(m)
                    todo.append(iter(sorted(deps.get(m, ()))))
                    break
            else:
                todo.pop()
                color[path.pop()] = BLACK


def topo_order(deps: Mapping[str, Iterable[str]], order: Iterable[str] | None = None) -> list[str]:
    """Names ordered so each comes after its dependencies; ties keep ``order``
    (declaration order), so output is stable run to run.

    A stack usually declares what a resource needs before the resource: then ``order`` is
    the answer, found in one pass. Otherwise a heap picks the earliest declared name whose
    dependencies are placed (O(n log n): 10,000 volumes under one tenant made the plan's
    ordering grow faster than the stack)."""
    names = list(order) if order is not None else list(deps)
    pos = {n: i for i, n in enumerate(names)}
    known = set(deps)
    remaining = {n: set(d) & known for n, d in deps.items()}
    n_max = 1 << 30  # a name ``order`` does not list comes after every listed one
    if all(n in pos and all(pos.get(m, n_max) < pos[n] for m in d) for n, d in remaining.items()):
        return [n for n in pos if n in remaining]
    out: list[str] = []
    dependents: dict[str, list[str]] = {}
    for n, d in remaining.items():
        for m in d:
            dependents.setdefault(m, []).append(n)
    heap = [(pos.get(n, n_max), n) for n, d in remaining.items() if not d]
    heapq.heapify(heap)
    while heap:
        _, n = heapq.heappop(heap)
        out.append(n)
        for m in dependents.get(n, ()):
            remaining[m].discard(n)
            if not remaining[m]:
                heapq.heappush(heap, (pos.get(m, n_max), m))
    if len(out) != len(remaining):
        check_acyclic(deps)
    return out
