"""Pulumi resource semantics over one kind of the core: check, diff, create, read, update,
delete on plain property dicts (camelCase keys, :class:`Secret` wrappers, :data:`UNKNOWN`).

This layer only translates Pulumi's values (property names, secrets on the wire, unknowns
in preview, URNs, inputs and outputs in one state map) to the core and back; validation is
``kind.spec_from``, every planning decision :mod:`datera_iac.resources.plan`'s, and every
call runs through the core's :class:`~datera_iac.resources.frontend.Frontend`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from datera_iac.errors import InputError
from datera_iac.pulumi._codec import UNKNOWN, Secret, has_unknown, is_secret, reveal
from datera_iac.pulumi._derive import KindProps, kind_props
from datera_iac.resources.base import Context, Kind, Observed, Timeouts, check_create
from datera_iac.resources.batching import DeleteChecks
from datera_iac.resources.frontend import Frontend, Wire
from datera_iac.resources.intents import IntentJournal
from datera_iac.resources.plan import (
    default_name, defaulted_name, outputs_after, plan_change, refused_change, repair_shown_on,
    secret_refusals, spec_if_known)

__all__ = ["CheckFailure", "DiffResult", "ResourceAdapter", "urn_name", "urn_type"]

#: Properties the engine or SDK may add that are not the kind's (never passed to the core).
_INTERNAL_PREFIX = "__"


@attrs.frozen
class CheckFailure:
    property: str
    reason: str


@attrs.frozen
class DiffResult:
    """Pulumi's view of a :class:`~datera_iac.resources.base.Diff`: property names, and
    per property one of ADD/DELETE/UPDATE with ``_REPLACE`` when it forces a replacement;
    ``repair``: why the old object must be repaired (an update with no input change)."""

    changes: tuple[str, ...]
    replaces: tuple[str, ...]
    detailed: Mapping[str, str]
    delete_before_replace: bool = False
    reason: str | None = None
    repair: str | None = None


def urn_type(urn: str) -> str:
    """The type token of a URN ``urn:pulumi:stack::project::[parent$]type::name``."""
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""


def urn_name(urn: str) -> str:
    """The resource's logical name from its URN."""
    parts = urn.split("::")
    return "::".join(parts[3:]) if len(parts) >= 4 else urn


class ResourceAdapter:
    """One kind behind Pulumi's resource-provider calls."""

    def __init__(self, kind: Kind[Any, Any], intents: IntentJournal | None = None) -> None:
        self.kind = kind
        self.props: KindProps = kind_props(kind)
        self._by_name = {p.name: p for p in self.props.inputs}
        self._outputs_by_name = {p.name: p for p in self.props.outputs}
        self.core = Frontend(kind, Wire({p.field: p.name for p in self.props.inputs},
                                        {p.field: p.name for p in self.props.outputs}, has_unknown,
                                        reveal, declared_form=False, always_updates=True), intents)
        self.batcher = self.core.batcher  # the provider shares its listings (SharedListings)

    # ---- translation ----------------------------------------------------------------

    def to_core(self, props: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Input properties as the core's snake_case data, with the map back to the names
        used (unknown names are passed on so that ``spec_from`` reports them)."""
        data: dict[str, Any] = {}
        names: dict[str, str] = {}
        for key, value in props.items():
            prop = self._by_name.get(key)
            if key.startswith(_INTERNAL_PREFIX) or (prop is None and key in self._outputs_by_name):
                continue  # the engine's, or an output carried in state
            field = prop.field if prop else key
            data[field], names[field] = reveal(value), key
        return data, names

    def _field(self, name: str) -> str:
        return getattr(self._by_name.get(name), "field", name)

    def _name(self, field: str) -> str:
        prop = self.props.by_field(field)
        return prop.name if prop else field

    def _secret_names(self, *maps: Mapping[str, Any]) -> set[str]:
        """Properties that must stay secret: sensitive in the core, or sent as secrets."""
        return {p.name for p in self.props.all if p.secret} | {
            k for m in maps for k, v in m.items() if is_secret(v)}

    def _wrap(self, values: Mapping[str, Any], secret: set[str]) -> dict[str, Any]:
        return {k: Secret(v) if k in secret and v is not None and not isinstance(v, Secret)
                else v for k, v in values.items()}

    def _failure(self, e: InputError, names: Mapping[str, str]) -> CheckFailure:
        field = (e.field or "").split(".")[0]
        fix = e.fix or ""
        if fix.startswith("known fields:"):
            fix = "known properties: " + ", ".join(p.name for p in self.props.inputs)
        return CheckFailure(property=names.get(field) or self._name(field),
                            reason=f"{e.reason} ({fix})" if fix else e.reason)

    def inputs_of(self, spec: Any) -> dict[str, Any]:
        """A spec as input properties (None values left out, as a user would write it)."""
        data = self.kind.spec_to(spec)
        return {p.name: data[p.field] for p in self.props.inputs if data.get(p.field) is not None}

    def state_of(self, obs: Observed[Any, Any], secret: set[str],
                 known: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What Pulumi keeps as the resource's outputs: every input and every output; an
        input the DSP does not report keeps its value in ``known`` (the inputs just
        applied, or the previous state)."""
        return self._wrap(self.core.state(obs, self.core.inputs(known or {}, nulls=True)), secret)

    def is_input(self, name: str) -> bool:
        """Whether ``name`` is an input property (else an output carried in state)."""
        return name in self._by_name

    def spec(self, props: Mapping[str, Any], *, resource: str | None = None) -> Any:
        return self.kind.spec_from(self.to_core(props)[0], resource=resource)

    def _last(self, old_inputs: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The last declaration (the engine's old inputs) as the core's data, if usable."""
        usable = old_inputs and not has_unknown(old_inputs)
        return self.core.inputs(old_inputs, nulls=True) if usable else None  # type: ignore[arg-type]

    # ---- calls ------------------------------------------------------------------------

    def check(self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any],
              autoname: tuple[str, str] | None = None) -> tuple[dict[str, Any], list[CheckFailure]]:
        """Validate and normalize new inputs through ``kind.spec_from``; while an input is
        unknown they are returned as they are (Check runs again before Create). A missing
        required name is the core's ``default_name`` (``autoname``: mode and proposed name,
        ``pulumi:autonaming``); a secret to a plain property is refused (``secret_refusals``)."""
        news, named, (mode, proposed) = dict(news), None, autoname or ("", "")
        name = default_name(self.kind, {self._field(k) for k in news}, urn_name(urn), proposed)
        if name is not None and mode == "DISABLE":
            return self._wrap(news, self._secret_names(news)), [CheckFailure(
                property=self._name("name"), reason=f"{self._name('name')} is required: "
                "autonaming is disabled by the pulumi:autonaming configuration; set it explicitly")]
        if name:
            news[self._name("name")], named = name, None if proposed else self._name("name")
        secret = self._secret_names(news)
        leaked = [self._failure(e, {e.field: k}) for k, e in secret_refusals(
            self.kind, {k: self._field(k) for k, v in news.items() if is_secret(v)},
            "a Pulumi secret", noun="property").items()]
        if leaked or has_unknown(news):
            return self._wrap(news, secret), leaked
        data, names = self.to_core(news)
        try:
            spec = self.kind.spec_from(data, resource=urn_name(urn))
        except InputError as e:
            failure = self._failure(e, names)
            if named and failure.property == named:
                failure = CheckFailure(named, defaulted_name(failure.reason, named, urn_name(urn)))
            return self._wrap(news, secret), [failure]
        try:  # a plan-time error (a shrink) from the last inputs: Diff cannot fail on it
            refused_change(self.kind, self._last(olds), spec, resource=urn_name(urn))
        except InputError as e:
            return self._wrap(self.inputs_of(spec), secret), [self._failure(e, names)]
        return self._wrap(self.inputs_of(spec), secret), []

    def diff(self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any],
             ignore_changes: Sequence[str] = (), old_inputs: Mapping[str, Any] | None = None,
             config: Any = None) -> DiffResult:
        """The planner's change from the stored state to the checked new inputs. A change
        the kind refuses (a shrink) is an UPDATE here: Check reports it before any Diff of a
        preview or up, and the engine's refresh diffs the other way round to show drift."""
        name = urn_name(urn)
        # a former property name stands for its property (Check leaves unknown inputs as
        # they are, so one may reach Diff)
        news = {self.props.former.get(k, k): v for k, v in news.items()}
        old_spec = self.kind.spec_from(self.core.inputs(olds, nulls=True), resource=name)
        data, names = self.to_core(news)
        unknown = sorted((f for f, v in data.items() if names[f] in self._by_name and has_unknown(v)),
                         key=self._name)
        ignored = {i.split(".")[0].split("[")[0] for i in ignore_changes}
        try:
            new = spec_if_known(self.kind, data, unknown, prior=self.kind.spec_to(old_spec),
                                resource=name)
            change = plan_change(
                self.kind, old_spec, new, outputs=self.core.outputs(olds),
                last=self._last(old_inputs), config=config, resource=name, unknown=unknown,
                unknown_value=UNKNOWN, ignore={p.field for p in self.props.inputs if p.name in ignored})
        except InputError as e:
            prop = self.props.by_field((e.field or "").split(".")[0])
            pname = prop.name if prop else (e.field or "")
            return DiffResult(changes=(pname,), replaces=(), detailed={pname: "UPDATE"}, reason=str(e))
        detailed: dict[str, str] = {}
        replaces = [self._name(c.name) for c in change.changes if c.replace]
        for c in change.changes:
            op = "ADD" if c.old is None else "DELETE" if c.new is None else "UPDATE"
            detailed[self._name(c.name)] = op + ("_REPLACE" if c.replace else "")
        carrier = repair_shown_on(self.kind, self.core.outputs(olds), change.repair, replaces)
        if carrier:
            detailed.setdefault(next(p.name for p in self.props.outputs if p.field == carrier), "UPDATE")
        return DiffResult(changes=tuple(detailed), replaces=tuple(replaces), detailed=detailed,
                          delete_before_replace=change.diff.delete_before_replace and bool(replaces),
                          reason=change.diff.reason, repair=change.repair)

    def check_plan(self, context: Callable[[], Context], urn: str, news: Mapping[str, Any]) -> None:
        """The core's ``check_create`` of a create."""
        check_create(self.kind, context,
                     None if has_unknown(news) else self.spec(news, resource=urn_name(urn)))

    def preview_create(self, news: Mapping[str, Any]) -> dict[str, Any]:
        """The state a create would produce, with every output unknown. No API call."""
        state = {**news, **{p.name: UNKNOWN for p in self.props.outputs if news.get(p.name) is None}}
        return self._wrap(state, self._secret_names(news))

    def create(self, ctx: Context, urn: str, news: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Create; with the provider's intents, under a record keyed by the URN."""
        key = self.core.intents and self.core.intents.key(self.kind.token, {"urn": urn})
        obs = self.core.create(ctx, self.spec(news, resource=urn_name(urn)), key)
        return obs.id, self.state_of(obs, self._secret_names(news), news)

    def preview_update(self, id: str, olds: Mapping[str, Any], news: Mapping[str, Any]
                       ) -> dict[str, Any]:
        """New inputs over the outputs the update will leave (the core's
        :func:`~datera_iac.resources.plan.outputs_after`; unknown while an input is), so the
        preview plans the dependents that read an output the update changes (a
        VolumeType's ``extraSpecs``) as ``up`` will. No API call."""
        after = outputs_after(self.kind, id, self.core.inputs(olds, nulls=True), self.core.outputs(olds),
                              None if has_unknown(news) else self.to_core(news)[0])
        state = {**{k: v for k, v in olds.items() if k in self._outputs_by_name}, **news}
        state.update({p.name: UNKNOWN if after is None else after.get(p.field)
                      for p in self.props.outputs if p.name not in self._by_name})
        return self._wrap(state, self._secret_names(olds, news))

    def update(self, ctx: Context, urn: str, id: str, olds: Mapping[str, Any],
               news: Mapping[str, Any], old_inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        name = urn_name(urn)
        obs = self.core.update(lambda: ctx, id, olds, self.spec(news, resource=name),
                               last=self._last(old_inputs), resource=name, rerun="`pulumi up`")
        return self.state_of(obs, self._secret_names(olds, news), news)  # type: ignore[arg-type]

    def read(self, ctx: Context, id: str, props: Mapping[str, Any], inputs: Mapping[str, Any]
             ) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        """Refresh (state given) or import (no state: ``kind.adopt`` by id or reference);
        None when the object is gone (the engine drops it). A refresh keeps the inputs the
        program set, with the values seen on the DSP (drift shows against the program); an
        import returns the whole spec."""
        importing = not props and not inputs
        obs = self.core.read(ctx, id, None if importing else self.core.inputs(inputs or props, nulls=True))
        if obs is None:
            return None
        secret = self._secret_names(props, inputs)
        state = self.state_of(obs, secret, props)
        new_inputs = self.inputs_of(obs.spec) if importing else {
            k: v for k, v in state.items() if k in inputs and k in self._by_name}
        return obs.id, state, self._wrap(new_inputs, secret)

    def delete(self, ctx: Context, id: str, state: Mapping[str, Any] | None = None,
               old_inputs: Mapping[str, Any] | None = None, *, resource: str | None = None,
               checks: DeleteChecks | None = None) -> None:
        """Delete (``cascade``, ``unmanage_on_delete`` from the recorded declaration;
        ``checks``: the provider's shared delete-check listings). Pulumi's own
        ``retainOnDelete`` never calls Delete."""
        self.core.delete(ctx, id, {**(state or {}), **(old_inputs or {})}, resource=resource,
                         checks=checks)


def with_timeout(ctx: Context, op: str, seconds: float) -> Context:
    """``ctx`` with the engine's per-operation timeout (``customTimeouts``) when it set one."""
    if not seconds or seconds <= 0:
        return ctx
    return attrs.evolve(ctx, timeouts=attrs.evolve(ctx.timeouts or Timeouts(), **{op: seconds}))
