"""The one planner: what changing an object from its prior inputs to a declaration means.

Every front end (the engine, the Terraform provider, the Pulumi provider) asks
:func:`plan_change` and translates its answer into its own protocol; none of them decides
on its own whether a change is an update, a replacement or a repair. Pure: no API call.

What it decides, once for every front end:

* **removed declarations**: what the last applied declaration named and this one no longer
  does is made explicit at its default (:meth:`Kind.declare_removed`; a ``DF:`` key taken
  out of a volume's ``extra_specs`` is reset on the DSP, as a Cinder retype does);
* the kind's per-field **diff** (:meth:`Kind.diff`); a change the kind refuses (a shrink)
  raises :class:`~datera_iac.errors.InputError` naming the field;
* **secrets given to a plain field** are refused (:func:`secret_refusal`);
* **secrets the DSP cannot return**: a declared secret whose prior value is unknown is a
  change unless the caller can vouch it is what was applied (``secret_kept``: the engine's
  salted digest);
* a **temporary name** left by a create-before-delete replacement is a rename, not a
  replacement;
* **unknown values** (known only after another resource is applied) count as changed, and
  force a replacement where the field does;
* ``ignore`` (the front ends' ignore-changes option) and ``delete_before_replace``;
* **repair**: a live object the kind says is broken (:meth:`Kind.needs_repair`) is an
  update even when no input changed.

What the providers (Terraform's, Pulumi's) plan on top of that, also decided here once:
:func:`plan_state` (the planned state: which inputs take the declaration's form, which are
unknown, which outputs stay known, what carries a replacement, the raw compare when the
prior state no longer structures, the rotation of write-only secrets),
:func:`recorded_inputs` (the inputs a state keeps after a read), :func:`spec_if_known`
(validating a declaration with values known only after apply), :func:`apply_change` and
:func:`refuse_replace` (a replacement an apply's plan could not see, or of an import).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs
import cattrs

from datera_iac.errors import InputError
from datera_iac.fields import REPLACE, SENSITIVE, aliases_of
from datera_iac.resources.base import Diff, FieldChange, Kind, Observed

__all__ = [
    "Change",
    "Planned",
    "apply_change",
    "TEMP_SUFFIX",
    "declaration",
    "declared_since",
    "differing",
    "holds_unknown",
    "is_sensitive",
    "output_names",
    "outputs_after",
    "plan_change",
    "plan_state",
    "recorded_inputs",
    "refuse_replace",
    "repair_of",
    "replace_strategy",
    "secret_refusal",
    "repair_shown_on",
    "secrets_as_applied",
    "spec_if_known",
    "stand_ins",
]

log = logging.getLogger(__name__)

#: The suffix of a replacement's temporary name (:func:`replace_strategy`).
TEMP_SUFFIX = "-replacing"


@attrs.frozen
class Change:
    """The planner's answer. ``action``: ``create`` (no prior object), ``same``,
    ``update`` (in place, also a repair) or ``replace``. ``diff`` holds the field changes
    (unknown new values as the caller's ``unknown_value``), the kind's reason and the
    repair reason; ``desired`` is the spec as compared (removed declarations explicit) and
    ``prior`` the prior spec with each secret the caller vouched for (``secret_kept``) at
    its declared value: what an update must be given, so it writes a secret only when the
    planner found it changed."""

    action: str
    diff: Diff = Diff()
    desired: Any = None
    prior: Any = None

    @property
    def changes(self) -> tuple[FieldChange, ...]:
        return self.diff.changes

    @property
    def replaces(self) -> tuple[str, ...]:
        return self.diff.replaces

    @property
    def repair(self) -> str | None:
        return self.diff.repair


def declared_since(kind: Kind[Any, Any], new: Any, last: Mapping[str, Any] | None,
                   config: Any = None, *, resource: str | None = None) -> Any:
    """``new`` with what the last declaration (plain data by field name, as a front end
    keeps it: the engine's state, Pulumi's old inputs, Terraform's private state; secrets
    may be missing or digested - the new declaration's stand in for them) named and ``new``
    no longer does made explicit at its default (:meth:`Kind.declare_removed`). A last
    declaration the current core no longer accepts compares with nothing: ``new`` as is."""
    if new is None or not last:
        return new
    fields = attrs.fields(kind.Spec)
    secret = {f.name for f in fields if f.metadata.get(SENSITIVE)}
    data = {f.name: last[f.name] for f in fields
            if f.name not in secret and last.get(f.name) is not None}
    current = kind.spec_to(new)
    data.update({n: current[n] for n in secret if current.get(n) is not None})
    last_spec = kind.spec_or_none(data, resource=resource)
    if last_spec is None:
        log.debug("%s %s: the last declaration no longer validates; removed inputs are not "
                  "reset", kind.name, resource or "")
        return new
    return kind.declare_removed(new, last_spec, config)


def differing(kind: Kind[Any, Any], a: Any, b: Any) -> tuple[str, ...]:
    """The fields the kind's diff finds changed from Spec ``a`` to Spec ``b``; where the
    kind refuses that change (the DSP grew a volume past ``b``'s size out of band), the
    fields ``a`` reports with another value than ``b``'s."""
    try:
        return kind.diff(a, b).fields
    except InputError:
        return tuple(f.name for f in attrs.fields(kind.Spec) if getattr(a, f.name) is not None
                     and getattr(a, f.name) != getattr(b, f.name))


def repair_of(kind: Kind[Any, Any], outputs: Any) -> str | None:
    """Why the object whose outputs these are must be repaired (:meth:`Kind.needs_repair`),
    or None. ``outputs`` is the kind's Outputs, or plain data by field name as a front end
    recorded it (unknown ones left out); data that no longer structures (a state written
    by an older version) needs no repair."""
    if outputs is None:
        return None
    if isinstance(outputs, Mapping):
        try:
            outputs = kind.outputs_from(dict(outputs))
        except (TypeError, ValueError, cattrs.BaseValidationError):
            return None
    return kind.needs_repair(outputs)


def holds_unknown(value: Any, is_unknown: Callable[[Any], bool]) -> bool:
    """Whether ``value`` (a front end's decoded value) is, or holds in a mapping, list or
    tuple, a leaf that ``is_unknown`` (that front end's marker of a value known only after
    apply) recognises. Called for every attribute of every request a provider serves, so
    the common leaves and containers are told apart before the ``Mapping`` ABC check."""
    if value is None or isinstance(value, (str, int, float)):
        return is_unknown(value)
    if isinstance(value, (dict, Mapping)):
        return any(holds_unknown(v, is_unknown) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds_unknown(v, is_unknown) for v in value)
    return is_unknown(value)


def plan_change(
    kind: Kind[Any, Any],
    prior: Any,
    desired: Any,
    *,
    outputs: Any = None,
    last: Mapping[str, Any] | None = None,
    config: Any = None,
    resource: str | None = None,
    unknown: Collection[str] = (),
    unknown_value: Any = None,
    secret_kept: Callable[[FieldChange], bool] | None = None,
    temp_name: str | None = None,
    ignore: Collection[str] = (),
    delete_before_replace: bool = False,
) -> Change:
    """Plan the change of one object from ``prior`` (its inputs as a Spec, or None when
    there is no object yet) to ``desired`` (a Spec; fields in ``unknown`` hold a stand-in,
    normally the prior value, so they diff equal).

    ``outputs``: the prior object's outputs (for repair); ``last`` / ``config``: the last
    applied declaration and the DateraConfig (for removed declarations); ``secret_kept``:
    whether a sensitive change whose old value the DSP cannot show is what was applied
    anyway; ``temp_name``: the temporary name of an unfinished replacement; ``ignore``:
    fields whose change is not planned (``desired`` keeps the prior value there).

    Raises InputError for a change the kind refuses (a shrink, a replica decrease)."""
    if prior is None:
        return Change("create", Diff(), desired)
    desired = declared_since(kind, desired, last, config, resource=resource)
    d = kind.diff(prior, desired)
    changes, kept = [], {}
    for c in d.changes:
        if c.sensitive and c.old is None and secret_kept is not None and secret_kept(c):
            kept[c.name] = c.new
            continue
        if temp_name and c.name == "name" and c.old == temp_name:
            c = attrs.evolve(c, replace=False)
        changes.append(c)
    fields = attrs.fields_dict(kind.Spec)
    seen = {c.name for c in changes}
    for name in unknown:
        if name not in seen and name in fields:
            changes.append(FieldChange.of(fields[name], getattr(prior, name, None), unknown_value))
    if ignore:
        # an ignored field keeps what the object has: not shown, and not sent by update
        changes = [c for c in changes if c.name not in ignore]
        desired = attrs.evolve(desired, **{n: getattr(prior, n) for n in ignore if n in fields})
    d = attrs.evolve(d, changes=tuple(changes), repair=repair_of(kind, outputs))
    if delete_before_replace and d.replace:
        d = attrs.evolve(d, delete_before_replace=True)
    action = "replace" if d.replace else "update" if d.changed else "same"
    return Change(action, d, desired, attrs.evolve(prior, **kept) if kept else prior)


def replace_strategy(kind: Kind[Any, Any], d: Diff, spec: Any) -> tuple[str, str | None]:
    """How to replace without two live objects sharing a unique name.

    The kind's ``delete_before_replace`` wins. Otherwise a kept name would collide: if the
    kind can rename in place (its ``name`` is not a replace field) the new object is
    created under a temporary name (:data:`TEMP_SUFFIX`) and renamed once the old one is
    gone; if it cannot, the old object must go first. Without a kept name,
    create-before-delete."""
    if d.delete_before_replace:
        return "delete-before-create", None
    name_f = getattr(attrs.fields(kind.Spec), "name", None)
    if name_f is not None and "name" not in d.fields and isinstance(getattr(spec, "name", None), str):
        if not name_f.metadata.get(REPLACE):
            return "temporary-name", f"{spec.name}{TEMP_SUFFIX}"
        return "delete-before-create", None
    return "create-before-delete", None


# ---- what the providers plan on top of plan_change ---------------------------------------


@attrs.frozen
class Planned:
    """A provider's planned state of one object (:func:`plan_state`). ``values``: planned
    inputs, kept outputs and the id, by name; ``unknown``: the names known only after
    apply; ``replaces``: the attributes whose change forces the replacement (a rotated
    write-only secret's through its rotation attribute); ``diff``: the planner's, when
    both sides structured; ``repair``: why the prior object must be repaired;
    ``declared``: the non-secret declaration (:func:`declaration`) a provider keeps as the
    next plan's ``last``."""

    action: str
    values: dict[str, Any]
    unknown: frozenset[str] = frozenset()
    replaces: tuple[str, ...] = ()
    diff: Diff | None = None
    repair: str | None = None
    declared: dict[str, Any] | None = None


def output_names(kind: Kind[Any, Any]) -> tuple[str, ...]:
    """The kind's outputs proper: Outputs fields that are neither inputs nor the id."""
    inputs = {f.name for f in attrs.fields(kind.Spec)}
    return tuple(f.name for f in attrs.fields(kind.Outputs)
                 if f.name not in inputs and f.name != "id")


def declaration(kind: Kind[Any, Any], spec: Any) -> dict[str, Any] | None:
    """A spec's declared, non-secret inputs as plain data (None left out): what a provider
    keeps as the ``last`` declaration of :func:`declared_since`. Never a secret."""
    if spec is None:
        return None
    data = kind.spec_to(spec)
    return {f.name: data[f.name] for f in attrs.fields(kind.Spec)
            if not f.metadata.get(SENSITIVE) and data.get(f.name) is not None}


def spec_if_known(kind: Kind[Any, Any], known: Mapping[str, Any], unknown: Collection[str] = (),
                  *, resource: str | None = None, prior: Mapping[str, Any] | None = None,
                  partial: bool = False) -> Any:
    """The Spec of a declaration whose ``unknown`` inputs are known only after apply
    (``known``: its data by field name; unknown entries are ignored). With ``prior`` (the
    prior inputs by name) each unknown input stands at its prior value (:func:`stand_ins`)
    and any error raises. Without, None while any is unknown (``partial``: the Spec of the
    known inputs alone, when they validate); InputError for an error in the known inputs;
    one about an unknown input (or about no field: "missing required field") may be the
    missing value's, and gives None."""
    if prior is not None:
        return kind.spec_from(stand_ins(prior, known, unknown), resource=resource)
    try:
        spec = kind.spec_from({k: v for k, v in known.items() if k not in unknown},
                              resource=resource)
    except InputError as e:
        root = (e.field or "").split(".")[0]
        if unknown and (not root or root in unknown):
            return None
        raise
    return None if unknown and not partial else spec


def stand_ins(prior: Mapping[str, Any], known: Mapping[str, Any],
              unknown: Collection[str]) -> dict[str, Any]:
    """``known`` (declared data by field name) with each ``unknown`` field at its prior
    value, so the kind's diff sees it equal (:func:`plan_change`'s ``unknown`` then shows it
    changed); a field with no prior value is left out."""
    out = {k: v for k, v in known.items() if k not in unknown}
    out.update({n: prior[n] for n in unknown if prior.get(n) is not None})
    return out


def secrets_as_applied(prior: Mapping[str, Any], written: Mapping[str, Any],
                       rotated: Collection[str] = ()) -> dict[str, Any]:
    """The prior inputs (by field name) with the write-only secrets a provider never
    stores: a secret in ``written`` (the declaration's value, given outside the state)
    whose prior value is missing is what the DSP holds - unless ``rotated`` names it (the
    user said it changed: Terraform's ``x_wo_version``); then the diff sees a new secret."""
    out = dict(prior)
    for name, value in written.items():
        if out.get(name) is None and name not in rotated:
            out[name] = value
    return out


def _prior_outputs(kind: Kind[Any, Any], prior: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not prior:
        return None
    return {n: prior[n] for n in output_names(kind) if prior.get(n) is not None}


def plan_state(
    kind: Kind[Any, Any],
    prior: Mapping[str, Any] | None,
    given: Mapping[str, Any],
    spec: Any,
    *,
    unknown: Collection[str] = (),
    write_only: Collection[str] = (),
    written: Mapping[str, Any] | None = None,
    rotation: Mapping[str, str] | None = None,
    rotated: Collection[str] = (),
    last: Mapping[str, Any] | None = None,
    config: Any = None,
    stable: Collection[str] = (),
) -> Planned:
    """A provider's planned state: a create (``prior`` None) or a change from ``prior``
    (the known values of the prior state by name: inputs as the state keeps them, outputs,
    ``id``). Pure.

    ``given``: the declaration's known, non-null inputs as written; ``spec``: the Spec of
    the whole declaration, None while an input is unknown (``unknown``: those inputs);
    ``write_only``: secrets given outside the state, never planned into it (``written``:
    the known ones); ``rotation``: write-only secret -> the attribute whose change rotates
    it, ``rotated``: the secrets whose rotation attribute changed; ``stable``: outputs
    that never change after create (an update keeps them known).

    A planned input is what the declaration says (its form, not the core's), else the
    core's value where it changed, else the prior one. With an unknown value, or a prior
    state the current core no longer accepts, known values compare raw and an unknown one
    counts as changed. Raises InputError for a change the kind refuses."""
    written = written or {}
    rotation = rotation or {}
    fields = attrs.fields(kind.Spec)
    outs = output_names(kind)
    norm = kind.spec_to(spec) if spec is not None else {}
    values: dict[str, Any] = {}
    unk: set[str] = set()
    d: Diff | None = None
    if prior is None:
        changed: set[str] = set()
        unk |= {*outs, "id"}
    else:
        prior_inputs = {f.name: prior[f.name] for f in fields if prior.get(f.name) is not None}
        old = kind.spec_or_none(secrets_as_applied(prior_inputs, written, rotated))
        if spec is not None and old is not None:
            d = plan_change(kind, old, spec, last=last, config=config).diff
            changed, replaces = set(d.fields), set(d.replaces)
        else:
            changed = set(unknown) | {n for n, v in given.items() if v != prior.get(n)}
            replaces = {f.name for f in fields if f.name in changed and f.metadata.get(REPLACE)}
    for f in fields:
        n = f.name
        if n in given:
            values[n] = given[n]
        elif n in unknown:
            unk.add(n)
        elif n in write_only:
            values[n] = None  # the secret is given outside the state, and stays out of it
        elif prior is None:
            if norm.get(n) is not None:
                values[n] = norm[n]
            elif f.default is not attrs.NOTHING:
                unk.add(n)  # unset and no default yet: the DSP (or a later value) decides
            else:
                values[n] = None
        elif n in changed and spec is not None:
            values[n] = norm.get(n)
        else:
            values[n] = prior.get(n)
    if prior is None:
        return Planned("create", values, frozenset(unk))
    # a replacement shows on an attribute whose value changes: a write-only secret (its
    # planned value stays null) through its rotation attribute
    for n, attr in rotation.items():
        if n in replaces and n not in unk and values.get(n) == prior.get(n):
            replaces.discard(n)
        if n in rotated and getattr(attrs.fields(kind.Spec), n).metadata.get(REPLACE):
            replaces.add(attr)
    changed |= set(rotated)
    repair = repair_of(kind, _prior_outputs(kind, prior))
    if replaces:
        unk |= {*outs, "id"}
    else:
        values["id"] = prior.get("id")
        for n in outs:
            if (not changed and repair is None) or n in stable:
                values[n] = prior.get(n)
            else:
                unk.add(n)
    action = "replace" if replaces else "update" if changed or repair else "same"
    return Planned(action, values, frozenset(unk), tuple(sorted(replaces)), d, repair)


def apply_change(kind: Kind[Any, Any], prior: Mapping[str, Any], spec: Any, *,
                 written: Mapping[str, Any] | None = None, rotated: Collection[str] = (),
                 last: Mapping[str, Any] | None = None, config: Any = None,
                 resource: str = "", rerun: str = "the apply") -> Change:
    """The change an apply makes (an update from ``change.prior`` to ``change.desired``),
    after its plan (:func:`plan_state`; ``prior`` as there). A replacement the plan could not see (the value was unknown
    then, e.g. extra_specs of a volume type changed in the same run) is refused with
    nothing changed: InputError (``rerun``: the front end's apply command)."""
    prior_inputs = {f.name: prior[f.name] for f in attrs.fields(kind.Spec)
                    if prior.get(f.name) is not None}
    old = kind.spec_from(secrets_as_applied(prior_inputs, written or {}, rotated),
                         resource=resource or None)
    return refuse_replace(kind, plan_change(kind, old, spec, outputs=_prior_outputs(kind, prior),
                                            last=last, config=config), resource=resource, rerun=rerun)


def refuse_replace(kind: Kind[Any, Any], change: Change, *, resource: str | None = None,
                   importing: str | None = None, rerun: str = "the apply") -> Change:
    """``change``, unless it is a replacement a front end may not make (InputError, nothing
    changed): of the object it imports (``importing``: its id), or one its plan could not
    see (the value was unknown then, or changed since; ``rerun``: the apply command)."""
    d = change.diff
    if change.action != "replace":
        return change
    if importing is not None:
        why = (f"the object to import ({importing}) differs in fields that cannot change in "
               f"place: {', '.join(d.replaces)}")
        fix = "make the declaration match the existing object, then import"
    else:
        why = (f"the new value of {', '.join(d.replaces)} needs a new {kind.name}, which the "
               "plan could not know (the value was unknown at plan time); nothing was changed")
        fix = (f"run {rerun} again: the next plan knows the value and shows the replacement "
               "(or why it is refused)")
    raise InputError(why, kind=kind.name, field=d.replaces[0], resource=resource, fix=fix)


def is_sensitive(kind: Kind[Any, Any] | None, name: Any) -> bool:
    """Whether ``name`` is a sensitive input (or its former name) or output of ``kind``."""
    return kind is not None and isinstance(name, str) and any(
        f is not None and f.metadata.get(SENSITIVE) for f in (getattr(
            attrs.fields(c), aliases_of(c).get(name, name), None) for c in (kind.Spec, kind.Outputs)))


def secret_refusal(kind: Kind[Any, Any], field: str, source: str, *, name: str | None = None,
                   noun: str = "field", resource: str | None = None) -> InputError | None:
    """Why a secret (``source``) may not reach ``field`` (``name``, ``noun``: the front
    end's words for it), None if sensitive: a plain field goes to the DSP as it is, and the
    state keeps it in clear to notice drift; masking it would only hide the leak."""
    return None if is_sensitive(kind, field) else InputError(
        f"takes a secret ({source}), and {name or field!r} is not a sensitive {noun}: the value "
        "would be shown in plans, kept in the state in clear and written to the DSP, where "
        "anyone who can read the object sees it", kind=kind.name, field=field, resource=resource,
        fix=f"use secrets only in sensitive {noun}s (CHAP secrets) or outputs, or pass a plain value")


def recorded_inputs(kind: Kind[Any, Any], observed: Any, user: Mapping[str, Any] | None, *,
                    written: Mapping[str, Any] | None = None, user_form: bool = True
                    ) -> dict[str, Any]:
    """The inputs a provider's state keeps for the object the DSP reports (``observed``:
    its Spec), given the declaration (``user``: its known values by field name, None where
    declared null; ``written``: its write-only secrets; None for an import).

    ``user_form`` (Terraform: an applied value must equal the planned one): an input the
    kind's diff finds equal keeps the user's form (a tenant ``x`` is ``/root/x``), and a
    secret the DSP does not return keeps the user's value; a declaration the core no
    longer accepts keeps none. Otherwise (Pulumi) the DSP's form, and every input the DSP
    does not report keeps the user's value."""
    data = kind.spec_to(observed)
    user = user or {}
    if not user_form:
        return {f.name: data.get(f.name) if data.get(f.name) is not None or user.get(f.name) is None
                else user[f.name] for f in attrs.fields(kind.Spec)}
    names = [f.name for f in attrs.fields(kind.Spec)]
    same: set[str] = set()
    if user:  # a state written by an older core: take what the DSP says
        user_spec = kind.spec_or_none({**{k: v for k, v in user.items()
                                          if k in names and v is not None}, **(written or {})})
        if user_spec is not None:
            same = set(names) - set(differing(kind, observed, user_spec))
    out = {}
    for f in attrs.fields(kind.Spec):
        n, ov = f.name, data.get(f.name)
        if n in same and n in user:
            out[n] = user[n]
        elif f.metadata.get(SENSITIVE) and ov is None and user.get(n) is not None:
            out[n] = user[n]  # the DSP does not echo secrets; keep what was written
        else:
            out[n] = ov
    return out


def repair_shown_on(kind: Kind[Any, Any], outputs: Mapping[str, Any], repair: str | None,
                    replaces: Collection[str] = ()) -> str | None:
    """The output a provider shows as changing for a repair with no input change: the one
    that says why (an attachment's ``repair_needed``), else the first; None without one,
    or when the change ``replaces`` the object anyway."""
    names = [f.name for f in attrs.fields(kind.Outputs)]
    if not repair or not names or replaces:
        return None
    return next((n for n in names if outputs.get(n) == repair), names[0])


def outputs_after(kind: Kind[Any, Any], obj_id: str, prior: Mapping[str, Any],
                  outputs: Mapping[str, Any], desired: Mapping[str, Any] | None
                  ) -> dict[str, Any] | None:
    """The outputs an update will leave (:meth:`Kind.planned_outputs`) as plain data, from
    the prior inputs and outputs and the desired inputs (plain data by field name, None
    while one is unknown): what a preview shows its dependents. ``outputs`` as they are
    for a kind whose update leaves them (no ``planned_outputs`` of its own); None (all
    unknown) while ``desired`` is unknown or a side does not structure."""
    if type(kind).planned_outputs is Kind.planned_outputs:
        return dict(outputs)
    if desired is None:
        return None
    try:
        old = Observed(id=obj_id, spec=kind.spec_from(prior),
                       outputs=kind.outputs_from(dict(outputs)))
        return kind.outputs_to(kind.planned_outputs(old, kind.spec_from(desired)))
    except (InputError, TypeError, ValueError, cattrs.BaseValidationError):
        return None
