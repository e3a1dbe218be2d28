"""The generic Terraform resource over one kind: plan, create, read, update, delete, import.

Nothing here knows a kind's fields: they come from :mod:`provider.schema`; validation and
normalisation come from ``kind.spec_from``; what changed and what forces a replacement from
``kind.diff``; every DSP call from the kind's ``read``/``create``/``update``/``delete``/
``adopt``.

Two Terraform rules shape the code:

* A planned value that the configuration sets must equal the configuration, and an applied
  value must equal a known planned value. The core normalises input (a tenant ``x`` is
  ``/root/x``), so state keeps *the user's form* of an input whenever the kind's ``diff``
  says it is equal to what the DSP reports (:meth:`KindAdapter.state_from`). This is what
  makes the plan after an apply, a refresh or a re-apply empty.
* Optional inputs are optional+computed. When the configuration leaves one unset, the plan
  keeps the prior value if ``diff`` says nothing changed, or shows the core's default;
  on create an unset field whose default is ``None`` is "known after apply".

Write-only secrets (``x_wo``, ``x_wo_version``; :mod:`provider.schema`): every state this
module returns - planned, created, updated, read, imported - holds null for ``x_wo`` (and for
``x`` when ``x_wo`` is used); Terraform rejects anything else. ``x_wo`` is read from the
configuration (the servicer adds it to the planned state it hands to create and update) and
given to the core as ``x``. Since Terraform never stores it, the plan compares as if the DSP
held that value - unless ``x_wo_version`` changed (or the prior state still holds the
deprecated ``x``), which is what makes a rotation an update (a replacement where the kind's
field is ``replace``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from tf.types import Unknown

from datera_iac.errors import ConfigError, InputError, WaitTimeout
from datera_iac.resources.base import (
    Context,
    Dependent,
    Diff,
    Kind,
    Observed,
    Timeouts,
    check_delete,
    delete_or_unmanage,
)
from datera_iac.resources.intents import create_recorded
from datera_iac.resources.plan import plan_change, repair_of
from provider.batching import DeleteChecks, ReadBatcher, SharedListings, batches
from provider.intents import IntentJournal
from provider.schema import ID, TIMEOUTS, KindSchema, kind_schema
from provider.timeouts import timeouts_from

__all__ = ["ContextFactory", "KindAdapter", "PartialCreate", "PlanOutcome", "has_unknown"]

log = logging.getLogger("provider")

#: Builds the kind's Context for one operation (the provider's client and config).
ContextFactory = Callable[[Timeouts], Context]


def has_unknown(value: Any) -> bool:
    """Whether a decoded Terraform value is, or contains, an unknown."""
    if value is Unknown:
        return True
    if isinstance(value, Mapping):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_unknown(v) for v in value)
    return False


class PartialCreate(Exception):
    """A create that failed after the object was made: ``state`` is what exists, ``error``
    what went wrong. Terraform stores the state as *tainted* (the next apply replaces it)."""

    def __init__(self, state: dict[str, Any], error: BaseException) -> None:
        super().__init__(str(error))
        self.state = state
        self.error = error


@attrs.frozen
class PlanOutcome:
    """A planned state and the attributes whose change forces a replacement. ``repair``:
    why the prior object must be repaired (``kind.needs_repair``), planned as an update."""

    planned: dict[str, Any]
    requires_replace: tuple[str, ...] = ()
    diff: Diff | None = None
    repair: str | None = None
    #: the declaration this plan applies (non-secret inputs), kept in Terraform's private
    #: state so the next plan can see what a later configuration no longer declares
    declared: dict[str, Any] | None = None


class KindAdapter:
    """Terraform semantics for one kind: the derived schema, plus a read batcher shared by
    the concurrent refreshes of one provider process. No other state.

    A kind may list ``stable_outputs`` (a ClassVar tuple of output names that never change
    after create, e.g. a uuid): an update plan keeps them known instead of showing
    "known after apply"."""

    def __init__(self, kind: Kind, intents: IntentJournal | None = None) -> None:
        self.kind = kind
        self.schema: KindSchema = kind_schema(kind)
        self.intents = intents or IntentJournal()
        self._stable = set(getattr(kind, "stable_outputs", ()))
        self.batcher = ReadBatcher(kind) if batches(kind) else None

    # ---- helpers ------------------------------------------------------------------

    def _inputs_of(self, state: Mapping[str, Any], *, secrets: bool = True) -> dict[str, Any]:
        """The known, non-null inputs in a state/config: what ``spec_from`` gets. A known
        write-only ``x_wo`` stands for ``x`` (unless ``secrets`` is false)."""
        out = {
            n: state[n]
            for n in self.schema.input_names
            if state.get(n) is not None and not has_unknown(state.get(n))
        }
        if secrets:
            for name, wo, _ in self.schema.secret_pairs:
                v = state.get(wo)
                if v is not None and not has_unknown(v):
                    out[name] = v
        return out

    def _prior_inputs(self, prior: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
        """The prior state's inputs, for comparing with ``new`` (a configuration, or a
        planned state with its write-only values).

        Terraform never stores ``x_wo``, so the prior value of ``x`` is taken to be the
        ``x_wo`` of ``new`` - "the DSP holds what the configuration says" - while
        ``x_wo_version`` is unchanged; after a version change it is the prior ``x``
        (normally null), so the kind's ``diff`` sees the secret change. A prior state
        that still holds the deprecated ``x`` is what the DSP was given: it is kept."""
        out = self._inputs_of(prior)
        for name, wo, version in self.schema.secret_pairs:
            v = new.get(wo)
            if (v is not None and not has_unknown(v) and out.get(name) is None
                    and prior.get(version) == new.get(version)):
                out[name] = v
        return out

    def _write_only_in_use(self, state: Mapping[str, Any]) -> set[str]:
        """The inputs ``x`` whose ``x_wo`` is set (known or not) in ``state``."""
        return {name for name, wo, _ in self.schema.secret_pairs if state.get(wo) is not None}

    def without_write_only(self, state: dict[str, Any] | None) -> dict[str, Any] | None:
        """``state`` with every write-only attribute null, as Terraform requires."""
        if state is None:
            return None
        for _, wo, _ in self.schema.secret_pairs:
            if wo in state:
                state[wo] = None
        return state

    def spec_of(self, state: Mapping[str, Any], *, resource: str | None = None) -> Any:
        return self.kind.spec_from(self._inputs_of(state), resource=resource)

    def outputs_of(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The known outputs recorded in a state (refreshed before a plan), for the
        planner's repair, or None."""
        if not state:
            return None
        return {f.name: state.get(f.name) for f in self.schema.outputs
                if state.get(f.name) is not None and not has_unknown(state.get(f.name))}

    def timeouts_of(self, state: Mapping[str, Any] | None) -> Timeouts:
        value = (state or {}).get(TIMEOUTS)
        if value is None or has_unknown(value):
            return Timeouts()
        return timeouts_from(value, kind=self.kind.name)

    def sensitive_values(self, *states: Mapping[str, Any] | None) -> list[str]:
        """Secrets present in these states, to scrub from error text."""
        names = [f.name for f in self.schema.fields() if f.sensitive]
        out = []
        for st in states:
            for n in names:
                v = (st or {}).get(n)
                if isinstance(v, str) and v and v is not Unknown:
                    out.append(v)
        return out

    # ---- validate -----------------------------------------------------------------

    def validate(self, config: Mapping[str, Any]) -> Any:
        """Check the configuration's known values; unknown ones are checked at plan/apply.

        Returns the Spec when every input is known (else None). Raises InputError unless
        the error is about a value that is not known yet."""
        if config.get(TIMEOUTS) is not None and not has_unknown(config.get(TIMEOUTS)):
            timeouts_from(config[TIMEOUTS], kind=self.kind.name)
        self._check_write_only(config)
        unknown = {n for n in self.schema.input_names if has_unknown(config.get(n))}
        unknown |= {n for n, wo, _ in self.schema.secret_pairs if has_unknown(config.get(wo))}
        try:
            spec = self.spec_of(config)
        except InputError as e:
            root = (e.field or "").split(".")[0]
            if unknown and (not root or root in unknown):
                return None  # e.g. "missing required field" for a value known after apply
            wo = {n: w for n, w, _ in self.schema.secret_pairs if config.get(w) is not None}
            if root in wo:  # the user wrote x_wo: point there, not at the unset x
                raise InputError(e.reason, kind=e.kind, resource=e.resource, fix=e.fix,
                                 field=wo[root] + (e.field or "")[len(root):]) from None
            raise
        return None if unknown else spec

    def _check_write_only(self, config: Mapping[str, Any]) -> None:
        """``x`` and ``x_wo`` exclude each other; ``x_wo_version`` means nothing alone."""
        for name, wo, version in self.schema.secret_pairs:
            if config.get(name) is not None and config.get(wo) is not None:
                raise InputError(
                    f"{name} and {wo} are both set", kind=self.kind.name, field=wo,
                    fix=f"keep only {wo} (with {version}); {name} is stored in the state "
                    "in clear")
            if config.get(version) is not None and config.get(wo) is None:
                raise InputError(
                    f"{version} is set without {wo}", kind=self.kind.name, field=version,
                    fix=f"set {wo} to the secret, or drop {version}")

    # ---- plan ---------------------------------------------------------------------

    def declaration_of(self, spec: Any) -> dict[str, Any] | None:
        """A spec's declared, non-secret inputs (JSON-ready): what Terraform keeps in the
        resource's private state as the planner's ``last`` declaration: what a later
        configuration no longer declares is reset (secrets never go there). Terraform's
        prior *state* cannot serve: after an import or a refresh with drift it holds the
        DSP's whole policy, not the declaration."""
        if spec is None:
            return None
        data = self.kind.spec_to(spec)
        return {f.name: data[f.name] for f in self.schema.inputs
                if not f.sensitive and data.get(f.name) is not None}

    def plan(self, prior: Mapping[str, Any] | None, config: Mapping[str, Any],
             last: Mapping[str, Any] | None = None, defaults: Any = None) -> PlanOutcome:
        """Plan a create (``prior`` None) or an update/replace. Pure: no DSP call.
        ``last``: the declaration the prior apply recorded (private state); ``defaults``:
        the provider's DateraConfig (defaults of a removed key).

        Raises InputError (invalid input, or a change the kind refuses, such as a shrink)."""
        s = self.schema
        unknown = {n for n in s.input_names if has_unknown(config.get(n))}
        new_spec = self.validate(config)
        norm = self.kind.spec_to(new_spec) if new_spec is not None else {}
        declared = self.declaration_of(new_spec)
        planned: dict[str, Any] = {}
        write_only = self._write_only_in_use(config)
        for _, wo, version in s.secret_pairs:
            planned[wo] = None  # never in a plan or state
            planned[version] = config.get(version)

        if prior is None:
            for f in s.inputs:
                v = config.get(f.name)
                if v is not None:
                    planned[f.name] = v
                elif f.name in write_only:
                    planned[f.name] = None  # the secret is in x_wo, and stays out of state
                elif norm.get(f.name) is not None:
                    planned[f.name] = norm[f.name]
                else:
                    # unset and no default yet: the DSP (or a later-known value) decides
                    planned[f.name] = Unknown if f.computed else None
            for f in s.outputs:
                planned[f.name] = Unknown
            planned[ID] = Unknown
            planned[TIMEOUTS] = config.get(TIMEOUTS)
            return PlanOutcome(planned, declared=declared)

        try:
            old_spec = self.kind.spec_from(self._prior_inputs(prior, config))
        except InputError:
            # A state the current core would not accept (a validator tightened since it
            # was written): compare raw values instead of failing on the user's config.
            old_spec = None
        d: Diff | None = None
        if new_spec is not None and old_spec is not None:
            d = plan_change(self.kind, old_spec, new_spec, last=last, config=defaults).diff
            changed, replaces = set(d.fields), set(d.replaces)
        else:
            # Some inputs are known only after apply (or the prior state no longer
            # structures; the refresh before a plan normally repairs it): a known value
            # compares raw, an unknown one counts as changed (and forces replacement if
            # the field does); an unset one keeps its prior value.
            changed = set(unknown)
            for n, v in self._inputs_of(config, secrets=False).items():
                if v != prior.get(n):
                    changed.add(n)
            replaces = {f.name for f in s.inputs if f.name in changed and f.replace}
        rotated = {version for _, _, version in s.secret_pairs
                   if config.get(version) != prior.get(version)}
        changed |= rotated

        for f in s.inputs:
            v = config.get(f.name)
            if v is not None:
                planned[f.name] = v
            elif f.name in write_only:
                planned[f.name] = None  # the secret is in x_wo, and stays out of state
            elif f.name in changed and new_spec is not None:
                planned[f.name] = norm.get(f.name)
            else:
                planned[f.name] = prior.get(f.name)
        # A new x_wo_version rotates x: a replacement where x is a ``replace`` field (the
        # kind's diff may not see a secret it cannot read back). Terraform honours a
        # requires_replace path only where the value changed: it is the version's.
        replace_fields = {f.name for f in s.inputs if f.replace}
        for name, _, version in s.secret_pairs:
            if name in replaces and planned.get(name) == prior.get(name):
                replaces.discard(name)
            if version in rotated and name in replace_fields:
                replaces.add(version)

        # a broken object (kind.needs_repair) is an update even with no input change: its
        # outputs become "known after apply", and apply calls the kind's update to repair it
        repair = repair_of(self.kind, self.outputs_of(prior))
        if replaces:
            planned[ID] = Unknown
            for f in s.outputs:
                planned[f.name] = Unknown
        else:
            planned[ID] = prior.get(ID)
            for f in s.outputs:
                keep = (not changed and repair is None) or f.name in self._stable
                planned[f.name] = prior.get(f.name) if keep else Unknown
        planned[TIMEOUTS] = config.get(TIMEOUTS)
        return PlanOutcome(planned, tuple(sorted(replaces)), d, repair, declared)

    # ---- state ----------------------------------------------------------------------

    def state_from(
        self, obs: Observed[Any, Any], user: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Terraform state for what the DSP reports, keeping the user's form of every input
        the kind considers equal (``diff(observed, user)`` does not list it)."""
        s = self.schema
        observed = self.kind.spec_to(obs.spec)
        same: set[str] = set()
        if user is not None:
            try:
                user_spec = self.spec_of(user)
            except InputError:  # a state written by an older core: take what the DSP says
                user_spec = None
            if user_spec is not None:
                try:
                    differs = set(self.kind.diff(obs.spec, user_spec).fields)
                except InputError:
                    # the kind refuses the change (the DSP grew the volume out of band):
                    # compare field by field on the normalised values instead
                    differs = {n for n in s.input_names
                               if getattr(obs.spec, n) != getattr(user_spec, n)}
                same = set(s.input_names) - differs
        state: dict[str, Any] = {}
        for f in s.inputs:
            uv = (user or {}).get(f.name, Unknown)
            ov = observed.get(f.name)
            if f.name in same and not has_unknown(uv):
                state[f.name] = uv
            elif f.sensitive and ov is None and uv is not None and not has_unknown(uv):
                state[f.name] = uv  # the DSP does not echo secrets; keep what was written
            else:
                state[f.name] = ov
        for _, wo, version in s.secret_pairs:
            state[wo] = None
            v = (user or {}).get(version)
            state[version] = None if has_unknown(v) else v
        outs = self.kind.outputs_to(obs.outputs)
        for f in s.outputs:
            state[f.name] = outs.get(f.name)
        state[ID] = obs.id
        t = (user or {}).get(TIMEOUTS)
        state[TIMEOUTS] = None if has_unknown(t) else t
        return state

    # ---- apply ----------------------------------------------------------------------

    def create(self, contexts: ContextFactory, planned: Mapping[str, Any]) -> dict[str, Any]:
        """Create; raises :class:`PartialCreate` when the object was made but the wait for
        it timed out (the kind keeps it), so Terraform records it instead of losing it."""
        spec = self.spec_of(planned)
        ctx = contexts(self.timeouts_of(planned))
        key = self._intent_key(planned)
        try:
            obs = create_recorded(self.kind, ctx, spec, self.intents, key)
        except WaitTimeout as e:
            # The POST landed and the kind kept the object (the contract: the error says
            # what was left and it carries this create's token). Only a timeout qualifies.
            try:
                left = self.kind.find_own(ctx, spec, self.intents.token(key))
            except Exception:  # noqa: BLE001 - report the timeout, not the lookup
                left = None
            if left is None:
                self.intents.clear(key)
                raise
            self.intents.created(key, left.id)
            raise PartialCreate(self.state_from(left, planned), e) from e
        return self.state_from(obs, planned)

    def _intent_key(self, state: Mapping[str, Any]) -> str:
        """The intent journal's key of a resource: its kind and non-secret inputs."""
        inputs = self._inputs_of(state)
        public = {f.name: inputs[f.name] for f in self.schema.fields()
                  if not f.sensitive and f.name in inputs}
        return self.intents.key(self.kind.token, public)

    def read(self, contexts: ContextFactory, current: Mapping[str, Any]) -> dict[str, Any] | None:
        """The refreshed state, or None when the object is gone (Terraform drops it and the
        next plan creates it again)."""
        obj_id = current.get(ID)
        if not obj_id:
            return None
        try:
            known = self.spec_of(current)
        except InputError:  # a state the core no longer accepts: read without it
            known = None
        ctx = contexts(self.timeouts_of(current))
        full = getattr(ctx.config, "refresh", "fast") == "full"  # what a bulk read leaves out
        if self.batcher is not None and not full:  # concurrent refreshes share one bulk read
            obs = self.batcher.read(ctx, obj_id, known)
        else:
            obs = self.kind.read_known(ctx, obj_id, known)
        if obs is None:
            return None
        # Terraform holds this object in its state: a create intent for it is settled
        self.intents.clear(self._intent_key(current))
        self.intents.settled(obj_id)
        return self.state_from(obs, current)

    def update(
        self, contexts: ContextFactory, prior: Mapping[str, Any], planned: Mapping[str, Any],
        last: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Update in place; ``last`` as for :meth:`plan` (the plan's private state)."""
        self.intents.settled(prior.get(ID))  # Terraform holds it: its create is settled
        old = self.kind.spec_from(self._prior_inputs(prior, planned))
        change = plan_change(
            self.kind, old, self.spec_of(planned), outputs=self.outputs_of(prior), last=last,
            config=contexts(self.timeouts_of(planned)).config if last else None)
        d = change.diff
        if change.action == "replace":
            # The plan could not see this: the value was unknown then (e.g. extra_specs
            # taken from a volume type changed in the same run). Nothing was changed.
            raise InputError(
                f"the new value of {', '.join(d.replaces)} needs a new {self.kind.name}, which "
                "the plan could not know (the value was unknown at plan time); nothing was "
                "changed", kind=self.kind.name, field=d.replaces[0],
                resource=str(planned.get("name") or prior.get(ID) or ""),
                fix="run `terraform apply` again: the next plan knows the value and shows the "
                "replacement (or why it is refused)")
        if change.action == "same":
            # Only the form of an input or a timeout changed: nothing to tell the DSP.
            state = dict(planned)
            for f in self.schema.outputs:
                if has_unknown(state.get(f.name)):
                    state[f.name] = prior.get(f.name)
            return self.without_write_only(state)  # type: ignore[return-value]
        obs = self.kind.update(contexts(self.timeouts_of(planned)), prior[ID], old,
                               change.desired)
        return self.state_from(obs, planned)

    def check_plan(self, contexts: ContextFactory, config: Mapping[str, Any]) -> None:
        """The kind's plan-time checks of a create or replacement (``Kind.check_plan``:
        reads only, e.g. a clone below its source's live size): InputError when the apply
        would fail after a copy was made. A configuration with values known only after
        apply (a source made in this apply) is left to the apply."""
        if type(self.kind).check_plan is Kind.check_plan:
            return
        spec = self.validate(config)  # None while a value is unknown
        if spec is None:
            return
        try:
            ctx = contexts(self.timeouts_of(config))
        except ConfigError:  # a plan before the provider is configured: the apply checks
            return
        self.kind.check_plan(ctx, spec, {}, creating=True)

    def check_delete(self, contexts: ContextFactory, prior: Mapping[str, Any],
                     declared: Mapping[str, Any] | None = None,
                     deleted_first: Iterable[str] = (),
                     listings: SharedListings | None = None) -> tuple[Dependent, ...]:
        """The kind's dependents rule (``resources.base.check_delete``) for the object in
        ``prior``: InputError naming what its delete would take with it (a volume's
        snapshots without ``cascade``) or be refused by (a tenant's volumes); else what
        ``cascade`` will delete with it. ``declared``: the declaration that rules (the
        configuration of a replacement), by default the prior state. ``listings``: the
        plan's refresh wave, which answers a kind with a bulk answer from its listing."""
        if not prior.get(ID) or type(self.kind).dependents is Kind.dependents:
            return ()
        ctx = contexts(self.timeouts_of(prior))
        listed = self._listed(ctx, listings)
        return check_delete(self.kind, ctx, prior[ID],
                            prior if declared is None else declared, resource=prior[ID],
                            deleted_first=deleted_first, found=None if listed is None else
                            self.kind.dependents_many(listed, [prior[ID]]).get(prior[ID]))

    def _listed(self, ctx: Context, listings: SharedListings | None) -> Context | None:
        """``ctx`` with its list calls served from ``listings``, for a kind whose
        dependents come from a listing (else None: the kind reads the object alone)."""
        if listings is None or not self.kind.has_bulk_dependents:
            return None
        return attrs.evolve(ctx, client=listings.client(ctx.client))

    def delete(self, contexts: ContextFactory, prior: Mapping[str, Any],
               checks: DeleteChecks | None = None) -> None:
        """Delete, after the dependents rule on what the DSP holds now: Terraform has
        destroyed the configuration's dependents first, so what is left was made outside
        it (never deleted silently with the object). A declaration that asks to unmanage
        instead (``unmanage_on_delete``) only releases it; Terraform then forgets it.
        ``checks``: the apply's delete checks (``DateraProvider.delete_checks``), one
        listing answering many deletes of a kind instead of a read each."""
        if prior.get(ID):
            self.intents.settled(prior[ID])  # Terraform held it: its create is settled
            ctx = contexts(self.timeouts_of(prior))
            delete_or_unmanage(self.kind, ctx, prior[ID], prior, resource=prior[ID],
                               check_ctx=None if checks is None else checks.context(self.kind, ctx))

    def import_(self, contexts: ContextFactory, ref: str) -> dict[str, Any]:
        """Adopt an existing object; raises NotFound when there is none."""
        obs = self.kind.adopt(contexts(Timeouts()), ref)
        return self.state_from(obs, None)
