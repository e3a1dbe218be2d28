"""Pulumi resource semantics over one kind of the core: check, diff, create, read, update,
delete on plain property dicts (camelCase keys, :class:`Secret` wrappers, :data:`UNKNOWN`).

This layer only translates: validation is ``kind.spec_from``, the diff is ``kind.diff``, DSP
work is ``kind.create/read/update/delete/adopt``. What it adds is what Pulumi needs and the
core does not know about: property names, secrets on the wire, unknowns in preview, the
resource name as the default ``name``, and the shape of state (inputs and outputs in one
map, as every Pulumi provider keeps it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import cattrs

from datera_iac.errors import InputError, NotFound
from datera_iac.pulumi._codec import UNKNOWN, Secret, has_unknown, is_secret, reveal
from datera_iac.pulumi._derive import KindProps, kind_props
from datera_iac.resources.base import (
    Context,
    Kind,
    Observed,
    Timeouts,
    delete_or_unmanage,
)
from datera_iac.resources.batching import ReadBatcher
from datera_iac.resources.intents import IntentJournal, create_recorded
from datera_iac.resources.plan import declared_since, plan_change

__all__ = [
    "CheckFailure",
    "DiffResult",
    "ResourceAdapter",
    "urn_name",
    "urn_type",
]

#: Properties the engine or SDK may add that are not the kind's (never passed to the core).
_INTERNAL_PREFIX = "__"


@attrs.frozen
class CheckFailure:
    property: str
    reason: str


@attrs.frozen
class DiffResult:
    """Pulumi's view of a :class:`~datera_iac.resources.base.Diff`: property names, and
    per property one of ADD/DELETE/UPDATE with ``_REPLACE`` when it forces a replacement."""

    changes: tuple[str, ...]
    replaces: tuple[str, ...]
    detailed: Mapping[str, str]
    delete_before_replace: bool = False
    reason: str | None = None
    #: why the old object must be repaired (``kind.needs_repair``): an update even when
    #: no input changed
    repair: str | None = None


def urn_type(urn: str) -> str:
    """The type token of a URN ``urn:pulumi:stack::project::[parent$]type::name``."""
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""


def urn_name(urn: str) -> str:
    """The resource's logical name from its URN."""
    parts = urn.split("::")
    return "::".join(parts[3:]) if len(parts) >= 4 else urn


def _as_failure(props: KindProps, e: InputError, names: Mapping[str, str]) -> CheckFailure:
    field = (e.field or "").split(".")[0]
    prop = props.by_field(field)
    name = names.get(field) or (prop.name if prop else field)
    fix = e.fix or ""
    if fix.startswith("known fields:"):
        fix = "known properties: " + ", ".join(p.name for p in props.inputs)
    return CheckFailure(property=name, reason=f"{e.reason} ({fix})" if fix else e.reason)


class ResourceAdapter:
    """One kind behind Pulumi's resource-provider calls."""

    def __init__(self, kind: Kind[Any, Any]) -> None:
        self.kind = kind
        #: concurrent refreshes (``pulumi refresh``, ``up --refresh``) share bulk reads and,
        #: through the provider's SharedListings, one listing per refresh wave
        self.batcher = ReadBatcher(kind) if kind.has_bulk_read else None
        self.props = kind_props(kind)
        self._by_name = {p.name: p for p in self.props.inputs}
        self._outputs_by_name = {p.name: p for p in self.props.outputs}

    # ---- translation ----------------------------------------------------------------

    def to_core(self, props: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Input properties as the core's snake_case data, with the map back to the names
        used (unknown names are passed on so that ``spec_from`` reports them)."""
        data: dict[str, Any] = {}
        names: dict[str, str] = {}
        for key, value in props.items():
            if key.startswith(_INTERNAL_PREFIX):
                continue
            prop = self._by_name.get(key)
            if prop is None and key in self._outputs_by_name:
                continue  # an output carried in state, not an input
            field = prop.field if prop else key
            data[field] = reveal(value)
            names[field] = key
        return data, names

    def _secret_names(self, *maps: Mapping[str, Any]) -> set[str]:
        """Properties that must stay secret: sensitive in the core, or sent as secrets."""
        names = {p.name for p in self.props.all if p.secret}
        for m in maps:
            names.update(k for k, v in m.items() if is_secret(v))
        return names

    def _wrap(self, values: Mapping[str, Any], secret: set[str]) -> dict[str, Any]:
        return {
            k: Secret(v) if k in secret and v is not None and not isinstance(v, Secret) else v
            for k, v in values.items()
        }

    def inputs_of(self, spec: Any, *, only: Sequence[str] | None = None) -> dict[str, Any]:
        """A spec as input properties (None values left out, as a user would write it)."""
        data = self.kind.spec_to(spec)
        out = {}
        for p in self.props.inputs:
            if only is not None and p.name not in only:
                continue
            if data.get(p.field) is not None:
                out[p.name] = data[p.field]
        return out

    def state_of(
        self, obs: Observed[Any, Any], secret: set[str], known: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """What Pulumi keeps as the resource's outputs: every input and every output.

        An input the DSP does not report (``read`` gives None: a CHAP secret, a clone
        source) keeps the value in ``known`` (the inputs just applied, or the previous
        state), so the state still shows what the program set."""
        spec = self.kind.spec_to(obs.spec)
        outs = self.kind.outputs_to(obs.outputs)
        known = known or {}
        state: dict[str, Any] = {}
        for p in self.props.inputs:
            value = spec.get(p.field)
            if value is None and known.get(p.name) is not None:
                value = reveal(known[p.name])
            state[p.name] = value
        for p in self.props.outputs:
            if p.name in state and outs.get(p.field) is None:
                continue
            state[p.name] = outs.get(p.field)
        return self._wrap(state, secret)

    def is_input(self, name: str) -> bool:
        """Whether ``name`` is an input property (else an output carried in state)."""
        return name in self._by_name

    def recorded_outputs(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """The known outputs in ``state`` as the core's data (for the planner's repair)."""
        return {p.field: reveal(state[p.name]) for p in self.props.outputs
                if state.get(p.name) is not None and not has_unknown(state.get(p.name))}

    def spec(self, props: Mapping[str, Any], *, resource: str | None = None) -> Any:
        data, _ = self.to_core(props)
        return self.kind.spec_from(data, resource=resource)

    def old_spec(self, state: Mapping[str, Any], *, resource: str | None = None) -> Any:
        """The spec of stored state. Properties the kind no longer has (state written by an
        older version) are dropped rather than failing every diff of the resource."""
        return self.spec({k: v for k, v in state.items() if k in self._by_name},
                         resource=resource)

    def declared(self, new_spec: Any, old_inputs: Mapping[str, Any] | None, *,
                 resource: str, config: Any = None) -> Any:
        """``new_spec`` with what the last declaration (the engine's ``old_inputs``) named
        and this one no longer does made explicit at its default: ``kind.declare_removed``,
        so a ``DF:`` key taken out of a program resets it on the DSP instead of leaving it.
        Without usable old inputs (an imported resource, an older engine) nothing changes."""
        return declared_since(self.kind, new_spec, self._last(old_inputs), config,
                              resource=resource)

    def _last(self, old_inputs: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The last declaration (the engine's old inputs) as the core's data, if usable."""
        if not old_inputs or has_unknown(old_inputs):
            return None
        return self.to_core({k: v for k, v in old_inputs.items() if k in self._by_name})[0]

    # ---- calls ------------------------------------------------------------------------

    def check(
        self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any],
        autoname: tuple[str, str] | None = None,
    ) -> tuple[dict[str, Any], list[CheckFailure]]:
        """Validate and normalize new inputs through ``kind.spec_from``.

        While some input is unknown (preview, waiting on another resource) the inputs are
        returned as they are: Check runs again with every value known before Create.
        ``autoname``: the engine's autonaming options, (mode, proposed name) with mode
        ``PROPOSE``, ``ENFORCE`` or ``DISABLE`` (``pulumi:autonaming`` configuration).
        """
        news = dict(news)
        prop = self.props.by_field("name")
        if autoname is not None and prop is not None and prop.required and \
                prop.name not in news:
            mode, proposed = autoname
            if mode == "DISABLE":
                return self._wrap(news, self._secret_names(news)), [CheckFailure(
                    property=prop.name,
                    reason=f"{prop.name} is required: autonaming is disabled by the "
                    "pulumi:autonaming configuration; set it explicitly")]
            if proposed:
                news[prop.name] = proposed
        named = self._autoname(urn, news)
        secret = self._secret_names(news)
        leaked = self._secrets_in_plain(news)
        if leaked:
            return self._wrap(news, secret), leaked
        if has_unknown(news):
            return self._wrap(news, secret), []
        data, names = self.to_core(news)
        try:
            spec = self.kind.spec_from(data, resource=urn_name(urn))
        except InputError as e:
            failure = _as_failure(self.props, e, names)
            if named and failure.property == named:
                failure = CheckFailure(
                    property=failure.property,
                    reason=f"{failure.reason}; the {named} defaulted to the resource name "
                    f"{urn_name(urn)!r}: set {named} explicitly",
                )
            return self._wrap(news, secret), [failure]
        failure = self._plan_error(urn, olds, spec, names)
        return self._wrap(self.inputs_of(spec), secret), [failure] if failure else []

    def _plan_error(self, urn: str, olds: Mapping[str, Any], spec: Any,
                    names: Mapping[str, str]) -> CheckFailure | None:
        """A plan-time error of the change from the last inputs (``olds``; after a refresh,
        what the DSP holds) to ``spec``, e.g. a shrink, as a check failure: preview and up
        stop on it with the kind's message. Diff itself never fails on it, because the
        engine's refresh calls Diff with the two sides swapped to show drift."""
        if not olds or has_unknown(olds):
            return None
        try:
            old_spec = self.old_spec(olds, resource=urn_name(urn))
            plan_change(self.kind, old_spec, spec)
        except InputError as e:
            return _as_failure(self.props, e, names)
        return None

    def _secrets_in_plain(self, news: Mapping[str, Any]) -> list[CheckFailure]:
        """A secret (Pulumi's secret marker) given to a property the kind does not treat
        as sensitive is refused, as the engine refuses it: the provider would write it to
        the DSP in clear (metadata, a name), where every reader of the object sees it, and
        log it on the wire. Only sensitive properties (CHAP secrets) take secrets."""
        sensitive = {p.name for p in self.props.all if p.secret}
        return [
            CheckFailure(property=k, reason=(
                f"{k} is given a secret, but it is not a sensitive property: the DSP would hold "
                "it in clear for anyone who can read the object (use secrets only in "
                f"{', '.join(sorted(sensitive)) or 'sensitive properties'}, or pass a plain value)"))
            for k, v in news.items() if k not in sensitive and is_secret(v)
        ]

    def _autoname(self, urn: str, news: dict[str, Any]) -> str | None:
        """A kind whose Spec has a required ``name`` gets the resource's logical name when
        the program gives none (Pulumi's auto-naming, without a random suffix: DSP names
        are what operators and Cinder look objects up by). Returns the property it set."""
        prop = self.props.by_field("name")
        if prop is not None and prop.required and prop.name not in news and urn:
            news[prop.name] = urn_name(urn)
            return prop.name
        return None

    def diff(
        self,
        urn: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        ignore_changes: Sequence[str] = (),
        old_inputs: Mapping[str, Any] | None = None,
        config: Any = None,
    ) -> DiffResult:
        """Compare the stored state with the checked new inputs through ``kind.diff``.

        Unknown new values count as changed (and as a replacement when the property forces
        one). A plan-time error such as a shrink is an UPDATE of the property here: Check
        reports it (see :meth:`_plan_error`)."""
        name = urn_name(urn)
        # a former property name stands for its property (Check leaves unknown inputs as
        # they are, so one may reach Diff)
        news = {self.props.former.get(k, k): v for k, v in news.items()}
        old_spec = self.old_spec(olds, resource=name)
        old_data = self.kind.spec_to(old_spec)
        unknown = {k for k, v in news.items() if k in self._by_name and has_unknown(v)}
        known = {k: v for k, v in news.items() if k not in unknown}
        for k in unknown:
            # diff the known part; the unknown one is a change whatever it turns out to be
            p = self._by_name[k]
            if old_data.get(p.field) is not None:
                known[k] = old_data[p.field]
        ignored = {i.split(".")[0].split("[")[0] for i in ignore_changes}
        try:
            change = plan_change(
                self.kind, old_spec, self.spec(known, resource=name),
                outputs=self.recorded_outputs(olds), last=self._last(old_inputs),
                config=config, resource=name, unknown=[self._by_name[k].field for k in sorted(unknown)],
                unknown_value=UNKNOWN,
                ignore={p.field for p in self.props.inputs if p.name in ignored})
        except InputError as e:
            # reported by Check before any Diff of a preview or up (see _plan_error); the
            # engine's refresh diffs the other way round to show drift: an update
            prop = self.props.by_field((e.field or "").split(".")[0])
            pname = prop.name if prop else (e.field or "")
            return DiffResult(changes=(pname,), replaces=(), detailed={pname: "UPDATE"},
                              delete_before_replace=False, reason=str(e), repair=None)
        d = change.diff
        detailed: dict[str, str] = {}
        replaces: list[str] = []
        for c in d.changes:
            prop = self.props.by_field(c.name)
            pname = prop.name if prop else c.name
            if c.old is None:
                op = "ADD"
            elif c.new is None:
                op = "DELETE"
            else:
                op = "UPDATE"
            if c.replace:
                op += "_REPLACE"
                replaces.append(pname)
            detailed[pname] = op
        # a broken object is an update even when no input changed; the output that says
        # why (an attachment's repairNeeded) is the property shown as changing
        repair = d.repair
        carrier = next((p.name for p in self.props.outputs
                        if repair and reveal(olds.get(p.name)) == repair), None)
        if repair and not replaces and (carrier or self.props.outputs):
            detailed.setdefault(carrier or self.props.outputs[0].name, "UPDATE")
        return DiffResult(
            changes=tuple(detailed),
            replaces=tuple(replaces),
            detailed=detailed,
            delete_before_replace=d.delete_before_replace and bool(replaces),
            reason=d.reason,
            repair=repair,
        )

    def checks_plan(self, news: Mapping[str, Any]) -> bool:
        """Whether :meth:`check_plan` has something to check (the kind has plan-time checks
        and every input is known)."""
        return type(self.kind).check_plan is not Kind.check_plan and not has_unknown(news)

    def check_plan(self, ctx: Context, urn: str, news: Mapping[str, Any]) -> None:
        """The kind's plan-time checks of a create (``Kind.check_plan``: reads only, e.g. a
        clone below its source's live size), so preview refuses what the apply would fail
        after a copy was made."""
        if self.checks_plan(news):
            self.kind.check_plan(ctx, self.spec(news, resource=urn_name(urn)), {}, creating=True)

    def preview_create(self, news: Mapping[str, Any]) -> dict[str, Any]:
        """The state a create would produce, with every output unknown. No API call."""
        state = dict(news)
        for p in self.props.outputs:
            if p.name not in state or state[p.name] is None:
                state[p.name] = UNKNOWN
        return self._wrap(state, self._secret_names(news))

    def create(
        self, ctx: Context, urn: str, news: Mapping[str, Any], intents: IntentJournal | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Create; with ``intents``, under a record keyed by the URN, so that a create whose
        answer was lost is adopted by the next create of that URN - only the object carrying
        the token it wrote (:func:`~datera_iac.resources.intents.create_recorded`)."""
        spec = self.spec(news, resource=urn_name(urn))
        if intents is None:
            obs = self.kind.create(ctx, spec)
        else:
            obs = create_recorded(self.kind, ctx, spec, intents,
                                  intents.key(self.kind.token, {"urn": urn}))
        return obs.id, self.state_of(obs, self._secret_names(news), news)

    def preview_update(self, id: str, olds: Mapping[str, Any], news: Mapping[str, Any]
                       ) -> dict[str, Any]:
        """New inputs over the outputs the update will leave (``kind.planned_outputs``), so
        the preview plans the dependents that read an output the update changes (a
        VolumeType's ``extraSpecs``) as ``up`` will. While an input is unknown, a kind whose
        outputs follow from its inputs has them unknown too. No API call."""
        state = {k: v for k, v in olds.items() if k in self._outputs_by_name}
        state.update(news)
        if type(self.kind).planned_outputs is not Kind.planned_outputs:
            state.update(self._planned_outputs(id, olds, news))
        return self._wrap(state, self._secret_names(olds, news))

    def _planned_outputs(self, id: str, olds: Mapping[str, Any], news: Mapping[str, Any]
                         ) -> dict[str, Any]:
        """Output properties as ``kind.planned_outputs`` predicts them (all unknown while an
        input is unknown or the old state does not structure)."""
        unknown = {p.name: UNKNOWN for p in self.props.outputs if p.name not in self._by_name}
        if has_unknown(news):
            return unknown
        try:
            old = Observed(id=id, spec=self.old_spec(olds),
                           outputs=self.kind.outputs_from(self.recorded_outputs(olds)))
            planned = self.kind.outputs_to(self.kind.planned_outputs(old, self.spec(news)))
        except (InputError, TypeError, ValueError, cattrs.BaseValidationError):
            return unknown
        return {p.name: planned.get(p.field) for p in self.props.outputs
                if p.name not in self._by_name}

    def update(
        self, ctx: Context, urn: str, id: str, olds: Mapping[str, Any], news: Mapping[str, Any],
        old_inputs: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        name = urn_name(urn)
        old_spec = self.old_spec(olds, resource=name)
        new_spec = self.declared(self.spec(news, resource=name), old_inputs, resource=name,
                                 config=ctx.config)
        obs = self.kind.update(ctx, id, old_spec, new_spec)
        return self.state_of(obs, self._secret_names(olds, news), news)

    def read(
        self, ctx: Context, id: str, props: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        """Refresh (state given) or import (no state: ``kind.adopt`` by id or reference).

        Returns None when the object is gone, which tells the engine to drop it."""
        importing = not props and not inputs
        obs: Observed[Any, Any] | None
        if importing:
            try:
                obs = self.kind.adopt(ctx, id)
            except NotFound:
                return None
        else:
            # the recorded spec lets a kind answer what the DSP cannot report (a VolumeType
            # that lives only as a declaration, secrets, sources), as the engine's refresh
            # and the Terraform provider do
            try:
                known = self.old_spec(inputs or props)
            except InputError:
                known = None
            full = getattr(ctx.config, "refresh", "fast") == "full"  # see the engine's refresh
            if self.batcher is not None and not full:
                obs = self.batcher.read(ctx, id, known)
            else:
                obs = self.kind.read_known(ctx, id, known)
            if obs is None:
                return None
        secret = self._secret_names(props, inputs)
        state = self.state_of(obs, secret, props)
        # A refresh keeps the inputs the program set (with the values seen on the DSP), so
        # drift shows up as a diff against the program; an import returns the whole spec.
        if importing:
            new_inputs = self.inputs_of(obs.spec)
        else:
            new_inputs = {k: v for k, v in state.items() if k in inputs and k in self._by_name}
        return obs.id, state, self._wrap(new_inputs, secret)

    def delete(self, ctx: Context, id: str, state: Mapping[str, Any] | None = None,
               old_inputs: Mapping[str, Any] | None = None, *, resource: str | None = None,
               check_ctx: Context | None = None) -> None:
        """Delete, after the kind's dependents rule (``check_delete``) on what the DSP holds
        now: Pulumi deletes a stack's dependents first (a volume's snapshots), so what is
        left was made outside the stack; it is named and nothing is deleted, unless the
        recorded declaration (``state``, ``old_inputs``) allows ``cascade``. A declaration
        with ``unmanage_on_delete`` only releases it (Pulumi's own ``retainOnDelete`` never
        calls Delete, so it cannot rename). ``check_ctx``: the context the dependents rule
        reads through (the provider's shared delete-check listing)."""
        declared, _ = self.to_core({**(state or {}), **(old_inputs or {})})
        delete_or_unmanage(self.kind, ctx, id, declared, resource=resource, check_ctx=check_ctx)


def with_timeout(ctx: Context, op: str, seconds: float) -> Context:
    """``ctx`` with the engine's per-operation timeout (``customTimeouts``) when it set one."""
    if not seconds or seconds <= 0:
        return ctx
    return attrs.evolve(ctx, timeouts=attrs.evolve(ctx.timeouts or Timeouts(), **{op: seconds}))
