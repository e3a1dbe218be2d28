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
from datera_iac.pulumi._codec import UNKNOWN, Secret, has_unknown, is_secret, reveal, urn_name
from datera_iac.pulumi._derive import KindProps, kind_props
from datera_iac.resources.base import Context, Kind, Observed, check_create
from datera_iac.resources.batching import DeleteChecks
from datera_iac.resources.frontend import Frontend, Wire
from datera_iac.resources.intents import IntentJournal
from datera_iac.resources.plan import outputs_after, repair_shown_on

__all__ = ["CheckFailure", "DiffResult", "ResourceAdapter"]


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


class ResourceAdapter:
    """One kind behind Pulumi's resource-provider calls."""

    def __init__(self, kind: Kind[Any, Any], intents: IntentJournal | None = None) -> None:
        self.kind = kind
        self.props: KindProps = kind_props(kind)
        self._fields = {p.name: p.field for p in self.props.inputs}
        self._outputs = dict.fromkeys(p.name for p in self.props.outputs)
        self.core = Frontend(kind, Wire({p.field: p.name for p in self.props.inputs},
                                        {p.field: p.name for p in self.props.outputs}, has_unknown,
                                        reveal, declared_form=False, always_updates=True), intents)
        self.batcher = self.core.batcher  # the provider shares its listings (SharedListings)

    def to_core(self, props: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Input properties as the core's snake_case data, with the map back to the names
        used (unknown names are passed on so that ``spec_from`` reports them; the engine's
        ``__`` properties and outputs carried in state are left out)."""
        pairs = [(self._fields.get(k, k), k) for k in props
                 if not k.startswith("__") and (k in self._fields or k not in self._outputs)]
        return {f: reveal(props[k]) for f, k in pairs}, dict(pairs)

    def _name(self, field: str) -> str:
        return self.core.wire.inputs.get(field, field)

    def _wrap(self, values: Mapping[str, Any], *sources: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with every property that must stay secret wrapped: sensitive in the
        core, or sent as a secret in one of ``sources``."""
        secret = {p.name for p in self.props.all if p.secret} | {
            k for m in sources for k, v in m.items() if is_secret(v)}
        return {k: Secret(v) if k in secret and v is not None and not isinstance(v, Secret)
                else v for k, v in values.items()}

    def _failure(self, e: InputError, names: Mapping[str, str]) -> CheckFailure:
        field, fix = (e.field or "").split(".")[0], e.fix or ""
        if fix.startswith("known fields:"):
            fix = "known properties: " + ", ".join(p.name for p in self.props.inputs)
        return CheckFailure(property=names.get(field) or self._name(field),
                            reason=f"{e.reason} ({fix})" if fix else e.reason)

    def state_of(self, obs: Observed[Any, Any], *sources: Mapping[str, Any],
                 known: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What Pulumi keeps as the resource's outputs: every input and every output; an
        input the DSP does not report keeps its value in ``known`` (the inputs just
        applied, or the previous state); secret as in ``sources``."""
        return self._wrap(self.core.state(obs, known), *sources)

    def is_input(self, name: str) -> bool:
        """Whether ``name`` is an input property (else an output carried in state)."""
        return name in self._fields

    def spec(self, props: Mapping[str, Any], *, resource: str | None = None) -> Any:
        return self.kind.spec_from(self.to_core(props)[0], resource=resource)

    def _last(self, old_inputs: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The last declaration (the engine's old inputs) as the core's data, if usable."""
        usable = old_inputs and not has_unknown(old_inputs)
        return self.core.inputs(old_inputs, nulls=True) if usable else None  # type: ignore[arg-type]

    def check(self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any],
              autoname: tuple[str, str] | None = None) -> tuple[dict[str, Any], list[CheckFailure]]:
        """Validate and normalize new inputs (the core's check; ``autoname``: mode and
        proposed name, ``pulumi:autonaming``); while an input is unknown they are returned
        as they are (Check runs again before Create)."""
        (mode, proposed), logical, n = autoname or ("", ""), urn_name(urn), self._name("name")
        data, names = self.to_core(news)
        secrets = {self._fields.get(k, k): k for k, v in news.items() if is_secret(v)}
        c = self.core.check(data, resource=logical, proposed=proposed, secrets=secrets,
                            unnamed="autonaming is disabled by the pulumi:autonaming "
                            "configuration" if mode == "DISABLE" else None,
                            source="a Pulumi secret", noun="property", unknown=has_unknown(news),
                            last=self._last(olds))
        news = {**news, n: c.name} if c.name else dict(news)
        failures = [self._failure(e, {**names, **secrets}) for e in c.errors]
        if c.spec is None and c.name and not proposed:  # say where a bad name came from
            failures = [CheckFailure(n, f"{f.reason}; the {n} defaulted to the resource name "
                                     f"{logical!r}: set {n} explicitly") if f.property == n
                        else f for f in failures]
        return self._wrap(news if c.spec is None else self.core.declared(c.spec), news), failures

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
        unknown = sorted((f for f, v in data.items() if names[f] in self._fields and has_unknown(v)),
                         key=self._name)
        ignored = {i.split(".")[0].split("[")[0] for i in ignore_changes}
        try:
            change = self.core.diff(old_spec, olds, data, unknown, last=self._last(old_inputs),
                                    config=config, resource=name, unknown_value=UNKNOWN,
                                    ignore={self._fields[n] for n in ignored if n in self._fields})
        except InputError as e:
            pname = self.core.wire.inputs.get((e.field or "").split(".")[0], e.field or "")
            return DiffResult(changes=(pname,), replaces=(), detailed={pname: "UPDATE"}, reason=str(e))
        replaces = [self._name(c.name) for c in change.changes if c.replace]
        detailed = {self._name(c.name): ("ADD" if c.old is None else "DELETE" if c.new is None
                                         else "UPDATE") + ("_REPLACE" if c.replace else "")
                    for c in change.changes}
        carrier = repair_shown_on(self.kind, self.core.outputs(olds), change.repair, replaces)
        if carrier:
            detailed.setdefault(self.core.wire.outputs[carrier], "UPDATE")
        return DiffResult(changes=tuple(detailed), replaces=tuple(replaces), detailed=detailed,
                          delete_before_replace=change.diff.delete_before_replace and bool(replaces),
                          reason=change.diff.reason, repair=change.repair)

    def check_plan(self, context: Callable[[], Context], urn: str, news: Mapping[str, Any]) -> None:
        """The core's ``check_create`` of a create."""
        check_create(self.kind, context,
                     None if has_unknown(news) else self.spec(news, resource=urn_name(urn)))

    def preview_create(self, news: Mapping[str, Any]) -> dict[str, Any]:
        """The state a create would produce, with every output unknown. No API call."""
        return self._wrap({**news, **{n: UNKNOWN for n in self._outputs if news.get(n) is None}}, news)

    def create(self, ctx: Context, urn: str, news: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Create; with the provider's intents, under a record keyed by the URN."""
        key = self.core.intents and self.core.intents.key(self.kind.token, {"urn": urn})
        obs = self.core.create(ctx, self.spec(news, resource=urn_name(urn)), key)
        return obs.id, self.state_of(obs, news, known=news)

    def preview_update(self, id: str, olds: Mapping[str, Any], news: Mapping[str, Any]
                       ) -> dict[str, Any]:
        """New inputs over the outputs the update will leave (the core's
        :func:`~datera_iac.resources.plan.outputs_after`; unknown while an input is), so the
        preview plans the dependents that read an output the update changes (a
        VolumeType's ``extraSpecs``) as ``up`` will. No API call."""
        after = outputs_after(self.kind, id, self.core.inputs(olds, nulls=True), self.core.outputs(olds),
                              None if has_unknown(news) else self.to_core(news)[0])
        state = {**{k: v for k, v in olds.items() if k in self._outputs}, **news}
        state.update({p.name: UNKNOWN if after is None else after.get(p.field)
                      for p in self.props.outputs if p.name not in self._fields})
        return self._wrap(state, olds, news)

    def update(self, ctx: Context, urn: str, id: str, olds: Mapping[str, Any],
               news: Mapping[str, Any], old_inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        name = urn_name(urn)
        obs = self.core.update(lambda: ctx, id, olds, self.spec(news, resource=name), news,
                               last=self._last(old_inputs), resource=name, rerun="`pulumi up`")
        return self.state_of(obs, olds, news, known=news)  # type: ignore[arg-type]

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
        state = self.state_of(obs, props, inputs, known=props)
        new_inputs = self.core.declared(obs.spec) if importing else {
            k: v for k, v in state.items() if k in inputs and k in self._fields}
        return obs.id, state, self._wrap(new_inputs, props, inputs)

    def delete(self, ctx: Context, id: str, state: Mapping[str, Any] | None = None,
               old_inputs: Mapping[str, Any] | None = None, *, resource: str | None = None,
               checks: DeleteChecks | None = None) -> None:
        """Delete (``cascade``, ``unmanage_on_delete`` from the recorded declaration;
        ``checks``: the provider's shared delete-check listings). Pulumi's own
        ``retainOnDelete`` never calls Delete."""
        self.core.delete(ctx, id, {**(state or {}), **(old_inputs or {})}, resource=resource,
                         checks=checks)
