"""One kind behind a provider's resource calls: Terraform's and Pulumi's providers differ
only in their wire conventions (a :class:`Wire`); the rest is this one pipeline - the state
kept of an object, a create under an intent record, a read through the shared batcher, the
update :func:`~datera_iac.resources.plan.apply_change` asks for, a delete by
:func:`~datera_iac.resources.base.delete_or_unmanage`. It decides nothing itself."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs

from datera_iac.errors import NotFound
from datera_iac.resources.base import Context, Kind, Observed, delete_or_unmanage
from datera_iac.resources.batching import DeleteChecks, ReadBatcher, read_one
from datera_iac.resources.intents import IntentJournal, create_kept, create_recorded
from datera_iac.resources.plan import apply_change, holds_unknown, recorded_inputs

__all__ = ["Frontend", "Wire"]


@attrs.frozen
class Wire:
    """A provider's conventions: ``inputs``/``outputs``: each field's name on the wire;
    ``is_unknown``: its marker of a value known only after apply; ``reveal``: unwraps its
    secrets; ``declared_form``: a state keeps the declaration's form of an input the DSP
    reports equal (Terraform: applied must equal planned), else the DSP's; ``keeps_partial``:
    a create that made its object, then failed, raises ``CreateLeft`` (Terraform taints it);
    ``always_updates``: an update is an explicit request (Pulumi's, after its Diff), sent even
    when the planner finds nothing to change (the kind checks the object: gone, or broken)."""

    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    is_unknown: Callable[[Any], bool]
    reveal: Callable[[Any], Any] | None = None
    declared_form: bool = True
    keeps_partial: bool = False
    always_updates: bool = False


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

    def outputs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The known, non-null outputs among wire values as the core's data."""
        return {f: v if self.wire.reveal is None else self.wire.reveal(v)
                for f, n in self.wire.outputs.items()
                if (v := values.get(n)) is not None and not self.unknown(v)}

    def state(self, obs: Observed[Any, Any], user: Mapping[str, Any] | None, *,
              written: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The state kept of the object the DSP reports, by wire name: the inputs
        :func:`recorded_inputs` keeps (``user``: the declaration's known values, None for an
        import), then the outputs (over an input of the same name where known)."""
        inputs = recorded_inputs(self.kind, obs.spec, user, written=written,
                                 user_form=self.wire.declared_form)
        outs = self.kind.outputs_to(obs.outputs)
        state = {n: inputs.get(f) for f, n in self.wire.inputs.items()}
        state.update({n: outs.get(f) for f, n in self.wire.outputs.items()
                      if n not in state or outs.get(f) is not None})
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
               spec: Any, *, last: Mapping[str, Any] | None = None, resource: str = "",
               rerun: str, written: Mapping[str, Any] | None = None,
               rotated: Collection[str] = ()) -> Observed[Any, Any] | None:
        """The update :func:`apply_change` asks for, from the ``prior`` state (wire values);
        None, with no call, when the planner finds nothing to change (unless
        ``always_updates``)."""
        if self.intents is not None:
            self.intents.settled(obj_id)
        change = apply_change(self.kind, {**self.outputs(prior), **self.inputs(prior)}, spec,
                              written=written, rotated=rotated, last=last, resource=resource,
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
