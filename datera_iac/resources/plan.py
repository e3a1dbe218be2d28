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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs
import cattrs

from datera_iac.errors import InputError
from datera_iac.fields import REPLACE, SENSITIVE
from datera_iac.resources.base import Diff, FieldChange, Kind

__all__ = ["Change", "declared_since", "plan_change", "repair_of"]

log = logging.getLogger(__name__)


@attrs.frozen
class Change:
    """The planner's answer. ``action``: ``create`` (no prior object), ``same``,
    ``update`` (in place, also a repair) or ``replace``. ``diff`` holds the field changes
    (unknown new values as the caller's ``unknown_value``), the kind's reason and the
    repair reason; ``desired`` is the spec as compared (removed declarations explicit):
    what an update must be given."""

    action: str
    diff: Diff = Diff()
    desired: Any = None

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
    try:
        last_spec = kind.spec_from(data, resource=resource)
    except (InputError, TypeError, ValueError) as e:
        log.debug("%s %s: the last declaration no longer validates (%s); removed "
                  "inputs are not reset", kind.name, resource or "", type(e).__name__)
        return new
    return kind.declare_removed(new, last_spec, config)


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
    changes = []
    for c in d.changes:
        if c.sensitive and c.old is None and secret_kept is not None and secret_kept(c):
            continue
        if temp_name and c.name == "name" and c.old == temp_name:
            c = attrs.evolve(c, replace=False)
        changes.append(c)
    fields = attrs.fields_dict(kind.Spec)
    seen = {c.name for c in changes}
    for name in unknown:
        if name not in seen and name in fields:
            f = fields[name]
            changes.append(FieldChange(
                name=name, old=getattr(prior, name, None), new=unknown_value,
                replace=bool(f.metadata.get(REPLACE)), sensitive=bool(f.metadata.get(SENSITIVE)),
            ))
    if ignore:
        # an ignored field keeps what the object has: not shown, and not sent by update
        changes = [c for c in changes if c.name not in ignore]
        desired = attrs.evolve(desired, **{n: getattr(prior, n) for n in ignore if n in fields})
    d = attrs.evolve(d, changes=tuple(changes), repair=repair_of(kind, outputs))
    if delete_before_replace and d.replace:
        d = attrs.evolve(d, delete_before_replace=True)
    action = "replace" if d.replace else "update" if d.changed else "same"
    return Change(action, d, desired)
