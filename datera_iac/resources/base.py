"""The contract every resource kind implements, and the field metadata adapters read.

A *kind* (Tenant, VolumeType, Volume, Snapshot, NodeAttachment) is defined once, in
``datera_iac/resources/<kind>.py``:

* ``Spec``: an attrs class of its inputs. Validators and converters reject and normalize
  input before any API call (a tenant written ``x`` or ``/root/x`` becomes one value; a size
  written ``"10"`` becomes ``10``). Field metadata (set through :func:`spec_field`) tells the
  adapters what they need: ``replace`` (changing it re-creates the object), ``sensitive``,
  ``reference`` (the kind this field points at), ``doc`` (one line).
* ``Outputs``: an attrs class of what the DSP assigns (ids, paths, iqn, portals...), made
  with :func:`out_field`.
* behaviour: :meth:`Kind.read`, :meth:`Kind.read_many`, :meth:`Kind.create`,
  :meth:`Kind.update`, :meth:`Kind.delete`, :meth:`Kind.diff`, :meth:`Kind.adopt` and
  :meth:`Kind.find`.

The engine, the Terraform provider and the Pulumi provider derive schemas, docs, checks
and diffs from these definitions; an adapter never re-declares a field or talks to the DSP.

Contract (Pulumi's provider semantics):

* ``create`` is transactional: if it raises, nothing was left on the DSP (a half-made
  nested create is cleaned up), *or* the error says what was left and ``find`` finds it.
* ``read`` returns ``None`` when the object is gone (a 404 is a normal state, not an error).
  An object that is broken but not gone is returned, and :meth:`Kind.needs_repair` says
  why it must be repaired (a plan shows an update; ``update`` repairs it).
* ``update`` and ``create`` end by returning what ``read`` would return.
* ``delete`` of an object that is already gone succeeds. If ``delete`` raises, the object
  still exists.
* ``diff`` is pure (no API call); a plan-time error (a shrink, a replica decrease) raises
  :class:`~datera_iac.errors.InputError` naming the field and the fix.
* ``find`` looks an object up by its unique name (in its tenant): the engine calls it before
  re-trying a create whose outcome is unknown, so a lost response or a killed run never
  makes a twin.
* ``adopt`` imports an object that exists on the DSP; the spec it returns must diff empty
  against what a user would write for that object (import then plan is empty).

Field types are kept flat so every front end can express them: ``str``, ``int``,
``float``, ``bool``, ``list[str]``, ``dict[str, str]`` and ``X | None`` of those.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import logging
import os
import re
import warnings
from collections.abc import Iterator
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import attrs
import cattrs
from cattrs.preconf.json import make_converter

from datera_iac.errors import ConfigError, InputError
from datera_iac.fields import (  # re-exported: the field metadata lives in datera_iac.fields
    COMPUTED,
    DOC,
    REFERENCE,
    REPLACE,
    SENSITIVE,
    aliases_of,
    field_names,
    out_field,
    spec_field,
)
from datera_iac.names import camel, snake  # re-exported: the one name mapping
from datera_iac.secrets import SHOWN
from datera_iac.validators import NotText, structure_text

if TYPE_CHECKING:  # pragma: no cover
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

__all__ = [
    "REPLACE",
    "SENSITIVE",
    "COMPUTED",
    "DOC",
    "REFERENCE",
    "spec_field",
    "out_field",
    "FieldChange",
    "Diff",
    "Observed",
    "Timeouts",
    "Context",
    "Dependent",
    "Kind",
    "check_create",
    "check_delete",
    "delete_or_unmanage",
    "KINDS",
    "register",
    "kind_for",
    "resolve_aliases",
    "diff_specs",
    "spec_converter",
    "camel",
    "snake",
]

log = logging.getLogger(__name__)

#: The ownership token of the create running in this thread (see :func:`create_token`).
_CREATE_TOKEN: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "datera_iac_create_token", default=None)


def new_create_token() -> str:
    """A fresh ownership token: 32 hex digits of a random (version 4) UUID, made without
    building the UUID object (a third of a create's bookkeeping CPU went to it)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    return b.hex()


def create_token() -> str:
    """The token a kind's ``create`` writes into the object it makes (a Volume's
    app_instance uuid, a Tenant's or template's description): the caller's, when it
    chose one first (:func:`creating_with`) and journaled it, so that after a crash only
    the object carrying exactly that token is adopted (:meth:`Kind.find_own`); else a
    fresh one."""
    return _CREATE_TOKEN.get() or new_create_token()


@contextlib.contextmanager
def creating_with(token: str | None) -> Iterator[None]:
    """Run a ``create`` that writes ``token`` (see :func:`create_token`)."""
    reset = _CREATE_TOKEN.set(token)
    try:
        yield
    finally:
        _CREATE_TOKEN.reset(reset)


def token_uuid(token: str) -> str:
    """The token in the UUID text form (8-4-4-4-12) an app_instance's uuid takes."""
    t = token.lower()
    return f"{t[:8]}-{t[8:12]}-{t[12:16]}-{t[16:20]}-{t[20:32]}"


#: The stand-in a reference field holds in :meth:`Kind.check_plan` while the object it
#: names does not exist yet.
PENDING_ID = "/pending/known-after-apply"


@attrs.frozen
class FieldChange:
    """One field that differs between two specs."""

    name: str
    old: Any = attrs.field(repr=False)
    new: Any = attrs.field(repr=False)
    replace: bool = False
    sensitive: bool = False

    @classmethod
    def of(cls, f: attrs.Attribute[Any], old: Any, new: Any) -> FieldChange:
        """The change of Spec field ``f``, flagged as its metadata says."""
        return cls(f.name, old, new, bool(f.metadata.get(REPLACE)), bool(f.metadata.get(SENSITIVE)))

    def shown(self) -> tuple[Any, Any]:
        """The (old, new) pair safe to print: secrets become ``(sensitive)``."""
        if self.sensitive:
            return (SHOWN, SHOWN)
        return (self.old, self.new)


@attrs.frozen
class Diff:
    """The result of :meth:`Kind.diff`.

    ``delete_before_replace`` is set when a replacement cannot run create-before-delete
    (e.g. a name that must stay unique and cannot be renamed away). ``reason`` explains
    a replacement in plan output. ``repair`` is set (by a front end, from
    :meth:`Kind.needs_repair`) when the live object must be repaired although no input
    changed: the diff then counts as changed and applies as an update.
    """

    changes: tuple[FieldChange, ...] = ()
    delete_before_replace: bool = False
    reason: str | None = None
    repair: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.repair is not None

    @property
    def replace(self) -> bool:
        return any(c.replace for c in self.changes)

    @property
    def replaces(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.changes if c.replace)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.changes)


S = TypeVar("S")
O = TypeVar("O")


@attrs.frozen
class Observed(Generic[S, O]):
    """What ``read`` saw on the DSP: the object's id, its state expressed as inputs (for
    drift detection and import), and its outputs."""

    id: str
    spec: S
    outputs: O


@attrs.frozen
class Timeouts:
    """Per-operation bounds in seconds (Terraform's ``timeouts`` block, engine options)."""

    create: float = 600.0
    update: float = 600.0
    delete: float = 600.0
    read: float = 120.0


@attrs.define
class Context:
    """Everything a kind needs to act: the DSP client, the shared configuration, an
    optional node command runner (for attachments), timeouts and a logger."""

    client: "DspClient"
    config: "DateraConfig"
    runner: Any = None
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    log: logging.Logger = attrs.field(factory=lambda: logging.getLogger("datera_iac"))


def _leaves(exc: BaseException) -> list[BaseException]:
    subs = getattr(exc, "exceptions", None)
    if not subs:
        return [exc]
    return [leaf for sub in subs for leaf in _leaves(sub)]


_ATTRS_MSG = re.compile(r"^'(?P<field>\w+)' (?P<msg>.*)$", re.S)


def _structure_error_lines(exc: BaseException) -> list[tuple[str, str]]:
    """Flatten a structuring / validation error into (field path, message) pairs.

    cattrs attributes type errors to a path; attrs validators raise inside ``__init__``
    with messages like ``'size' must be >= 1: 0``, from which the field is read."""
    out: list[tuple[str, str]] = []
    for leaf in _leaves(exc):
        attribute = leaf.args[1] if len(leaf.args) > 1 else None
        m = _ATTRS_MSG.match(str(leaf.args[0])) if leaf.args else None
        if isinstance(attribute, attrs.Attribute):
            out.append((attribute.name, str(leaf.args[0])))
        elif m:
            out.append((m.group("field"), str(leaf.args[0])))
        else:
            for line in cattrs.transform_error(leaf, path="$", format_exception=_format):
                msg, _, where = line.rpartition(" @ ")
                field = where[2:] if where.startswith("$.") else where.lstrip("$")
                out.append((field, msg or line))
    # cattrs notes carry the path of type errors ("Structuring class _Spec @ attribute size")
    if isinstance(exc, cattrs.BaseValidationError):
        for line in cattrs.transform_error(exc, path="$", format_exception=_format):
            msg, _, where = line.rpartition(" @ ")
            if where.startswith("$.") and not any(f for f, _ in out if f):
                # the same error as a pathless leaf line: keep it once, with its path
                out = [(f, m) for f, m in out if m != msg]
                out.insert(0, (where[2:], msg))
    return out


def spec_converter(*, forbid_extra_keys: bool = True) -> cattrs.Converter:
    """The converter for user-facing specs: unknown keys are errors (a typo in a stack file
    must not be silently ignored)."""
    conv = make_converter(forbid_extra_keys=forbid_extra_keys)
    conv.register_structure_hook(str, structure_text)
    return conv


def _format(exc: BaseException, type_: Any) -> str:
    return str(exc) if isinstance(exc, NotText) else cattrs.v.format_exception(exc, type_)


spec_conv = spec_converter(forbid_extra_keys=True)
_out_conv = spec_converter(forbid_extra_keys=False)


class Kind(abc.ABC, Generic[S, O]):
    """Base class of every resource kind. Subclasses set the class attributes and
    implement the abstract methods; see the module docstring for the contract."""

    #: Short name, e.g. "Volume".
    name: ClassVar[str]
    #: Pulumi type token, e.g. "datera:index:Volume".
    token: ClassVar[str]
    #: Terraform type name, e.g. "datera_volume".
    tf_type: ClassVar[str]
    #: The inputs and outputs classes.
    Spec: ClassVar[type]
    Outputs: ClassVar[type]
    #: Help for `import`: what an import id looks like, e.g. "<tenant>/<name>".
    import_id_doc: ClassVar[str] = "<id>"

    # ---- input handling (no API calls) -----------------------------------------------

    def spec_from(self, data: Mapping[str, Any], *, resource: str | None = None) -> S:
        """Build and validate a Spec from plain data (snake_case keys).

        A field's former name (``spec_field(aliases=...)``) is read as the field, with a
        deprecation warning; an error about that field names it as the user wrote it.

        Raises :class:`InputError` naming the kind, the resource, the field and the fix.
        """
        data, used = self._resolve_aliases(data, resource)
        try:
            return self._spec_from(data, resource)
        except InputError as e:
            root, _, rest = (e.field or "").partition(".")
            if root not in used:
                raise
            raise InputError(e.reason, kind=e.kind, resource=e.resource, fix=e.fix,
                             field=used[root] + (f".{rest}" if rest else "")) from None

    def spec_or_none(self, data: Mapping[str, Any], *, resource: str | None = None) -> S | None:
        """:meth:`spec_from`, or None for data it no longer accepts (a state written by an
        older core, or before a validator tightened): the caller goes on without it."""
        try:
            return self.spec_from(data, resource=resource)
        except (InputError, TypeError, ValueError):
            return None

    def field_for(self, name: str) -> str | None:
        """The Spec field ``name`` (snake_case) stands for: itself, the field whose former
        name it is (with a deprecation warning), or None when it is neither. For front ends
        that check property names before building a spec (the engine's stack files)."""
        if name in field_names(self.Spec):
            return name
        field = aliases_of(self.Spec).get(name)
        if field is not None:
            _warn_alias(self.name, name, field)
        return field

    def _resolve_aliases(self, data: Mapping[str, Any], resource: str | None
                         ) -> tuple[Mapping[str, Any], dict[str, str]]:
        """``data`` with former field names replaced by the fields', and ``{field: the
        former name used}``. Raises InputError when both names are set, differently."""
        aliases = aliases_of(self.Spec)
        if not aliases or not any(k in aliases for k in data):
            return data, {}
        out, used = resolve_aliases(data, aliases, kind=self.name, resource=resource)
        for name, alias in used.items():
            _warn_alias(self.name, alias, name)
        return out, used

    def _spec_from(self, data: Mapping[str, Any], resource: str | None) -> S:
        try:
            spec = spec_conv.structure(dict(data), self.Spec)
        except InputError as e:
            raise (e.with_resource(resource) if resource else e) from None
        except cattrs.ForbiddenExtraKeysError as e:
            self._raise_extra(e, resource)
        except (cattrs.BaseValidationError, ValueError, TypeError) as e:
            inner = _find(e, InputError, causes=True)
            if inner is not None:
                raise (inner.with_resource(resource) if resource else inner) from None
            extra_err = _find(e, cattrs.ForbiddenExtraKeysError)
            if extra_err is not None:
                return self._raise_extra(extra_err, resource)
            lines = _structure_error_lines(e)
            if lines:
                field, msg = lines[0]
                extra = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
                raise InputError(
                    msg + extra, kind=self.name, field=field or None, resource=resource,
                    fix=self._fix_for(field),
                ) from None
            raise InputError(str(e), kind=self.name, resource=resource) from None
        self.validate(spec)
        return spec

    def _raise_extra(self, e: cattrs.ForbiddenExtraKeysError, resource: str | None) -> Any:
        extra = sorted(e.extra_fields)
        raise InputError(
            f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}",
            kind=self.name, field=extra[0], resource=resource, fix=self._fix_for(extra[0]),
        ) from None

    def _fix_for(self, field: str | None) -> str:
        names = [f.name for f in attrs.fields(self.Spec)]
        if field and field.split(".")[0] not in names:
            return f"known fields: {', '.join(names)}"
        return f"see the {self.name} documentation for the allowed values"

    def spec_to(self, spec: S) -> dict[str, Any]:
        """Plain data (snake_case keys) for a Spec; secrets included — callers mask."""
        return spec_conv.unstructure(spec)

    def outputs_from(self, data: Mapping[str, Any]) -> O:
        return _out_conv.structure(dict(data), self.Outputs)

    def outputs_to(self, outputs: O) -> dict[str, Any]:
        return _out_conv.unstructure(outputs)

    def validate(self, spec: S) -> None:
        """Cross-field checks beyond the attrs validators. Raise InputError."""

    def confine(self, ctx: Context, spec: S) -> None:
        """Refuse (InputError naming the field) a spec that names an object or tenant outside
        the context's tenant boundary, before any request: every reference field is handed
        to the kind it names (:meth:`confine_ref`), so ids, Cinder references, tenant paths,
        clone and snapshot sources all pass the same check. Called by the planners."""
        for f in attrs.fields(type(spec)):
            target, value = f.metadata.get(REFERENCE), getattr(spec, f.name)
            if target and isinstance(value, str) and target in KINDS:
                KINDS[target].confine_ref(ctx, value, kind=self.name, field=f.name)

    def confine_ref(self, ctx: Context, ref: str, *, kind: str, field: str) -> None:
        """Refuse ``ref`` (an id or import reference of this kind, given in ``kind``'s
        ``field``) when it lies outside the context's tenant boundary. Kinds whose objects
        live in tenants override it; the default (objects outside tenants) accepts."""

    def diff(self, old: S, new: S) -> Diff:
        """Per-field diff. Pure. Override to add plan-time errors (shrink) or to decide
        update-vs-replace from values (a retype the DSP cannot do in place)."""
        return diff_specs(old, new)

    #: reference fields whose object :meth:`check_plan` compares with (``related``)
    related_fields: tuple[str, ...] = ()
    #: :meth:`check_plan` has something to check for an object that exists already
    checks_updates: bool = False

    def check_plan(self, ctx: Context, spec: S, related: Mapping[str, Any], *,
                   creating: bool, pending: Collection[str] = ()) -> None:
        """Plan-time checks of ``spec`` against what it refers to, so a step that would
        fail at apply is refused before anything runs. Reads only.

        ``related`` maps a reference field to the Spec of the object it names when the
        caller declares that object too (its values as they will be when this step
        runs); a reference to an existing object is read live by the kind. ``pending``
        names reference fields whose object does not exist yet: ``spec`` holds a
        stand-in there (:data:`PENDING_ID`), never to be read. Raises InputError naming
        the live values. Default: nothing to check."""

    def planned_outputs(self, observed: Observed[S, O], new: S) -> O:
        """The outputs the object will have once updated from ``observed`` to ``new``.
        Pure (no API call): front ends plan dependents with it, so a value that changes
        during an apply (a VolumeType's ``extra_specs``) re-plans what reads it in the same
        run. Default: the outputs as they are (an update changes inputs, not what the DSP
        derives); a kind whose outputs follow from updatable inputs overrides it."""
        return observed.outputs

    def calls(self, ctx: Context, observed: Observed[S, O] | None, new: S) -> list[Any] | None:
        """The DSP calls (:class:`~datera_iac.resources.calls.Call`) an update from
        ``observed`` to ``new`` would send, or a create when ``observed`` is None, for a
        preview to list. Pure: no API call. Default None: this kind does not list them."""
        return None

    def declare_removed(self, new: S, last: S | None, config: Any = None) -> S:
        """``new``, with what ``last`` (the spec last declared for this object) declared and
        ``new`` no longer does made explicit at its default. Pure: no API call.

        Only a kind whose :meth:`diff` compares just the attributes a declaration names
        needs this (a Volume's ``extra_specs``: a ``DF:`` key left out keeps whatever the
        DSP has, so without ``last`` a key *removed* from the declaration would keep its
        old value on the DSP and plan no change). The planner
        (:func:`datera_iac.resources.plan.plan_change`) calls it with the last declaration
        a front end kept and passes the result to :meth:`diff` and :meth:`update`. ``config`` (the DateraConfig) supplies defaults
        such as ``datera_volume_type_defaults``. The default returns ``new`` unchanged."""
        return new

    # ---- DSP behaviour -------------------------------------------------------------

    @abc.abstractmethod
    def read(self, ctx: Context, id: str) -> Observed[S, O] | None:
        """The object as it is on the DSP, or None when it is gone."""

    def read_known(self, ctx: Context, id: str, known: S | None) -> Observed[S, O] | None:
        """Read, given the spec the caller last recorded for ``id`` (its state), if any.

        Adapters that hold state (refresh, Terraform ReadResource, Pulumi Read with
        properties) should call this rather than :meth:`read`. The default ignores
        ``known``. A kind whose object may exist only as a declaration (a VolumeType that
        is not materialized on the DSP) overrides it to return ``known`` without an API
        call; ``read`` alone cannot, since an id does not carry the declaration."""
        return self.read(ctx, id)

    @property
    def has_bulk_read(self) -> bool:
        """Whether this kind overrides :meth:`read_many` with a bulk read (a paged list).
        Without one, a front end reads each object with its recorded spec
        (:meth:`read_known`) instead, which also keeps settings only a declaration holds."""
        return type(self).read_many is not Kind.read_many

    def read_many(self, ctx: Context, ids: Iterable[str]) -> dict[str, Observed[S, O] | None]:
        """Read many objects. Kinds override this with paged list calls so refreshing
        1,000 objects costs a handful of requests, not 1,000."""
        return {i: self.read(ctx, i) for i in ids}

    @abc.abstractmethod
    def create(self, ctx: Context, spec: S) -> Observed[S, O]:
        """Create the object; transactional."""

    @abc.abstractmethod
    def update(self, ctx: Context, id: str, old: S, new: S) -> Observed[S, O]:
        """Change the object in place (only fields whose change is not ``replace``)."""

    @abc.abstractmethod
    def delete(self, ctx: Context, id: str) -> None:
        """Delete the object; an object already gone is success."""

    @abc.abstractmethod
    def find(self, ctx: Context, spec: S) -> Observed[S, O] | None:
        """Look the object a spec would create up by its unique name (no twin on retry)."""

    def find_own(self, ctx: Context, spec: S, token: str | None) -> Observed[S, O] | None:
        """The object an interrupted create of ``spec`` made, proven by the ``token`` that
        create wrote (:func:`create_token`); never an object found by name alone (a
        same-named object someone else made must not be adopted). Kinds that write a
        token override it; the default is :meth:`find`, for kinds whose ``find`` is exact
        already (a Snapshot by the uuid the create set, an attachment by volume and node)."""
        return self.find(ctx, spec)

    @abc.abstractmethod
    def adopt(self, ctx: Context, ref: str) -> Observed[S, O]:
        """Import an existing object by id, name or the kind's reference form.

        Raises :class:`~datera_iac.errors.NotFound` when there is nothing to adopt."""

    def needs_repair(self, outputs: O) -> str | None:
        """Why an object that ``read`` still returns is not usable as it is, or None.

        ``read`` returns an object while anything of it is left (so a destroy still calls
        ``delete``, which finishes what remains), even when it is broken, e.g. an
        attachment whose detach was interrupted after the map flush. Front ends then plan
        an update for it with this reason even when no input changed, and ``update``
        repairs it. Pure (no API call): it reads the outputs that ``read`` reported, so
        every front end can ask it of the outputs in its state. Default: never."""
        return None

    def release(self, ctx: Context, id: str, *, rename: bool = False) -> None:
        """Stop managing the object but keep it on the DSP (unmanage). Default: no call."""

    # ---- what a delete takes with it (issue 16: dependents) -------------------------------

    #: What a delete does to the dependents :meth:`dependents` lists: ``"deletes"`` (the
    #: DSP removes them with the object: a volume's snapshots) or ``"fails"`` (the DSP
    #: refuses the delete while they exist: a tenant's volumes).
    dependents_effect: ClassVar[str] = "deletes"

    def dependents(self, ctx: Context, id: str) -> list[Dependent]:
        """The live objects a delete of ``id`` would take with it or be refused by (a
        volume's snapshots, a tenant's volumes). Reads only. Default: none."""
        return []

    @property
    def has_dependents(self) -> bool:
        """Whether the kind has a dependents rule (:func:`check_delete` asks nothing without)."""
        return type(self).dependents is not Kind.dependents

    #: Whether :meth:`dependents_many` answers from a listing (one list call for many
    #: objects) rather than one read per object: front ends then ask it in bulk, or
    #: through a listing they share (a Terraform destroy's refresh wave).
    has_bulk_dependents: ClassVar[bool] = False

    def dependents_many(self, ctx: Context, ids: Iterable[str]) -> dict[str, list[Dependent]]:
        """:meth:`dependents` of each of ``ids``. A kind with a cheaper bulk answer (one
        listing) overrides it and sets :attr:`has_bulk_dependents`; what its listing does
        not show must be asked with :meth:`dependents`, so the answer is never weaker than
        one read per object as of that listing. Reads only."""
        return {i: self.dependents(ctx, i) for i in ids}

    def cascades(self, declared: Mapping[str, Any] | None) -> bool:
        """Whether the recorded declaration (plain data by field name) lets a delete take
        its dependents with it (a Volume's ``cascade``). Default: never."""
        return False

    def unmanages(self, declared: Mapping[str, Any] | None) -> str | None:
        """Whether the recorded declaration (plain data by field name) asks a delete to
        unmanage the object instead (a Volume's ``unmanage_on_delete``): None (delete it),
        ``"keep"`` (:meth:`release` it as it is) or ``"rename"`` (release it renamed the
        Cinder driver's way). Default: never."""
        return None


def check_create(kind: Kind[Any, Any], context: Callable[[], Context], spec: Any) -> None:
    """A provider's plan-time :meth:`Kind.check_plan` of a create: none while a value is
    unknown (``spec`` None: the apply checks) or before it can connect (ConfigError)."""
    if spec is None or type(kind).check_plan is Kind.check_plan:
        return
    try:
        ctx = context()
    except ConfigError:
        return
    kind.check_plan(ctx, spec, {}, creating=True)


def delete_or_unmanage(kind: Kind[Any, Any], ctx: Context, id: str,
                       declared: Mapping[str, Any] | None, *, resource: str | None = None,
                       deleted_first: Iterable[str] = (),
                       check_ctx: Context | None = None, check: bool = True) -> str | None:
    """What every front end does for a delete: when the declaration asks to unmanage
    (:meth:`Kind.unmanages`), only :meth:`Kind.release` (nothing is deleted, what the object
    holds stays with it); otherwise the dependents rule (:func:`check_delete`), then
    :meth:`Kind.delete`. Returns the unmanage mode, or None when the object was deleted.
    ``check_ctx``: the context the dependents rule reads through, when a front end serves
    it from a listing it shares (:meth:`Kind.dependents_many`); by default ``ctx``; ``check``
    False: the caller's plan checked already (the engine's)."""
    how = kind.unmanages(declared)
    if how:
        kind.release(ctx, id, rename=how == "rename")
        return how
    if check:
        check_delete(kind, ctx, id, declared, resource=resource, deleted_first=deleted_first,
                     check_ctx=check_ctx)
    kind.delete(ctx, id)
    return None


@attrs.frozen
class Dependent:
    """A live object that depends on another one on the DSP: ``kind`` and ``id`` as our
    kinds name them (a Snapshot ``<volume id>/<timestamp>``, a Volume ``<tenant>/<ai id>``),
    ``label`` what a person recognises (a volume's name, a snapshot's timestamp)."""

    kind: str
    id: str
    label: str

    def __str__(self) -> str:
        return f"{self.kind} {self.label}"


def check_delete(kind: Kind[Any, Any], ctx: Context, id: str,
                 declared: Mapping[str, Any] | None, *, resource: str | None = None,
                 deleted_first: Iterable[str] = (),
                 found: Iterable[Dependent] | None = None,
                 check_ctx: Context | None = None) -> tuple[Dependent, ...]:
    """The one rule of a delete with dependents, for every front end, before any write.

    Lists what the DSP holds under ``id`` (:meth:`Kind.dependents`; ``found`` when the
    caller already asked it, e.g. in bulk with :meth:`Kind.dependents_many`; with
    ``check_ctx``, a context serving a shared listing, its ``dependents_many`` where the
    kind has a bulk answer) beyond ``deleted_first`` (ids the same run deletes before it);
    a kind without a dependents rule asks nothing. None left: ``()``. Some left,
    and the declaration allows it (:meth:`Kind.cascades`): they are returned, for the plan
    to list (the delete takes them with it). Otherwise InputError naming each of them:
    a volume delete would silently delete its snapshots; a tenant delete would fail."""
    first = set(deleted_first)
    if found is None and not kind.has_dependents:
        return ()
    if found is None:
        found = (kind.dependents(ctx, id) if check_ctx is None or not kind.has_bulk_dependents
                 else kind.dependents_many(check_ctx, [id]).get(id, []))
    left = tuple(d for d in found if d.id not in first)
    if not left or (kind.dependents_effect == "deletes" and kind.cascades(declared)):
        return left
    shown = ", ".join(str(d) for d in left[:10]) + (f" and {len(left) - 10} more"
                                                    if len(left) > 10 else "")
    if kind.dependents_effect == "deletes":
        raise InputError(
            f"{id} still has {len(left)} dependent object(s) on the DSP that its delete would "
            f"delete with it: {shown}", kind=kind.name, field="cascade", resource=resource,
            fix="delete them first (or let this run delete the ones it manages), or set "
            "cascade: true on it to delete them with it")
    raise InputError(
        f"{id} still holds {len(left)} object(s) this run does not delete, so the DSP would "
        f"refuse its delete (409): {shown}", kind=kind.name, resource=resource,
        fix="delete or move them first, or keep it: drop it from the state (`datera-iac "
        "state rm`, `terraform state rm`, `pulumi state delete`)")


KINDS: dict[str, Kind[Any, Any]] = {}


_WARNED: set[tuple[str, str]] = set()


def _warn_alias(kind: str, alias: str, name: str) -> None:
    """A DeprecationWarning each time, a log line once per process (a plan reads a spec
    more than once)."""
    msg = f"{kind}.{alias} is deprecated: write {name}"
    warnings.warn(msg, DeprecationWarning, stacklevel=4)
    if (kind, alias) not in _WARNED:
        _WARNED.add((kind, alias))
        log.warning(msg)


def register(cls: type[Kind[Any, Any]]) -> type[Kind[Any, Any]]:
    """Class decorator: instantiate the kind once and register it under its name."""
    inst = cls()
    for key in (cls.name, cls.token, cls.tf_type):
        KINDS[key] = inst
    return cls


def resolve_aliases(data: Mapping[str, Any], aliases: Mapping[str, str], *, kind: str,
                    resource: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """``data`` with each former name (``aliases``: former -> name) read as its name, and
    ``{name: the former name used}``. Raises InputError when both are set, differently."""
    out, used = dict(data), {}
    for alias, name in aliases.items():
        if (value := out.pop(alias, None)) is None:
            continue
        if out.get(name) is not None and out[name] != value:
            raise InputError(f"{alias} and {name} are both set", kind=kind, field=alias,
                             resource=resource, fix=f"keep only {name}; {alias} is its deprecated name")
        out[name], used[name] = value, alias
    return out, used


def kind_for(name: str) -> Kind[Any, Any]:
    """The kind registered under a short name, Pulumi token or Terraform type."""
    import datera_iac.resources  # noqa: F401  (registers every kind)

    try:
        return KINDS[name]
    except KeyError:
        known = sorted({k.token for k in KINDS.values()})
        raise InputError(
            f"unknown resource type {name!r}", fix=f"known types: {', '.join(known)}"
        ) from None


def diff_specs(old: Any, new: Any, *, ignore: Iterable[str] = ()) -> Diff:
    """Compare two specs of one class field by field, using the field metadata."""
    skip = set(ignore)
    changes = []
    for f in attrs.fields(type(new)):
        if f.name in skip:
            continue
        a, b = getattr(old, f.name, None), getattr(new, f.name)
        if a != b:
            changes.append(FieldChange.of(f, a, b))
    return Diff(changes=tuple(changes))


E = TypeVar("E", bound=BaseException)


def _find(exc: BaseException, cls: type[E], *, causes: bool = False) -> E | None:
    """The first ``cls`` in ``exc`` or the members of its exception groups (and, with
    ``causes``, in what caused it)."""
    if isinstance(exc, cls):
        return exc
    for sub in getattr(exc, "exceptions", ()) or ():
        found = _find(sub, cls, causes=causes)
        if found is not None:
            return found
    cause = exc.__cause__ or exc.__context__
    if causes and cause is not None and cause is not exc:
        return _find(cause, cls, causes=True)
    return None
