"""Dependency ordering of a stack's resources.

Edges come from references (``${vol.id}``), ``dependsOn``, and fields a kind marks as
``reference`` whose literal value names another resource of the stack (``volume_type:
gold`` when ``gold`` is a VolumeType declared alongside): users write names, and the
engine must still create the type before the volume.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import attrs

from datera_iac.engine.model import StackDef, StackError
from datera_iac.resources.base import REFERENCE, kind_for

__all__ = ["check_acyclic", "dependencies", "topo_order"]


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
    """Raise StackError naming the resources of a cycle (and where the first is declared)."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n: WHITE for n in deps}
    path: list[str] = []

    def visit(n: str) -> None:
        color[n] = GREY
        path.append(n)
        for m in sorted(deps.get(n, ())):
            if color.get(m, BLACK) == GREY:
                cycle = path[path.index(m):] + [m]
                decl = stack.resources.get(m) if stack else None
                raise StackError(
                    f"dependency cycle: {' -> '.join(cycle)}",
                    where=decl.where if decl else None, resource=m,
                    fix="remove one of the references or dependsOn entries",
                )
            if color.get(m) == WHITE:
                visit(m)
        path.pop()
        color[n] = BLACK

    for n in list(deps):
        if color[n] == WHITE:
            visit(n)


def topo_order(deps: Mapping[str, Iterable[str]], order: Iterable[str] | None = None) -> list[str]:
    """Names ordered so each comes after its dependencies; ties keep ``order``
    (declaration order), so output is stable run to run."""
    names = list(order) if order is not None else list(deps)
    pos = {n: i for i, n in enumerate(names)}
    known = set(deps)
    remaining = {n: set(d) & known for n, d in deps.items()}
    out: list[str] = []
    ready = sorted((n for n, d in remaining.items() if not d), key=lambda n: pos.get(n, 1 << 30))
    dependents: dict[str, list[str]] = {}
    for n, d in remaining.items():
        for m in d:
            dependents.setdefault(m, []).append(n)
    import heapq

    heap = [(pos.get(n, 1 << 30), n) for n in ready]
    heapq.heapify(heap)
    while heap:
        _, n = heapq.heappop(heap)
        out.append(n)
        for m in dependents.get(n, ()):
            remaining[m].discard(n)
            if not remaining[m]:
                heapq.heappush(heap, (pos.get(m, 1 << 30), m))
    if len(out) != len(remaining):
        check_acyclic(deps)
    return out
