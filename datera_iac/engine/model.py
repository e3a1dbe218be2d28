"""What a stack declares, independent of how it was written (Python program or YAML file).

A :class:`StackDef` is a list of :class:`ResourceDecl` plus stack outputs. Property values
are plain data that may contain *deferred* values: a :class:`Ref` (another resource's
attribute, like a Pulumi ``Output``) or a :class:`Concat` (a string interpolating refs).
The engine resolves them once the referenced resource's values are known, which is why the
loaders never have to know anything about the DSP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

from datera_iac.errors import InputError
from datera_iac.resources.plan import holds_unknown
from datera_iac.secrets import SHOWN

__all__ = [
    "UNKNOWN",
    "Concat",
    "Location",
    "Ref",
    "ResourceDecl",
    "Secret",
    "ResourceOptions",
    "StackDef",
    "StackError",
    "Unknown",
    "has_unknown",
    "refs_in",
    "resolve",
    "reveal",
    "secrets_in",
]


@attrs.frozen
class Location:
    """Where a declaration was written: a file and a 1-based line (0 when unknown)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class StackError(InputError):
    """A stack declaration is invalid; names the file, line and resource.

    A subclass of :class:`~datera_iac.errors.InputError`, so every front end that reports
    input errors reports these without a traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        where: Location | None = None,
        resource: str | None = None,
        kind: str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.where = where
        super().__init__(message, kind=kind, field=field, resource=resource, fix=fix)

    def _render(self) -> str:
        text = super()._render()
        if self.resource and not self.kind:
            text = f"resource {text}"
        where = getattr(self, "where", None)
        return f"{where}: {text}" if where else text

    @classmethod
    def wrap(cls, e: InputError, where: Location | None, resource: str | None) -> StackError:
        """Attach a location and resource name to an InputError raised by a kind."""
        if isinstance(e, StackError) and e.where is not None:
            return e
        return cls(
            e.reason, where=where, resource=resource or e.resource, kind=e.kind,
            field=e.field, fix=e.fix,
        )


class Unknown:
    """A value that will only be known after apply ("known after apply")."""

    _inst: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "(known after apply)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Unknown, ())


UNKNOWN = Unknown()


@attrs.frozen(eq=False)
class Ref:
    """A deferred reference to ``resource``'s attribute ``path`` (like a Pulumi Output).

    ``path`` is a tuple of attribute names and list indexes: ``("id",)``,
    ``("extra_specs", "DF:replica_count")``. An empty path means the resource itself
    (used by ``dependsOn``). ``fn`` optionally transforms the value once known
    (:meth:`apply`).
    """

    resource: str
    path: tuple[str | int, ...] = ()
    fn: Callable[[Any], Any] | None = None

    def __getattr__(self, name: str) -> Ref:
        if name.startswith("_"):
            raise AttributeError(name)
        return Ref(self.resource, self.path + (name,), self.fn)

    def __getitem__(self, key: str | int) -> Ref:
        return Ref(self.resource, self.path + (key,), self.fn)

    def apply(self, fn: Callable[[Any], Any]) -> Ref:
        """A Ref whose value is ``fn(value)`` (chains with an earlier ``apply``)."""
        prev = self.fn
        return Ref(self.resource, self.path, fn if prev is None else (lambda v: fn(prev(v))))

    def __str__(self) -> str:
        tail = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in self.path)
        return "${" + self.resource + tail + "}"

    __repr__ = __str__


@attrs.frozen(repr=False)
class Secret:
    """A value declared secret (a config key with ``secret: true``) and what it was built
    from. It may reach a sensitive field (masked in plans, digested in state, redacted on
    the wire) or a stack output (shown ``(sensitive)``, stored as a digest); anywhere else
    the loader refuses it, naming the field (see ``graph.check_secret_flow``). Printing it
    never shows the value."""

    value: Any
    source: str = "a secret"

    def __str__(self) -> str:
        return SHOWN

    __repr__ = __str__


def secrets_in(value: Any) -> Iterator[Secret]:
    """Every :class:`Secret` inside a property value."""
    return _instances(value, Secret)


def reveal(value: Any) -> Any:
    """``value`` with every :class:`Secret` replaced by what it holds (a Concat left with
    only literal parts becomes its string)."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, Concat):
        parts = tuple(reveal(p) for p in value.parts)
        if all(isinstance(p, str) for p in parts):
            return "".join(parts)
        return Concat(parts)
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    if isinstance(value, tuple):
        return tuple(reveal(v) for v in value)
    return value


@attrs.frozen
class Concat:
    """A string built from literal parts and :class:`Ref` values (``"pre-${v.id}"``)."""

    parts: tuple[Any, ...]

    def __str__(self) -> str:
        return "".join(str(p) for p in self.parts)


@attrs.frozen
class ResourceOptions:
    """Per-resource engine options (Pulumi's ``options:``).

    ``protect``: a planned delete or replace is a plan error. ``retain_on_delete``: leave the
    object on the DSP when it leaves the stack. ``import_id``: adopt an existing object
    instead of creating it. ``depends_on``: names of resources to order after.
    ``delete_before_replace`` and ``ignore_changes`` work as in Pulumi.
    """

    depends_on: tuple[str, ...] = ()
    protect: bool = False
    retain_on_delete: bool = False
    import_id: str | None = None
    #: replace by deleting first (names that must stay unique and cannot be renamed)
    delete_before_replace: bool = False
    #: fields whose differences the plan ignores (snake_case)
    ignore_changes: tuple[str, ...] = ()


@attrs.define
class ResourceDecl:
    """One declared resource: a logical name, its kind token and raw (snake_case) properties."""

    name: str
    type: str
    properties: dict[str, Any] = attrs.field(repr=False)  # may hold declared secrets
    options: ResourceOptions = attrs.field(factory=ResourceOptions)
    where: Location | None = None
    #: 1-based line of each property (YAML stacks), for errors that name a field.
    lines: dict[str, int] = attrs.field(factory=dict)
    #: The Spec built when the properties were validated at load time (no references).
    validated: Any = None

    def where_of(self, field: str | None) -> Location | None:
        """The location of ``field`` when known, else of the resource."""
        if field and self.where is not None and field.split(".")[0] in self.lines:
            return Location(self.where.file, self.lines[field.split(".")[0]])
        return self.where

    def dependencies(self) -> set[str]:
        """Names of the resources this one must come after (refs + dependsOn).

        Raises StackError, located at the field, for a resource that refers to itself: its
        outputs do not exist before it does, so no plan can resolve it."""
        deps: set[str] = set()
        for fname, value in self.properties.items():
            for r in refs_in(value):
                if r.resource == self.name:
                    raise StackError(
                        f"refers to itself ({r}): a resource cannot take its own outputs "
                        "as inputs", where=self.where_of(fname), resource=self.name, field=fname,
                        fix="write the value itself, or take it from another resource or a variable",
                    )
                deps.add(r.resource)
        if self.name in self.options.depends_on:
            raise StackError("dependsOn names the resource itself", where=self.where,
                             resource=self.name, fix="remove it from dependsOn")
        deps.update(self.options.depends_on)
        return deps


@attrs.define
class StackDef:
    """A loaded stack: project name, resources in declaration order, outputs, and the
    provider configuration it carries (``datera:<option>`` keys, snake_case)."""

    project: str
    resources: dict[str, ResourceDecl]
    outputs: dict[str, Any] = attrs.field(factory=dict)
    provider_config: dict[str, Any] = attrs.field(factory=dict)
    source: str = ""
    #: outputs built from a secret (a ``secret: true`` config key, a sensitive field): shown
    #: ``(sensitive)`` and stored as digests, like sensitive fields
    sensitive_outputs: set[str] = attrs.field(factory=set)


def refs_in(value: Any) -> Iterator[Ref]:
    """Every :class:`Ref` inside a property value."""
    return _instances(value, Ref)


def _instances(value: Any, cls: type) -> Iterator[Any]:
    """Every ``cls`` inside a property value (Concat parts, dict values, list items)."""
    if isinstance(value, cls):
        yield value
    elif isinstance(value, Concat):
        for p in value.parts:
            yield from _instances(p, cls)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _instances(v, cls)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _instances(v, cls)


def has_unknown(value: Any) -> bool:
    """True if :data:`UNKNOWN` appears anywhere in ``value``."""
    return holds_unknown(value, lambda v: v is UNKNOWN)


def resolve(value: Any, lookup: Callable[[Ref], Any]) -> Any:
    """Replace every Ref / Concat in ``value`` using ``lookup(ref)``.

    ``lookup`` returns the raw attribute value or :data:`UNKNOWN`. A Concat with an unknown
    part is unknown as a whole.
    """
    if isinstance(value, Ref):
        v = lookup(value)
        if v is UNKNOWN or value.fn is None:
            return v
        return value.fn(v)
    if isinstance(value, Concat):
        parts = [resolve(p, lookup) for p in value.parts]
        if any(p is UNKNOWN for p in parts):
            return UNKNOWN
        return "".join("" if p is None else str(p) for p in parts)
    if isinstance(value, dict):
        return {k: resolve(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, lookup) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, lookup) for v in value)
    return value
