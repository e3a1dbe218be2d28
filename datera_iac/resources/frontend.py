"""One kind behind a provider's resource calls: Terraform's and Pulumi's providers differ
only in their wire conventions (a :class:`Wire`); the rest is this one pipeline - the check
of a declaration, its validation while values are unknown, the planned state and the diff
(the planner's, :mod:`datera_iac.resources.plan`), the state kept of an object, a create
under an intent record, a read through the shared batcher, the update
:func:`~datera_iac.resources.plan.apply_change` asks for, a delete by
:func:`~datera_iac.resources.base.delete_or_unmanage`. The adapters only translate."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import attrs
import msgpack

from datera_iac.errors import InputError, NotFound
from datera_iac.resources.base import (
    Context, Dependent, Kind, Observed, Timeouts, check_delete, delete_or_unmanage)
from datera_iac.resources.batching import DeleteChecks, ReadBatcher, SharedListings, read_one
from datera_iac.resources.intents import IntentJournal, create_kept, create_recorded
from datera_iac.resources.plan import (
    Change, Planned, apply_change, holds_unknown, plan_change, plan_state, recorded_inputs,
    secret_refusal, spec_if_known)

__all__ = ["Checked", "Frontend", "OneUse", "Wire", "with_timeout"]


@attrs.frozen
class Wire:
    """A provider's conventions: ``inputs``/``outputs``: each field's name on the wire;
    ``is_unknown``: its marker of a value known only after apply; ``reveal``: unwraps its
    secrets; ``write_only``: field -> (the write-only attribute that gives it, the attribute
    whose change rotates it): Terraform's ``x_wo``/``x_wo_version``, read as the field and
    never kept in a state; ``declared_form``: a state keeps the declaration's form of an
    input the DSP reports equal (Terraform: applied must equal planned), else the DSP's;
    ``keeps_partial``: a create that made its object, then failed, raises ``CreateLeft``
    (Terraform taints it); ``always_updates``: an update is an explicit request (Pulumi's,
    after its Diff), sent even when the planner finds nothing to change (the kind checks
    the object: gone, or broken)."""

    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    is_unknown: Callable[[Any], bool]
    reveal: Callable[[Any], Any] | None = None
    write_only: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)
    declared_form: bool = True
    keeps_partial: bool = False
    always_updates: bool = False


@attrs.frozen
class Checked:
    """A declaration checked before any plan (:meth:`Frontend.check`): its ``spec`` (None
    after an error in it, or while a value is unknown), the ``name`` it was given, and the
    ``errors`` (InputError by field)."""

    spec: Any = None
    name: str | None = None
    errors: tuple[InputError, ...] = ()


class OneUse:
    """Answers of a pure function of a decoded configuration, each kept for one later call
    with an equal configuration (Terraform validates an instance's configuration, then
    plans it with the same one: the plan need not build the Spec again). Equal means equal
    as msgpack (types kept: ``1``, ``1.0`` and ``True`` differ; :attr:`is_unknown` marks the
    front end's unknowns); an answer is taken once, so no two callers share an object;
    errors are not kept; at most :attr:`size` answers wait (those of another process's plan
    are never taken)."""

    size = 256
    is_unknown: Callable[[Any], bool] = staticmethod(lambda value: False)
    _MISS = object()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[bytes, Any] = {}

    def _key(self, config: Mapping[str, Any]) -> bytes | None:
        def unknown(value: Any) -> Any:
            if self.is_unknown(value):
                return msgpack.ExtType(0, b"\0")
            raise TypeError(type(value).__name__)

        try:
            return msgpack.packb(config, default=unknown)
        except (TypeError, ValueError, OverflowError):
            return None

    def get(self, config: Mapping[str, Any], keep: bool, compute: Callable[[Any], Any]) -> Any:
        key = self._key(config)
        if key is not None and not keep:
            with self._lock:
                found = self._kept.pop(key, self._MISS)
            if found is not self._MISS:
                return found
        value = compute(config)
        if key is not None and keep:
            with self._lock:
                if len(self._kept) >= self.size:
                    del self._kept[next(iter(self._kept))]
                self._kept[key] = value
        return value


def with_timeout(ctx: Context, op: str, seconds: float) -> Context:
    """``ctx`` with a per-operation timeout (Pulumi's ``customTimeouts``) when one is set."""
    if not seconds or seconds <= 0:
        return ctx
    return attrs.evolve(ctx, timeouts=attrs.evolve(ctx.timeouts or Timeouts(), **{op: seconds}))


class Frontend:
    """The pipeline of ``kind`` on one provider's :class:`Wire`; ``intents``: its journal of
    creates in flight (any call about an object the provider holds settles its create)."""

    def __init__(self, kind: Kind[Any, Any], wire: Wire, intents: IntentJournal | None = None) -> None:
        self.kind, self.wire, self.intents = kind, wire, intents
        self.batcher = ReadBatcher(kind) if kind.has_bulk_read else None
        self.unknown = functools.partial(holds_unknown, is_unknown=wire.is_unknown)

    def inputs(self, values: Mapping[str, Any], *, nulls: bool = False) -> dict[str, Any]:
        """The known inputs among wire values as the core's data (``nulls``: with those
        declared null)."""
        out = {f: v for f, n in self.wire.inputs.items()
               if n in values and ((v := values[n]) is not None or nulls) and not self.unknown(v)}
        return out if self.wire.reveal is None else {f: self.wire.reveal(v) for f, v in out.items()}

    def given(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The known, non-null inputs, write-only secrets as their fields: a Spec's data."""
        return {**self.inputs(values), **self.written(values)}

    def written(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The known write-only secrets among wire values, by field."""
        return {n: v for n, (wo, _) in self.wire.write_only.items()
                if (v := values.get(wo)) is not None and not self.unknown(v)}

    def rotated(self, prior: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
        """The write-only secrets whose rotation attribute changed from ``prior`` to ``new``."""
        return {n for n, (_, version) in self.wire.write_only.items()
                if prior.get(version) != new.get(version)}

    def without_write_only(self, state: dict[str, Any] | None,
                           versions: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """``state`` with every write-only attribute null (with ``versions``: each rotation
        attribute set, as there)."""
        for wo, version in self.wire.write_only.values():
            if state is not None and (wo in state or versions is not None):
                state[wo] = None
            if state is not None and versions is not None:
                state[version] = versions.get(version)
        return state

    def outputs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The known, non-null outputs among wire values as the core's data."""
        return {f: v if self.wire.reveal is None else self.wire.reveal(v)
                for f, n in self.wire.outputs.items()
                if (v := values.get(n)) is not None and not self.unknown(v)}

    def declared(self, spec: Any) -> dict[str, Any]:
        """A Spec as wire inputs, None values left out (as a user would write it)."""
        data = self.kind.spec_to(spec)
        return {n: data[f] for f, n in self.wire.inputs.items() if data.get(f) is not None}

    def check(self, data: Mapping[str, Any], *, resource: str, proposed: str = "",
              unnamed: str | None = None, secrets: Mapping[str, str] | None = None,
              source: str = "a secret", noun: str = "field", unknown: bool = False,
              last: Mapping[str, Any] | None = None) -> Checked:
        """Check a declaration (``data``: its values by field, as given) before any plan. A
        required ``name`` it lacks is ``proposed``, else the ``resource`` name - never a
        random suffix: operators and Cinder look objects up by name - unless ``unnamed``
        says why there is none. A secret (``source``) given to a plain field (``secrets``:
        field -> its wire name; ``noun``: the wire's word for a field) is refused
        (:func:`~datera_iac.resources.plan.secret_refusal`); while a value is
        ``unknown``, nothing more; then the Spec, and a change from the ``last`` inputs the
        kind refuses (a shrink: Diff cannot fail on it)."""
        f, name = attrs.fields_dict(self.kind.Spec).get("name"), None
        if f is not None and f.default is attrs.NOTHING and "name" not in data:
            if unnamed:
                n = self.wire.inputs["name"]
                return Checked(errors=(InputError(f"{n} is required: {unnamed}; set it explicitly",
                                                  field="name"),))
            name = proposed or resource
            data = {**data, "name": name} if name else data
        errors = tuple(e for fld, n in (secrets or {}).items() if (e := secret_refusal(
            self.kind, fld, source, name=n, noun=noun)) is not None)
        if errors or unknown:
            return Checked(name=name, errors=errors)
        try:
            spec = self.kind.spec_from(data, resource=resource)
        except InputError as e:
            return Checked(name=name, errors=(e,))
        try:
            if last is not None:
                plan_change(self.kind, self.kind.spec_from(last, resource=resource), spec)
        except InputError as e:
            return Checked(spec, name, (e,))
        return Checked(spec, name)

    def spec_if_known(self, config: Mapping[str, Any]) -> Any:
        """The Spec of a declaration's wire values, None while a value is unknown
        (:func:`~datera_iac.resources.plan.spec_if_known`). Raises InputError for its known
        values: at the write-only attribute that gave a secret; for a write-only attribute
        set beside its field, or a rotation attribute without it."""
        for name, (wo, version) in self.wire.write_only.items():
            if config.get(name) is not None and config.get(wo) is not None:
                raise InputError(f"{name} and {wo} are both set", kind=self.kind.name, field=wo,
                                 fix=f"keep only {wo} (with {version}); {name} is stored in "
                                 "the state in clear")
            if config.get(version) is not None and config.get(wo) is None:
                raise InputError(f"{version} is set without {wo}", kind=self.kind.name,
                                 field=version, fix=f"set {wo} to the secret, or drop {version}")
        unknown = {f for f, n in self.wire.inputs.items() if self.unknown(config.get(n))}
        unknown |= {f for f, (wo, _) in self.wire.write_only.items() if self.unknown(config.get(wo))}
        try:
            return spec_if_known(self.kind, self.given(config), unknown)
        except InputError as e:
            root, pairs = (e.field or "").split(".")[0], self.wire.write_only
            if root in pairs and config.get(pairs[root][0]) is not None:
                raise InputError(e.reason, kind=e.kind, resource=e.resource, fix=e.fix,
                                 field=pairs[root][0] + (e.field or "")[len(root):]) from None
            raise

    def plan(self, prior: Mapping[str, Any] | None, config: Mapping[str, Any], spec: Any, *,
             last: Mapping[str, Any] | None = None, defaults: Any = None) -> Planned:
        """:func:`~datera_iac.resources.plan.plan_state` of a declaration's wire values (and
        ``spec``: :meth:`spec_if_known`'s) from the prior state's, by field name; the kind's
        ``stable_outputs`` (a ClassVar of outputs that never change after create) stay known
        in an update."""
        pairs = self.wire.write_only
        return plan_state(
            self.kind, prior, self.inputs(config), spec,
            unknown={f for f, n in self.wire.inputs.items() if self.unknown(config.get(n))},
            write_only={n for n, (wo, _) in pairs.items() if config.get(wo) is not None},
            written=self.written(config), rotated=self.rotated(prior, config) if prior else (),
            rotation={n: version for n, (_, version) in pairs.items()}, last=last,
            config=defaults, stable=set(getattr(self.kind, "stable_outputs", ())))

    def diff(self, prior: Any, olds: Mapping[str, Any], data: Mapping[str, Any],
             unknown: Collection[str], **plan: Any) -> Change:
        """The planner's change from the ``prior`` Spec (``olds``: the state's wire values,
        for its outputs) to a declaration's data by field, each ``unknown`` input standing
        at its prior value; ``plan``: :func:`~datera_iac.resources.plan.plan_change`'s
        options. InputError from the declaration, or for a change the kind refuses."""
        new = spec_if_known(self.kind, data, unknown, prior=self.kind.spec_to(prior),
                            resource=plan.get("resource"))
        return plan_change(self.kind, prior, new, outputs=self.outputs(olds), unknown=unknown,
                           **plan)

    def state(self, obs: Observed[Any, Any], user: Mapping[str, Any] | None) -> dict[str, Any]:
        """The state kept of the object the DSP reports, by wire name: the inputs
        :func:`recorded_inputs` keeps (``user``: the declaration's wire values, None for an
        import), then the outputs (over an input of the same name where known); write-only
        attributes null, rotation attributes as ``user`` has them."""
        inputs = recorded_inputs(self.kind, obs.spec, self.inputs(user or {}, nulls=True),
                                 written=self.written(user or {}),
                                 user_form=self.wire.declared_form)
        outs = self.kind.outputs_to(obs.outputs)
        state = {n: inputs.get(f) for f, n in self.wire.inputs.items()}
        state.update({n: outs.get(f) for f, n in self.wire.outputs.items()
                      if n not in state or outs.get(f) is not None})
        self.without_write_only(state, user or {})
        return state

    def create(self, ctx: Context, spec: Any, key: str | None = None) -> Observed[Any, Any]:
        """``kind.create`` under the intent record ``key`` (none without a journal)."""
        if self.intents is None or key is None:
            return self.kind.create(ctx, spec)
        create = create_kept if self.wire.keeps_partial else create_recorded
        return create(self.kind, ctx, spec, self.intents, key)

    def read(self, ctx: Context, obj_id: str, recorded: Mapping[str, Any] | None, *,
             declared: Mapping[str, Any] | None = None) -> Observed[Any, Any] | None:
        """A refresh (``recorded``: the state's inputs) or, with no state, an import by id or
        reference; None when there is no such object. A found object is held: its create is
        settled (and the record keyed by ``declared``: :meth:`IntentJournal.key_of`)."""
        try:
            obs = (self.kind.adopt(ctx, obj_id) if recorded is None
                   else read_one(self.kind, self.batcher, ctx, obj_id, recorded))
        except NotFound:
            if recorded is not None:
                raise
            obs = None
        if obs is not None and self.intents is not None:
            if declared is not None:
                self.intents.clear(self.intents.key_of(self.kind, declared))
            for held in {obj_id, obs.id}:
                self.intents.settled(held)
        return obs

    def update(self, context: Callable[[], Context], obj_id: str, prior: Mapping[str, Any],
               spec: Any, new: Mapping[str, Any], *, last: Mapping[str, Any] | None = None,
               resource: str = "", rerun: str) -> Observed[Any, Any] | None:
        """The update :func:`apply_change` asks for, from the ``prior`` state to ``spec``
        (``new``: its wire values); None, with no call, when the planner finds nothing to
        change (unless ``always_updates``)."""
        if self.intents is not None:
            self.intents.settled(obj_id)
        change = apply_change(self.kind, {**self.outputs(prior), **self.inputs(prior)}, spec,
                              written=self.written(new), rotated=self.rotated(prior, new),
                              last=last, resource=resource,
                              config=context().config if last else None, rerun=rerun)
        if change.action == "same" and not self.wire.always_updates:
            return None
        return self.kind.update(context(), obj_id, change.prior, change.desired)

    def delete(self, ctx: Context, obj_id: str, declared: Mapping[str, Any], *,
               resource: str | None = None, checks: DeleteChecks | None = None) -> None:
        """Delete or unmanage as the ``declared`` wire values ask (``checks``: the delete
        checks' shared listings)."""
        if self.intents is not None:
            self.intents.settled(obj_id)
        delete_or_unmanage(self.kind, ctx, obj_id, self.inputs(declared), resource=resource,
                           check_ctx=None if checks is None else checks.context(self.kind, ctx))

    def check_delete(self, context: Callable[[], Context], obj_id: str | None,
                     declared: Mapping[str, Any], *, deleted_first: Iterable[str] = (),
                     listings: SharedListings | None = None) -> tuple[Dependent, ...]:
        """The kind's dependents rule at plan time (``listings``: the plan's refresh wave);
        no context is made without an object or a rule (the provider may not be configured)."""
        if not obj_id or not self.kind.has_dependents:
            return ()
        ctx = context()
        return check_delete(self.kind, ctx, obj_id, declared, resource=obj_id,
                            deleted_first=deleted_first,
                            check_ctx=None if listings is None else listings.serving(ctx))
